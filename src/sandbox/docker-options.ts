// sandbox/docker-options.ts — what a DockerBackend (docker.ts) is made with: the engine, the
// user its containers run as, the labels and security options added to every container, the
// image build on first need, the goal folders an MCP server mounts, and where what the
// operator should know is said; and the default user (1000:1000 when the daemon is root, else
// the daemon's own ids).

import type Docker from "dockerode";
import type { GoalFolders } from "./folders.js";

export interface DockerBackendOptions {
  docker?: Docker;
  /** uid:gid inside the container. Default 1000:1000 when the daemon is root, else its own ids. */
  user?: string;
  /** Extra labels on every container made (tests mark theirs so leftovers can be found). */
  labels?: Record<string, string>;
  /**
   * Extra security options on every container made, after Aido's own (which they cannot
   * remove): e.g. `seccomp=<profile JSON>` for a stricter profile, or one that hides
   * Landlock to see exec refused as on a kernel without it.
   */
  securityOpt?: string[];
  /** Build the image on first need (default true); progress goes to onProgress. */
  ensureImage?: boolean;
  onProgress?: (message: string) => void;
  /**
   * A goal's host folders as the kernel sees them (a session's bound workspace included,
   * kernel/assemble.ts); what an MCP server's /workspace mount is made from. Default: the
   * goal's own folders, or the workspace its acquire bound.
   */
  folders?: (goalId: string) => GoalFolders;
  /** What the operator should know (said once): a kernel that skips a rule. */
  log?: (message: string) => void;
}

export function defaultUser(): string {
  const uid = process.getuid?.() ?? 1000;
  return uid === 0 ? "1000:1000" : `${uid}:${process.getgid?.() ?? uid}`;
}
