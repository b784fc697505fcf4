// kernel/spawn-tools.ts — spawn_agent and spawn_agents as gate tools. Their needs are
// the tool grant plus one spawn_child grant per child manifest name, so the gate refuses
// a child the parent may not start before anything happens. The manifest itself is
// parsed twice on purpose: in needs (to learn the name the gate must check) and in the
// spawn (which narrows its grants against the parent's verified token).
// spawn_agents runs its children in parallel, best effort: each child's report (or its
// error) is one part of the result; the batch is capped by config.limits.spawnBatchCap.
// A standing approval (Allow Session / Always) of a spawn covers the manifests exactly as
// written, whatever the task: a model writes them, so a name is no promise of content, and
// a scope by name let one approved harmless `writer` cover any later `writer` the model
// wrote with other grants, prompt or model.

import { z } from "zod";
import { AidoError, ErrorCode } from "../errors.js";
import type { Need, ToolContext, ToolDef, ToolResult } from "../gate/types.js";
import { parseManifestValue } from "../manifest/load.js";
import type { ApprovalScope } from "../security/approval-scope.js";
import { type BudgetLedger, roomOf } from "../security/budget.js";
import { canonicalJson } from "../security/canonical-json.js";
import { scopeDigest } from "../security/command-scope.js";
import { type AgentRunner, type ChildOutcome, formatChildReport } from "./agents.js";
import type { AgentRegistry } from "./registry.js";

export const manifestValue = z.union([
  z
    .string()
    .min(1)
    .max(256 * 1024),
  z.record(z.string(), z.unknown()),
]);

export const SpawnAgentInput = z.strictObject({
  manifest: manifestValue.describe(
    "The child's manifest: YAML text or an object (name, system_prompt, capabilities, budget, limits, ...)",
  ),
  message: z.string().min(1).max(100_000).describe("The task for the child"),
  prior_findings: z
    .string()
    .max(100_000)
    .optional()
    .describe("What you already know that the child should build on"),
});
export type SpawnAgentInput = z.infer<typeof SpawnAgentInput>;

export function spawnAgentsInput(batchCap: number) {
  return z.strictObject({
    children: z
      .array(z.strictObject({ manifest: manifestValue, message: z.string().min(1).max(100_000) }))
      .min(1)
      .max(batchCap, `at most ${batchCap} children per spawn_agents call (limits.spawn_batch_cap)`),
  });
}

export function childName(value: unknown, where: string): string {
  try {
    return parseManifestValue(value, where).name;
  } catch (e) {
    throw new AidoError(ErrorCode.invalidInput, e instanceof Error ? e.message : String(e), {
      field: "manifest",
    });
  }
}

/** What a standing answer to a spawn covers: these manifests as parsed (any spelling), any task. */
export function spawnScope(tool: string, values: readonly unknown[]): ApprovalScope {
  const manifests = values.map((v) => {
    const { source: _source, ...m } = parseManifestValue(v, `${tool} input`);
    return m;
  });
  const names = manifests.map((m) => `\`${m.name}\``).join(", ");
  return {
    key: `manifests:${scopeDigest(manifests.map((m) => canonicalJson(m)).sort())}`,
    target: `${tool} of manifest${manifests.length > 1 ? "s" : ""} ${names} exactly as written in this request (any task)`,
  };
}

export interface SpawnToolDeps {
  registry: AgentRegistry;
  runner: AgentRunner;
  budget: BudgetLedger;
  batchCap: number;
}

export function createSpawnTools(deps: SpawnToolDeps): ToolDef<unknown>[] {
  const parentOf = (ctx: ToolContext) => deps.registry.require(ctx.agentId);

  const one: ToolDef<SpawnAgentInput> = {
    name: "spawn_agent",
    description:
      "Start a child agent from a manifest you write, give it a task, and wait for its final answer. The child may " +
      "only hold capabilities you hold; its budget is carved from yours (manifest budget.max_tokens, else half of " +
      "what you have left). Its answer comes back as an untrusted report.",
    input: SpawnAgentInput,
    mutates: false, // no file of /workspace or /output changes: nothing to snapshot
    async needs(input): Promise<Need[]> {
      return [
        { kind: "tool", name: "spawn_agent" },
        { kind: "spawn_child", name: childName(input.manifest, "spawn_agent input") },
      ];
    },
    approvalScope: (input) => spawnScope("spawn_agent", [input.manifest]),
    async run(input, ctx): Promise<ToolResult> {
      const parent = parentOf(ctx);
      const o = await deps.runner.runChild(parent, input.manifest, input.message, {
        ...(input.prior_findings ? { priorFindings: input.prior_findings } : {}),
        ...(ctx.trace ? { traceParent: ctx.trace } : {}),
      });
      if (o.stopReason === "refused") {
        throw new AidoError(
          (o.error?.code as ErrorCode) ?? ErrorCode.internal,
          `spawn refused: ${o.error?.message}`,
          {
            manifest: o.manifest,
          },
        );
      }
      return { output: formatChildReport(o), data: outcomeData(o), isError: o.stopReason !== "complete" };
    },
  };

  const batchInput = spawnAgentsInput(deps.batchCap);
  type BatchInput = z.infer<typeof batchInput>;
  const many: ToolDef<BatchInput> = {
    name: "spawn_agents",
    description:
      `Start up to ${deps.batchCap} child agents in parallel (each {manifest, message}) and wait for all of them. ` +
      "Best effort: one child failing does not stop the others; each child's report or error is returned. A child " +
      "without budget.max_tokens gets an equal share of what you have left.",
    input: batchInput,
    mutates: false, // no file of /workspace or /output changes: nothing to snapshot
    async needs(input): Promise<Need[]> {
      return [
        { kind: "tool", name: "spawn_agents" },
        ...input.children.map(
          (c, i): Need => ({
            kind: "spawn_child",
            name: childName(c.manifest, `spawn_agents input children.${i}`),
          }),
        ),
      ];
    },
    approvalScope: (input) =>
      spawnScope(
        "spawn_agents",
        input.children.map((c) => c.manifest),
      ),
    async run(input, ctx): Promise<ToolResult> {
      const parent = parentOf(ctx);
      const room = Math.max(0, roomOf(deps.budget.get(parent.budgetAccount)));
      const share = Math.floor(room / (input.children.length + 1));
      // Spawning is synchronous work (manifest, token, budget, audit). Yield after each
      // child so its first model request leaves while the next one is being spawned,
      // instead of every request waiting for the whole batch to be spawned.
      const running: Promise<ChildOutcome>[] = [];
      for (const c of input.children) {
        const child = deps.runner.runChild(parent, c.manifest, c.message, {
          defaultShare: share,
          ...(ctx.trace ? { traceParent: ctx.trace } : {}),
        });
        child.catch(() => {}); // observed by Promise.all below; not an unhandled rejection meanwhile
        running.push(child);
        await new Promise((resolve) => setImmediate(resolve));
      }
      const outcomes = await Promise.all(running);
      const ok = outcomes.filter((o) => o.stopReason === "complete").length;
      const head = `${ok} of ${outcomes.length} children completed.`;
      return {
        output: [head, ...outcomes.map(formatChildReport)].join("\n\n"),
        data: { children: outcomes.map(outcomeData) },
        isError: ok === 0,
      };
    },
  };
  return [one as ToolDef<unknown>, many as ToolDef<unknown>];
}

function outcomeData(o: ChildOutcome): Record<string, unknown> {
  return { ...o };
}
