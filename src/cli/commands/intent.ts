// cli/commands/intent.ts — `aido intent set | step | status | clear`: the persistent intent
// of a project folder (docs/intent.md) over the daemon socket. The folder is the current
// one unless --workspace names another; the daemon resolves it, so every client naming
// the same folder (the CLI, an MCP session) reaches the same intent. The objective, the
// notes and who set them come from any socket client, an MCP client's model among them:
// printed as inert text (security/terminal-text.ts), --json as exact JSON.

import { resolve } from "node:path";
import type { Intent, IntentCheckResult } from "../../intent/store.js";
import { inert, inertLines } from "../../security/terminal-text.js";
import { type CliIo, type Command, jsonOption, parseCommandArgs, printJson, UsageError } from "../command.js";
import { withClient } from "./daemon-client.js";
import { commandSpec } from "./index.js";

/** What the CLI records as who changed an intent. */
const BY = "aido cli";
/** Notes `aido intent status` prints (the daemon keeps more). */
const NOTES_PRINTED = 5;

const workspaceOption = { workspace: { type: "string" } } as const;
const workspaceOf = (v: { workspace?: string | undefined }): string => resolve(v.workspace ?? process.cwd());

function positionalText(cmd: Command, positionals: string[], what: string): string {
  const text = positionals.join(" ");
  if (text.trim() === "") throw new UsageError(`give the ${what}\nusage: ${cmd.usage}`);
  return text;
}

function describeCheck(c: IntentCheckResult | null, command: string | null): string {
  if (command === null && c === null) return "(none)";
  if (c === null) return "never run";
  const outcome = c.denied
    ? `refused at the ${c.denied.stage} stage: ${inert(c.denied.reason)}`
    : c.error !== undefined
      ? `could not run: ${inert(c.error)}`
      : c.met
        ? "met (exit code 0)"
        : `not met (${c.timed_out ? "timed out" : `exit code ${c.exit_code}`})`;
  return `${outcome} at ${c.at}, as agent ${c.agent_id}`;
}

function tokensLine(i: Intent): string {
  return i.budget_tokens === null
    ? `${i.tokens_spent} spent (no budget)`
    : `${i.tokens_spent} spent of ${i.budget_tokens} (${i.tokens_left} left)`;
}

function printIntent(io: CliIo, i: Intent): void {
  const ended = i.ended_at ? `, ${i.state} by ${inert(i.ended_by ?? "?")} at ${i.ended_at}` : "";
  io.out(`intent      ${i.id}  (${i.state}; set by ${inert(i.set_by)} at ${i.created_at}${ended})`);
  io.out(`workspace   ${inert(i.workspace)}`);
  io.out(`objective   ${inertLines(i.objective).replace(/\n/g, "\n            ")}`);
  io.out(`steps       ${i.step_count}`);
  for (const n of i.notes.slice(-NOTES_PRINTED)) {
    io.out(`  ${n.step}. ${inertLines(n.note).replace(/\n/g, "\n     ")}${n.by ? `  (${inert(n.by)})` : ""}`);
  }
  io.out(`tokens      ${tokensLine(i)}`);
  io.out(`check       ${i.check === null ? "(none)" : inert(i.check)}`);
  io.out(`last check  ${describeCheck(i.last_check, i.check)}`);
  if (i.last_check && i.last_check.output.trim() !== "" && !i.last_check.denied) {
    io.out(inertLines(i.last_check.output.trimEnd()));
  }
}

export const intentSet: Command = {
  ...commandSpec("intent set"),
  async run(ctx) {
    const { values, positionals } = parseCommandArgs(this, ctx.argv, {
      ...jsonOption,
      ...workspaceOption,
      budget: { type: "string" },
      check: { type: "string" },
    });
    const objective = positionalText(this, positionals, "objective");
    const budget = values.budget === undefined ? undefined : Number(values.budget);
    if (budget !== undefined && (!Number.isSafeInteger(budget) || budget <= 0))
      throw new UsageError(`--budget must be a positive integer of tokens, got "${values.budget}"`);
    const i = await withClient(ctx, (c) =>
      c.call("intent.set", {
        workspace: workspaceOf(values),
        objective,
        by: BY,
        ...(budget !== undefined ? { budget_tokens: budget } : {}),
        ...(values.check !== undefined ? { check: values.check } : {}),
      }),
    );
    if (values.json) printJson(ctx.io, i);
    else printIntent(ctx.io, i);
    return 0;
  },
};

export const intentStep: Command = {
  ...commandSpec("intent step"),
  async run(ctx) {
    const { values, positionals } = parseCommandArgs(this, ctx.argv, { ...jsonOption, ...workspaceOption });
    const note = positionalText(this, positionals, "note");
    const i = await withClient(ctx, (c) =>
      c.call("intent.step", { workspace: workspaceOf(values), note, by: BY }),
    );
    if (values.json) printJson(ctx.io, i);
    else ctx.io.out(`step ${i.step_count} recorded for ${i.id}: ${inertLines(note)}`);
    return 0;
  },
};

export const intentStatus: Command = {
  ...commandSpec("intent status"),
  async run(ctx) {
    const { values } = parseCommandArgs(
      this,
      ctx.argv,
      { ...jsonOption, ...workspaceOption, history: { type: "boolean" } },
      false,
    );
    const workspace = workspaceOf(values);
    const s = await withClient(ctx, (c) =>
      c.call("intent.status", { workspace, ...(values.history ? { history: true } : {}) }),
    );
    if (values.json) {
      printJson(ctx.io, s);
      return 0;
    }
    if (s.intent) printIntent(ctx.io, s.intent);
    else ctx.io.out(`no active intent for ${inert(workspace)} (set one with: aido intent set "OBJECTIVE")`);
    for (const h of s.history ?? []) {
      const flat = h.objective.replace(/\s+/g, " ");
      ctx.io.out(
        `${h.id}  ${h.state.padEnd(8)}  ${h.created_at.slice(0, 19).replace("T", " ")}  ${h.step_count} steps  ${h.tokens_spent} tok  ${inert(flat.length > 60 ? `${flat.slice(0, 59)}…` : flat)}`,
      );
    }
    return 0;
  },
};

export const intentClear: Command = {
  ...commandSpec("intent clear"),
  async run(ctx) {
    const { values } = parseCommandArgs(this, ctx.argv, { ...jsonOption, ...workspaceOption }, false);
    const i = await withClient(ctx, (c) =>
      c.call("intent.clear", { workspace: workspaceOf(values), by: BY }),
    );
    if (values.json) printJson(ctx.io, i);
    else ctx.io.out(`cleared ${i.id} (${i.step_count} steps, ${tokensLine(i)})`);
    return 0;
  },
};
