// tools/registry.ts — the built-in tools, built once from the config and the services
// they need. The one list: the daemon, `tool.list` and the gate all take tools from here,
// so no path can silently lack one. (spawn_agent(s) are added by the kernel, memory_* and
// skill_read come from memory/ and skills/.)

import type { Config } from "../config.js";
import type { ToolDef } from "../gate/types.js";
import { createMemoryTools } from "../memory/tools.js";
import { type GoalFolders, goalFolders } from "../sandbox/folders.js";
import { WorkspaceQuota } from "../sandbox/quota.js";
import { SnapshotStore } from "../sandbox/snapshots.js";
import type { AuditLog } from "../security/audit.js";
import { createSkillTools } from "../skills/tools.js";
import { execTool } from "./exec.js";
import { fileTools } from "./files.js";
import { snapshotTools } from "./snapshot-tools.js";
import { webFetchTool } from "./web-fetch.js";

export interface BuiltinToolDeps {
  config: Config;
  snapshots?: SnapshotStore;
  /** The runtime's measure of each goal's writes (snapshot_restore is held to it). */
  quota?: WorkspaceQuota;
  /** A goal's host folders (a session's bound workspace included); default goalFolders. */
  folders?: (goalId: string) => GoalFolders;
  /** Where snapshot_create and snapshot_restore record snapshot.created / snapshot.restored. */
  audit?: AuditLog;
}

export function builtinTools({ config, snapshots, quota, folders, audit }: BuiltinToolDeps): ToolDef[] {
  const store =
    snapshots ?? new SnapshotStore({ goalsDir: config.goalsDir, maxMb: config.sandbox.snapshotsMaxMb });
  const held =
    quota ?? new WorkspaceQuota({ goalsDir: config.goalsDir, maxMb: config.sandbox.workspaceMaxMb });
  return [
    ...(fileTools as ToolDef[]),
    execTool(config.sandbox) as ToolDef,
    webFetchTool(config.webFetch) as ToolDef,
    ...snapshotTools({
      store,
      quota: held,
      roots: folders ?? ((goalId) => goalFolders(config.goalsDir, goalId)),
      ...(audit ? { audit } : {}),
    }),
    ...createMemoryTools(),
    ...createSkillTools(),
  ];
}
