// tools/snapshot-tools.ts — snapshot_create {label?}, snapshot_restore {id},
// snapshot_list: the agent-facing side of sandbox/snapshots.ts. Snapshots are taken and
// restored on the host, over the goal's /workspace and /output folders.
//
// A snapshot must not become a way around the agent's grants:
//   - snapshot_create copies all of /workspace and /output, so it needs file_read on both
//     whole trees (it reports only counts, but counts of what it copied).
//   - snapshot_restore needs only the tool: every path it would change is checked as it
//     goes against the agent's file_write grants and the policy's path rules
//     (ToolContext.allowPath). A refused path is left as it is and reported in
//     files_failed (by name where the agent may read it; otherwise only counted, so a
//     restore does not list names the agent could not list), and the refusals are
//     audited. We restore what is allowed rather than refuse the whole restore: a child
//     holding /workspace/src/** must be able to undo its own work.
//   - snapshot_list shows ids, labels and times to any holder of the tool (ids are what a
//     restore needs); file and byte counts only to an agent that may read both trees.

import { z } from "zod";
import { AidoError, ErrorCode } from "../errors.js";
import type { PathNeed, ToolContext, ToolDef } from "../gate/types.js";
import { MIN_ENTRY_BYTES, type WorkspaceQuota } from "../sandbox/quota.js";
import type { RestoreResult } from "../sandbox/snapshot-restore.js";
import { isSnapshotId, type SnapshotRoots, type SnapshotStore } from "../sandbox/snapshots.js";
import type { AuditLog } from "../security/audit.js";
import { boundOutput } from "./output.js";

export interface SnapshotToolDeps {
  store: SnapshotStore;
  /** Host folders of a goal's /workspace and /output (sandbox/folders.ts goalFolders). */
  roots(goalId: string): SnapshotRoots;
  /** A restore that would put the goal's files past sandbox.workspace_max_mb is refused. */
  quota: WorkspaceQuota;
  /** Records snapshot.created and snapshot.restored (the call itself is the gate's to audit). */
  audit?: AuditLog;
}

const createInput = z.strictObject({
  label: z
    .string()
    .min(1)
    .max(200)
    .refine((s) => !s.includes("\0"))
    .optional(),
});
const restoreInput = z.strictObject({ id: z.string().max(64).refine(isSnapshotId, "not a snapshot id") });
const listInput = z.strictObject({});

/** Reading all of what a snapshot holds. */
const WHOLE_TREES: PathNeed[] = [
  { kind: "file_read", path: "/workspace/**" },
  { kind: "file_read", path: "/output/**" },
];

const NO_PATH_CHECK = "this call cannot check paths against grants";

/**
 * A restore makes /workspace and /output equal to the snapshot (where grants allow): at
 * most, the goal then holds the snapshot's files (each charged at least a 4 KiB block).
 * Refused when that passes the cap and is more than the goal holds now (a restore that
 * frees room is fine).
 */
/**
 * A restore whose caller has gone (its agent stopped, its client left: ToolContext.signal),
 * most likely while the gate took the snapshot before it, is given up before it changes
 * anything. Once it has begun it runs to its end: a restore stopped halfway would leave the
 * workspace neither as it was nor as the snapshot. Before, it looked at no cancel at all.
 */
function refuseIfGone(ctx: ToolContext, id: string): void {
  if (ctx.signal?.aborted)
    throw new AidoError(
      ErrorCode.cancelled,
      `snapshot_restore of ${id} was cancelled before it changed anything (its caller had gone); nothing was restored`,
      { snapshot_id: id },
    );
}

async function admitRestore(deps: SnapshotToolDeps, goalId: string, id: string): Promise<void> {
  const snap = (await deps.store.list(goalId)).find((s) => s.id === id);
  if (!snap) return; // restore() reports the unknown id
  const now = await deps.quota.usage(goalId, { fresh: true });
  const after = Math.max(snap.bytes, snap.files * MIN_ENTRY_BYTES);
  await deps.quota.admit(goalId, after - now.bytes, `snapshot_restore of ${id}`);
}

export function snapshotTools(deps: SnapshotToolDeps): ToolDef[] {
  const create: ToolDef<z.infer<typeof createInput>> = {
    name: "snapshot_create",
    description: "Save the current state of /workspace and /output; returns an id for snapshot_restore.",
    input: createInput,
    mutates: false,
    needs: async () => [{ kind: "tool", name: "snapshot_create" }, ...WHOLE_TREES],
    async run(i, ctx) {
      const s = await deps.store.create(ctx.goalId, deps.roots(ctx.goalId), i.label, { actor: ctx.agentId });
      deps.audit?.record(
        "snapshot.created",
        { snapshot_id: s.id, ...(i.label !== undefined ? { label: i.label } : {}), files: s.files },
        { goalId: ctx.goalId, agentId: ctx.agentId },
      );
      return {
        output: `snapshot ${s.id}: ${s.files} files, ${s.bytes} bytes (${s.changed} changed since the last)`,
        data: s,
      };
    },
  };
  const restore: ToolDef<z.infer<typeof restoreInput>> = {
    name: "snapshot_restore",
    description:
      "Make /workspace and /output equal to a snapshot again, where your file_write grants allow; " +
      "reports files restored and those left as they are.",
    input: restoreInput,
    mutates: true,
    // The snapshot before the restore must not prune the one restored to make room.
    keepsSnapshots: (i) => [i.id],
    needs: async () => [{ kind: "tool", name: "snapshot_restore" }],
    async run(i, ctx) {
      const permit = (path: string) =>
        ctx.allowPath ? ctx.allowPath({ kind: "file_write", path }) : NO_PATH_CHECK;
      refuseIfGone(ctx, i.id);
      await admitRestore(deps, ctx.goalId, i.id);
      refuseIfGone(ctx, i.id);
      const r = await deps.store.restore(ctx.goalId, deps.roots(ctx.goalId), i.id, permit);
      deps.audit?.record(
        "snapshot.restored",
        { snapshot_id: i.id, files_restored: r.files_restored, files_failed: r.files_failed.length },
        { goalId: ctx.goalId, agentId: ctx.agentId },
      );
      const result = reportable(r, ctx);
      const failed = result.files_failed.map((f) => `  ${f.path}: ${f.reason}`).join("\n");
      const text = `restored ${i.id}: ${result.files_restored} paths changed, ${result.files_failed.length} failed${failed ? `\n${failed}` : ""}`;
      return {
        output: boundOutput(text, ctx.outputMaxBytes),
        data: result,
        isError: result.files_failed.length > 0,
      };
    },
  };
  const list: ToolDef<z.infer<typeof listInput>> = {
    name: "snapshot_list",
    description: "List this goal's snapshots (of /workspace and /output), oldest first.",
    input: listInput,
    mutates: false,
    needs: async () => [{ kind: "tool", name: "snapshot_list" }],
    async run(_i, ctx) {
      const all = await deps.store.list(ctx.goalId);
      const counts = WHOLE_TREES.every((n) => ctx.allowPath?.(n, { record: false }) === undefined);
      const shown = all.map((s) =>
        counts ? s : { id: s.id, created_at: s.created_at, ...(s.label ? { label: s.label } : {}) },
      );
      const lines = all.map(
        (s) =>
          `${s.id}  ${s.created_at}${counts ? `  ${s.files} files  ${s.bytes} bytes` : ""}${s.label ? `  ${s.label}` : ""}`,
      );
      return { output: boundOutput(lines.join("\n") || "(no snapshots)", ctx.outputMaxBytes), data: shown };
    },
  };
  return [create, restore, list] as ToolDef[];
}

/**
 * What the agent is told: failures by name, except refused paths it may not read either,
 * which are counted per root instead of named.
 */
function reportable(r: RestoreResult, ctx: ToolContext): RestoreResult {
  const failed: RestoreResult["files_failed"] = [];
  const hidden = new Map<string, number>();
  for (const f of r.files_failed) {
    const readable = ctx.allowPath?.({ kind: "file_read", path: f.path }, { record: false }) === undefined;
    if (!f.refused || readable) failed.push({ path: f.path, reason: f.reason });
    else {
      const root = `/${f.path.split("/")[1]}`;
      hidden.set(root, (hidden.get(root) ?? 0) + 1);
    }
  }
  for (const [root, n] of hidden) {
    failed.push({
      path: root,
      reason: `${n} path(s) under ${root} that your grants and the policy let you neither read nor write were left as they are`,
    });
  }
  return { files_restored: r.files_restored, files_failed: failed };
}
