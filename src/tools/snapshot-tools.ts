// tools/snapshot-tools.ts — snapshot_create {label?}, snapshot_restore {id},
// snapshot_list: the agent-facing side of sandbox/snapshots.ts. Snapshots are taken and
// restored on the host, over the goal's workspace folder; restore may rewrite anything
// under /workspace, so it needs file_write on all of it.

import { z } from "zod";
import type { ToolDef } from "../gate/types.js";
import { isSnapshotId, type SnapshotStore } from "../sandbox/snapshots.js";
import { boundOutput } from "./output.js";

export interface SnapshotToolDeps {
  store: SnapshotStore;
  /** Host folder of a goal's workspace (sandbox/folders.ts goalFolders().workspace). */
  workspaceDir(goalId: string): string;
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

export function snapshotTools(deps: SnapshotToolDeps): ToolDef[] {
  const create: ToolDef<z.infer<typeof createInput>> = {
    name: "snapshot_create",
    description: "Save the current state of /workspace; returns an id for snapshot_restore.",
    input: createInput,
    mutates: false,
    needs: async () => [
      { kind: "tool", name: "snapshot_create" },
      { kind: "file_read", path: "/workspace/**" },
    ],
    async run(i, ctx) {
      const s = await deps.store.create(ctx.goalId, deps.workspaceDir(ctx.goalId), i.label);
      return {
        output: `snapshot ${s.id}: ${s.files} files, ${s.bytes} bytes (${s.changed} changed since the last)`,
        data: s,
      };
    },
  };
  const restore: ToolDef<z.infer<typeof restoreInput>> = {
    name: "snapshot_restore",
    description: "Make /workspace equal to a snapshot again; reports files restored and any that failed.",
    input: restoreInput,
    mutates: true,
    needs: async () => [
      { kind: "tool", name: "snapshot_restore" },
      { kind: "file_write", path: "/workspace/**" },
    ],
    async run(i, ctx) {
      const r = await deps.store.restore(ctx.goalId, deps.workspaceDir(ctx.goalId), i.id);
      const failed = r.files_failed.map((f) => `  ${f.path}: ${f.reason}`).join("\n");
      const text = `restored ${i.id}: ${r.files_restored} paths changed, ${r.files_failed.length} failed${failed ? `\n${failed}` : ""}`;
      return { output: boundOutput(text, ctx.outputMaxBytes), data: r, isError: r.files_failed.length > 0 };
    },
  };
  const list: ToolDef<z.infer<typeof listInput>> = {
    name: "snapshot_list",
    description: "List this goal's snapshots, oldest first.",
    input: listInput,
    mutates: false,
    needs: async () => [{ kind: "tool", name: "snapshot_list" }],
    async run(_i, ctx) {
      const all = await deps.store.list(ctx.goalId);
      const lines = all.map(
        (s) => `${s.id}  ${s.created_at}  ${s.files} files  ${s.bytes} bytes${s.label ? `  ${s.label}` : ""}`,
      );
      return { output: boundOutput(lines.join("\n") || "(no snapshots)", ctx.outputMaxBytes), data: all };
    },
  };
  return [create, restore, list] as ToolDef[];
}
