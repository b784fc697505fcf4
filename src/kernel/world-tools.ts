// kernel/world-tools.ts — spawn_worlds and adopt_world as gate tools (kernel/worlds.ts
// does the work). spawn_worlds needs the tool grant and spawn_child for the manifest's
// name, as spawn_agent does, and a standing approval of it covers that manifest exactly as
// written. Its result is the worlds' receipts only (each child's summary and diff, wrapped
// as untrusted data): the children's conversations never reach the parent's context.
// adopt_world mutates the real folders: the gate snapshots before it, and each path of
// the world's diff is held to the caller's file_write grants and the policy.

import { z } from "zod";
import { wrapUntrusted } from "../agent/untrusted.js";
import { AidoError, ErrorCode } from "../errors.js";
import type { Need, ToolDef, ToolResult } from "../gate/types.js";
import type { PathChange } from "../sandbox/tree-diff.js";
import { boundOutput } from "../tools/output.js";
import type { AgentRegistry } from "./registry.js";
import { childName, manifestValue, spawnScope } from "./spawn-tools.js";
import { WORLDS_MAX, WORLDS_MIN } from "./world-admission.js";
import type { WorldReceipt, Worlds } from "./worlds.js";

export const SpawnWorldsInput = z.strictObject({
  task: z.string().min(1).max(100_000).describe("The task every world's child works on"),
  worlds: z
    .number()
    .int()
    .min(WORLDS_MIN)
    .max(WORLDS_MAX)
    .describe(`How many worlds (${WORLDS_MIN}..${WORLDS_MAX}, and at most your limits.max_children)`),
  manifest: manifestValue.describe(
    "The manifest of each world's child, as for spawn_agent (held to your grants; its budget.max_tokens times worlds must fit what you have left)",
  ),
});
export type SpawnWorldsInput = z.infer<typeof SpawnWorldsInput>;

export const AdoptWorldInput = z.strictObject({
  world_id: z
    .string()
    .regex(/^w_[0-9a-f]{16}$/, "a world id from spawn_worlds (w_ and 16 hex digits)")
    .describe("The world whose changes to apply to your /workspace and /output"),
});
export type AdoptWorldInput = z.infer<typeof AdoptWorldInput>;

export interface WorldToolDeps {
  registry: AgentRegistry;
  worlds: Worlds;
}

export function createWorldTools(deps: WorldToolDeps): ToolDef<unknown>[] {
  const spawn: ToolDef<SpawnWorldsInput> = {
    name: "spawn_worlds",
    description:
      "Try one task several ways at once: start N children from one manifest, each in its own copy of your " +
      "/workspace and /output with its own budget (an equal share of what you have left unless the manifest " +
      "sets budget.max_tokens) and conversation. Returns one receipt per world: the child's final answer and " +
      "the files it added, changed and deleted. Your folders are untouched; apply one world with adopt_world. " +
      "The worlds are discarded when you adopt one or your turn ends.",
    input: SpawnWorldsInput,
    mutates: false, // the real folders are only read (a snapshot); the copies are not the goal's
    async needs(input): Promise<Need[]> {
      return [
        { kind: "tool", name: "spawn_worlds" },
        { kind: "spawn_child", name: childName(input.manifest, "spawn_worlds input") },
      ];
    },
    approvalScope: (input) => spawnScope("spawn_worlds", [input.manifest]),
    async run(input, ctx): Promise<ToolResult> {
      const parent = deps.registry.require(ctx.agentId);
      const allowPath = ctx.allowPath;
      if (!allowPath) {
        throw new AidoError(
          ErrorCode.capabilityDenied,
          "spawn_worlds needs the gate's path check; refused",
          {},
        );
      }
      // A receipt's text diffs show only what the caller may read itself.
      const readable = (path: string) =>
        allowPath({ kind: "file_read", path }, { record: false }) === undefined;
      const receipts = await deps.worlds.spawn(
        parent,
        // A cancelled call (its MCP client gave up, its agent stopped) stops its worlds' children and discards them.
        {
          ...input,
          ...(ctx.trace ? { traceParent: ctx.trace } : {}),
          ...(ctx.signal ? { signal: ctx.signal } : {}),
        },
        readable,
      );
      const ready = receipts.filter((r) => r.stop_reason === "complete").length;
      const head =
        `${ready} of ${receipts.length} worlds completed. Your folders are unchanged: adopt_world {world_id} ` +
        "applies one world's changes and discards the others.";
      return {
        output: boundOutput([head, ...receipts.map(formatReceipt)].join("\n\n"), ctx.outputMaxBytes),
        data: { worlds: receipts },
        isError: receipts.every((r) => r.stop_reason === "refused"),
      };
    },
  };

  const adopt: ToolDef<AdoptWorldInput> = {
    name: "adopt_world",
    description:
      "Apply one world's changes (from spawn_worlds) to your /workspace and /output, where your file_write " +
      "grants allow every changed path (else nothing is written and the refused paths are listed); the other " +
      "worlds are discarded. Only the agent that spawned the worlds may adopt one, once.",
    input: AdoptWorldInput,
    mutates: true,
    needs: async () => [{ kind: "tool", name: "adopt_world" }],
    async run(input, ctx): Promise<ToolResult> {
      const allowPath = ctx.allowPath;
      if (!allowPath) {
        throw new AidoError(
          ErrorCode.capabilityDenied,
          "adopt_world needs the gate's path check; refused",
          {},
        );
      }
      const r = await deps.worlds.adopt(ctx.agentId, input.world_id, allowPath, () =>
        ctx.sandbox.realpath("/workspace"),
      );
      const failed = r.failed.map((f) => `  ${f.path}: ${f.reason}`).join("\n");
      const text = r.adopted
        ? `adopted ${r.world_id}: ${r.paths_applied} paths applied, ${r.failed.length} failed${failed ? `\n${failed}` : ""}` +
          (r.discarded.length > 0 ? `\ndiscarded: ${r.discarded.join(", ")}` : "")
        : `${r.world_id} not adopted, nothing was written: ${r.failed.length} path(s) you may not write\n${failed}`;
      return {
        output: boundOutput(text, ctx.outputMaxBytes),
        data: r,
        isError: !r.adopted || r.failed.length > 0,
      };
    },
  };
  return [spawn as ToolDef<unknown>, adopt as ToolDef<unknown>];
}

/** One world's receipt as the parent reads it: labelled, delimited, untrusted. */
function formatReceipt(r: WorldReceipt): string {
  const attrs: Record<string, string> = { world: r.world_id, stop: r.stop_reason };
  if (r.agent_id) attrs.agent = r.agent_id;
  const { counts } = r.diff;
  const lines = [
    r.stop_reason === "complete"
      ? r.summary
      : `${r.error ? `error (${r.error.code}): ${r.error.message}` : `stopped: ${r.stop_reason}`}${r.summary ? `\nlast text:\n${r.summary}` : ""}`,
    `files: ${counts.added} added, ${counts.changed} changed, ${counts.deleted} deleted`,
    ...r.diff.added.map((c) => line("added", c)),
    ...r.diff.changed.map((c) => line("changed", c)),
    ...r.diff.deleted.map((c) => line("deleted", c)),
  ];
  return wrapUntrusted("world_receipt", attrs, lines.join("\n"));
}

function line(kind: string, c: PathChange): string {
  return `${kind} ${c.path} (${c.type}, ${c.size} bytes)${c.diff ? `\n${c.diff}` : ""}`;
}
