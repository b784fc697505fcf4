// cli/commands/plan.ts — propose -> simulate -> execute from the command line: `aido plan
// simulate FILE --agent ID`, `aido plan create FILE --agent ID`, `aido plan execute ID`,
// `aido plan list`. FILE is YAML or JSON `{title?, steps: [{tool, input}]}`, read and
// checked here (a bad file is a usage error naming the file and the key; a step input the
// daemon finds wrong is reported against the file too). Exit codes: 0 done, 1 a step was
// denied or the plan failed (or was refused), 2 usage. Steps, reasons and outputs come from
// a model or any socket client: printed as inert text, --json as exact JSON.

import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { parseDocument } from "yaml";
import { z } from "zod";
import { AidoRpcError } from "../../client/client.js";
import type { PlanExecution, PlanSummary, Simulation } from "../../client/types.js";
import { errorMessage } from "../../errors.js";
import { inert, inertLines } from "../../security/terminal-text.js";
import { type CliIo, type Command, jsonOption, parseCommandArgs, printJson, UsageError } from "../command.js";
import { withClient } from "./daemon-client.js";
import { commandSpec } from "./index.js";

const planFile = z.strictObject({
  title: z.string().min(1).max(200).optional(),
  steps: z
    .array(z.strictObject({ tool: z.string().min(1), input: z.record(z.string(), z.unknown()) }))
    .min(1),
});
type PlanFile = z.infer<typeof planFile>;

/** Read and check a plan file; every problem names the file and the key. */
function readPlanFile(file: string): PlanFile {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new UsageError(`cannot read plan file ${file}: ${errorMessage(e)}`);
  }
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) throw new UsageError(`${file}: not YAML or JSON: ${doc.errors[0]!.message}`);
  const parsed = planFile.safeParse(doc.toJS());
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const keys = issue.code === "unrecognized_keys" ? issue.keys : [];
  const key = [...issue.path, ...keys.slice(0, 1)].map(String).join(".") || "(the document)";
  const what = issue.code === "unrecognized_keys" ? "unknown key" : issue.message;
  throw new UsageError(`${file}: ${key}: ${what} (a plan file is {title?, steps: [{tool, input}]})`);
}

/** A step input the daemon refused (-32602 naming steps.N.input.FIELD) is the file's fault. */
async function againstFile<T>(file: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    const field = e instanceof AidoRpcError ? String(e.details.field ?? "") : "";
    if (e instanceof AidoRpcError && e.rpcCode === -32602 && field.startsWith("steps"))
      throw new UsageError(`${file}: ${e.message}`);
    throw e;
  }
}

function printSimulation(io: CliIo, sim: Simulation): void {
  for (const s of sim.steps) {
    const verdict = s.verdict === "deny" ? `DENY (${s.stage})` : s.verdict;
    io.out(`step ${s.index}  ${inert(s.tool)}  ${verdict}${s.reason ? `: ${inert(s.reason)}` : ""}`);
    const inv = s.inventory;
    if (inv.reads.length) io.out(`    reads    ${inert(inv.reads.join(", "))}`);
    if (inv.writes.length) io.out(`    writes   ${inert(inv.writes.join(", "))}`);
    if (inv.accesses.length) io.out(`    touches  ${inert(inv.accesses.join(", "))}`);
    for (const c of inv.commands) {
      io.out(`    command  ${inert(c.command)}`);
      if (c.programs.length) io.out(`    runs     ${inert(c.programs.join(" | "))}`);
      if (c.scripts?.length) io.out(`    scripts  ${inert(c.scripts.join(", "))}`);
    }
    if (inv.hosts.length) io.out(`    hosts    ${inert(inv.hosts.join(", "))}`);
    if (inv.approval) {
      const a = inv.approval;
      const how = a.covered_by
        ? `covered by ${a.covered_by.via}${a.covered_by.grant_id ? ` (grant ${a.covered_by.grant_id})` : ""}`
        : "a human would be asked";
      io.out(`    approval ${how}: ${inert(a.covers)}`);
    }
  }
  io.out(sim.ok ? "no step denied" : "a step is denied");
  io.out(`note: ${sim.note}`);
  if (sim.shadow) printShadow(io, sim.shadow);
}

/** What the shadow run did in its copy: each step's output, then the file diff. */
function printShadow(io: CliIo, shadow: NonNullable<Simulation["shadow"]>): void {
  io.out(`shadow run (a throwaway copy, ${shadow.goal_id}):`);
  for (const s of shadow.steps) {
    const state = !s.ran ? "not run" : s.ok ? "ok" : "FAILED";
    io.out(`step ${s.index}  ${state}${s.error ? `: ${inert(s.error.message)}` : ""}`);
    if (s.output) io.out(inertLines(s.output.replace(/^/gm, "    ")));
  }
  const { added, changed, deleted, counts } = shadow.diff;
  io.out(`files: ${counts.added} added, ${counts.changed} changed, ${counts.deleted} deleted`);
  for (const f of added) io.out(`  + ${inert(f.path)} (${f.type}, ${f.size} bytes)`);
  for (const f of deleted) io.out(`  - ${inert(f.path)} (${f.type}, ${f.size} bytes)`);
  for (const f of changed) io.out(`  ~ ${inert(f.path)} (${f.size_before} -> ${f.size} bytes)`);
  for (const f of [...added, ...changed]) if (f.diff) io.out(inertLines(f.diff));
  if (shadow.diff.diffs_omitted > 0)
    io.out(
      `${shadow.diff.diffs_omitted} text diffs left out: the diff budget of one result (256 KiB) was spent`,
    );
}

function printExecution(io: CliIo, r: PlanExecution): void {
  for (const s of r.steps) {
    io.out(`step ${s.index}  ${s.ok ? "ok" : "FAILED"}${s.error ? `: ${inert(s.error.message)}` : ""}`);
    if (s.output) io.out(inertLines(s.output.replace(/^/gm, "    ")));
  }
  if (r.restore) {
    const { paths_changed, files_restored, files_failed, conflicts } = r.restore;
    const { conflicts_total: conflictsTotal, files_failed_total: failedTotal } = r.restore;
    io.out(
      `undid the plan's changes: ${files_restored} of ${paths_changed} paths put back, ${conflictsTotal} left (changed since), ${failedTotal} failed`,
    );
    for (const c of conflicts) io.out(`  left ${inert(c.path)}: ${inert(c.reason)}`);
    if (conflictsTotal > conflicts.length) io.out(`  and ${conflictsTotal - conflicts.length} more left`);
    for (const f of files_failed) io.out(`  failed ${inert(f.path)}: ${inert(f.reason)}`);
    if (failedTotal > files_failed.length) io.out(`  and ${failedTotal - files_failed.length} more failed`);
  }
  if (r.error) io.out(`error: ${inert(r.error)}`);
  const before = r.snapshot_id
    ? ` (snapshot before it: ${r.snapshot_id})`
    : r.snapshot_pruned
      ? ` (the snapshot before it, ${r.snapshot_pruned}, was pruned to keep the store in its cap)`
      : "";
  io.out(`plan ${r.plan_id}: ${r.status}${before}`);
}

function requireAgent(cmd: Pick<Command, "usage">, agent: string | undefined): string {
  if (!agent) throw new UsageError(`give the agent the plan runs as: --agent ID\nusage: ${cmd.usage}`);
  return agent;
}

function oneFile(cmd: Pick<Command, "usage">, positionals: string[]): string {
  const [file] = positionals;
  if (positionals.length !== 1 || file === undefined)
    throw new UsageError(`give one plan file\nusage: ${cmd.usage}`);
  return file;
}

export const planSimulate: Command = {
  ...commandSpec("plan simulate"),
  async run(ctx) {
    const { values, positionals } = parseCommandArgs(this, ctx.argv, {
      ...jsonOption,
      agent: { type: "string" },
      shadow: { type: "boolean" },
    });
    const file = oneFile(this, positionals);
    const agent = requireAgent(this, values.agent);
    const plan = readPlanFile(file);
    const sim = await withClient(ctx, (c) =>
      againstFile(file, () =>
        c.call("plan.simulate", {
          agent_id: agent,
          steps: plan.steps,
          ...(values.shadow ? { shadow: true } : {}),
        }),
      ),
    );
    if (values.json) printJson(ctx.io, sim);
    else printSimulation(ctx.io, sim);
    return sim.ok ? 0 : 1;
  },
};

export const planCreate: Command = {
  ...commandSpec("plan create"),
  async run(ctx) {
    const { values, positionals } = parseCommandArgs(this, ctx.argv, {
      ...jsonOption,
      agent: { type: "string" },
    });
    const file = oneFile(this, positionals);
    const agent = requireAgent(this, values.agent);
    const plan = readPlanFile(file);
    const title = plan.title ?? basename(file);
    const r = await withClient(ctx, (c) =>
      againstFile(file, () => c.call("plan.create", { agent_id: agent, title, steps: plan.steps })),
    );
    if (values.json) printJson(ctx.io, r);
    else {
      printSimulation(ctx.io, r.simulation);
      ctx.io.out(`plan ${r.plan_id} recorded (hash ${r.hash}); run it with: aido plan execute ${r.plan_id}`);
    }
    return r.simulation.ok ? 0 : 1;
  },
};

export const planExecute: Command = {
  ...commandSpec("plan execute"),
  async run(ctx) {
    const { values, positionals } = parseCommandArgs(this, ctx.argv, {
      ...jsonOption,
      agent: { type: "string" },
      "on-failure": { type: "string" },
    });
    const [id] = positionals;
    if (positionals.length !== 1 || id === undefined)
      throw new UsageError(`give one plan id\nusage: ${this.usage}`);
    const onFailure = values["on-failure"];
    if (onFailure !== undefined && onFailure !== "stop" && onFailure !== "restore")
      throw new UsageError(`--on-failure must be stop or restore, got "${onFailure}"`);
    const r = await withClient(ctx, (c) =>
      c.call(
        "plan.execute",
        {
          plan_id: id,
          ...(values.agent ? { agent_id: values.agent } : {}),
          ...(onFailure ? { on_failure: onFailure } : {}),
        },
        // Steps may wait for a human: as long as an approval may take, and then some.
        { timeoutMs: 24 * 3600 * 1000 },
      ),
    );
    if (values.json) printJson(ctx.io, r);
    else printExecution(ctx.io, r);
    return r.status === "succeeded" ? 0 : 1;
  },
};

function describePlan(p: PlanSummary): string {
  return `${p.plan_id}  ${p.status.padEnd(9)}  ${p.steps} step(s)  agent=${p.agent_id}  ${p.created_at}  ${inert(p.title)}`;
}

export const planList: Command = {
  ...commandSpec("plan list"),
  async run(ctx) {
    const { values } = parseCommandArgs(this, ctx.argv, { ...jsonOption, agent: { type: "string" } }, false);
    const { plans } = await withClient(ctx, (c) =>
      c.call("plan.list", values.agent ? { agent_id: values.agent } : {}),
    );
    if (values.json) printJson(ctx.io, plans);
    else if (plans.length === 0) ctx.io.out("no plans");
    else for (const p of plans) ctx.io.out(describePlan(p));
    return 0;
  },
};
