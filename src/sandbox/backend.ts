// sandbox/backend.ts — the seam between the kernel and whatever runs goal containers.
// The kernel acquires one sandbox per goal, stops or removes it when the goal ends, and
// after a daemon restart re-attaches to the containers still running. DockerBackend
// (docker.ts) is the implementation; the interface keeps the kernel free of dockerode.

import type { SandboxLimits } from "./container-spec.js";
import type { EgressEndpoint } from "./egress-network.js";
import type { McpServerContainer, McpServerSpec } from "./mcp-container.js";
import type { SandboxHandle } from "./types.js";

export interface AcquireOptions {
  /** Limits for this goal (e.g. from its manifest): each may only be lower than the config's. */
  limits?: Partial<SandboxLimits>;
  /** Host files or folders copied into the goal's inputs folder, seen read-only at /inputs. */
  inputs?: string[];
  /**
   * The skills mounted read-only at /skills/<name> (the goal root's allowed list: no agent
   * of the goal may read others). Absent: every discovered skill.
   */
  skills?: readonly string[];
  /**
   * A checked host folder (sandbox/workspace-binds.ts) mounted as /workspace instead of the
   * goal's own workspace folder: an MCP session on the user's project. Never from the pool.
   */
  workspace?: string;
  /**
   * The folder shared with the goal's egress relay ($AIDO_HOME/egress/<goal>): the
   * container joins the goal's egress network (made with its relay on first need) instead
   * of none. Never from the pool.
   */
  egressShare?: string;
  /**
   * Given up by every call that waited for it (sandbox/lazy.ts): its wait for a frozen goal's thaw
   * ends (cancelled) and no container is made. Once past that wait the container is made.
   */
  signal?: AbortSignal;
}

export interface GcOptions {
  /** Whether a goal is still running (or queued): containers of other goals are orphans. */
  isGoalLive: (goalId: string) => boolean | Promise<boolean>;
  /**
   * Also delete the folders of goals that are not live and were not touched for the
   * TTL. Never follows a symlink. Off unless asked: deleting the folder is the only way
   * a goal's files go away.
   */
  removeExpiredFolders?: boolean;
  /** Clock for expiry checks (epoch seconds); default now. */
  nowSeconds?: number;
}

export interface RemovedContainer {
  name: string;
  containerId: string;
  /** The goal it belonged to (absent for a warm-pool slot). */
  goalId?: string;
  /** It was this external MCP server's container (sandbox/mcp-container.ts), not the goal's. */
  mcpServer?: string;
  reason: "expired" | "orphan" | "stale-pool" | "stopped";
}

/** A container a sweep meant to remove that the engine would not remove (it stays; the next sweep tries again). */
export interface FailedContainer extends RemovedContainer {
  /** The engine's answer. */
  error: string;
}

export interface GcReport {
  removedContainers: RemovedContainer[];
  /** Goal folders removed (removeExpiredFolders) and warm-pool folders no process owns. */
  removedFolders: string[];
  /**
   * Folders whose removal failed (what a goal left there would not go), with why: the rest
   * of the sweep went on, and the next sweep tries them again.
   */
  failedFolders: Array<{ path: string; error: string }>;
  /**
   * Containers whose removal the engine refused (an error for that one container): the rest
   * of the sweep went on, and the next sweep tries them again. One already gone counts as
   * removed.
   */
  failedContainers: FailedContainer[];
  /** Goals whose egress relay and network were removed (ended goals, or containers removed now). */
  removedEgress?: string[];
}

export interface SandboxBackend {
  acquire(goalId: string, opts?: AcquireOptions): Promise<SandboxHandle>;
  /** Stop the goal's container; its folders stay. The next acquire starts a new one. */
  stop(goalId: string): Promise<void>;
  /**
   * Remove the goal's container for good: the goal is retired, so a call still in flight
   * cannot start a new one (a later acquire is refused), and a container being made for
   * it right now is removed once it exists (without waiting for it here). The goal's MCP
   * server containers go too. With deleteFolders also its folders (never through a link).
   */
  remove(goalId: string, opts?: { deleteFolders?: boolean }): Promise<void>;
  /**
   * Freeze the goal's container and its stdio MCP servers' containers (docker pause: their
   * processes stop where they are, an exec or a server's call under way included) while its
   * node is fenced (cluster/fence.ts), until unpause or remove. Meanwhile a container acquired
   * for the goal waits to be made, and a server started for it waits to be started. "paused":
   * frozen (or no container yet); "unsupported": this backend cannot freeze, and what runs goes on.
   */
  pause(goalId: string): Promise<"paused" | "unsupported">;
  /**
   * Let the goal's container and its servers' run again (the fence is lifted and the goal is
   * still its node's); what waits on them goes on once the engine has answered. A refusal
   * (thrown) leaves the goal frozen, what waits on it waiting, for a later unpause; with
   * `last` (the fence gives up), its containers are removed instead (a refusal, or no answer
   * within `answerMs`: the fence's lease; 10 s, sandbox/frozen-goals.ts LAST_ANSWER_MS, unless
   * given) and what waits goes on, once they are removed, in a fresh container over the same
   * workspace. A goal removed meanwhile (remove) is no refusal: it answers, nothing given up.
   */
  unpause(goalId: string, opts?: { last?: boolean; answerMs?: number }): Promise<void>;
  /**
   * Start an external stdio MCP server for a goal in a container of its own
   * (sandbox/mcp-container.ts). Refused once the goal is retired; removed with the goal. While
   * the goal is frozen the start waits for its thaw, or until `signal` aborts (cancelled).
   */
  startMcpServer(spec: McpServerSpec, signal?: AbortSignal): Promise<McpServerContainer>;
  /** Find this runtime's running goal containers (after a restart); returns their goal ids. */
  reattach(): Promise<string[]>;
  gc(opts: GcOptions): Promise<GcReport>;
  /**
   * The goal's egress network and relay over `share`, made on first call: where its callers'
   * proxy variables point. A backend without it runs no goal that may use the network.
   */
  egress?(goalId: string, share: string): Promise<EgressEndpoint>;
  /**
   * The egress network and relay egress() made for `goalId` go now, not with their goal: an MCP
   * server's whose start was cancelled (tools/mcp/stdio-start.ts).
   */
  removeEgress?(goalId: string): Promise<void>;
  /**
   * Settles once the goal is not frozen (true), or as `signal` aborts first (false). A backend
   * that cannot freeze leaves it out: its goals are never frozen.
   */
  untilThawed?(goalId: string, signal?: AbortSignal): Promise<boolean>;
  /**
   * How many times the goal was frozen so far, null while it is frozen: a start that read it
   * before making something tells by it whether a fence fell meanwhile (tools/mcp/stdio-start.ts).
   */
  freezes?(goalId: string): number | null;
  /**
   * Release everything this process holds: sessions, idle warm-pool containers, and the MCP
   * server containers it started (nothing else could speak to them after it is gone).
   */
  close(): Promise<void>;
}
