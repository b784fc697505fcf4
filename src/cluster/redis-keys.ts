// cluster/redis-keys.ts — every name the cluster uses in Redis, in one place, so that the
// mirror, the event streams, the command streams and the heartbeats can never disagree on
// where a thing lives. All under the "aido:" prefix (BullMQ's own keys: "bull:aido-goals:").

/** The BullMQ queue every node's Worker takes goals from. */
export const GOAL_QUEUE = "aido-goals";

export const RedisKeys = {
  /** Hash: one goal's mirrored status (cluster/goal-mirror.ts). */
  goal: (goalId: string) => `aido:goal:${goalId}`,
  /** Sorted set of goal ids by submit time (ms): goal.list. */
  goals: "aido:goals",
  /** Stream: one goal's events (XADD ... MAXLEN ~). */
  goalEvents: (goalId: string) => `aido:events:${goalId}`,
  /** Stream: every goal's events, for events.subscribe without a goal. */
  allEvents: "aido:events",
  /** Stream: goal.finished events only, what goal.wait on any node wakes on (goal-view.ts). */
  goalEnds: "aido:goal-ends",
  /** Hash: approval id -> the pending request (JSON, with its owner node). */
  approvals: "aido:approvals",
  /** Sorted set of pending approval ids by creation time (ms): a limited approval.list reads its first (approval-view.ts). */
  approvalsPending: "aido:approvals:pending",
  /** String: one settled (decided, timed out, expired) approval as JSON with its node; expires like an ended goal. */
  approvalSettled: (approvalId: string) => `aido:approval:${approvalId}`,
  /** Sorted set of settled approval ids by creation time (ms): approval.list (approval-view.ts). */
  approvalsSettled: "aido:approvals:settled",
  /** Set of every node id that ever joined. */
  nodes: "aido:nodes",
  /** Hash: a node's description and load, rewritten with each heartbeat. */
  node: (nodeId: string) => `aido:node:${nodeId}`,
  /** String with a TTL of one lease: present while the node heartbeats. */
  alive: (nodeId: string) => `aido:node:${nodeId}:alive`,
  /** Stream: commands routed to a node (cancel, approval answers). */
  commands: (nodeId: string) => `aido:node:${nodeId}:commands`,
  /** Hash: the newest signed audit head a node published (cluster/audit-heads.ts). */
  auditHead: (nodeId: string) => `aido:audit-head:${nodeId}`,
  /**
   * String with a TTL of one heartbeat: the node that sweeps for orphaned jobs this period
   * (job-intake.ts requeueOrphans); set NX by whichever node's heartbeat comes first.
   */
  sweepLease: "aido:sweep:lease",
  /** String: where the next sweep's page of older failed jobs starts (shared by the sweepers). */
  sweepFrom: "aido:sweep:from",
  /** Sorted set: a provider's cluster-wide inference slots held, by lease expiry (inference-slots.ts). */
  inferenceSlots: (provider: string) => `aido:inference:${provider}`,
  /** Stream: the answers to the routed commands a node sent, each read once and deleted by it. */
  replies: (nodeId: string) => `aido:node:${nodeId}:replies`,
  /**
   * String: who has one routed command — "pending" (sent), "taken" by its node, or
   * "withdrawn" by its sender, who gave up waiting (cluster/commands.ts).
   */
  request: (requestId: string) => `aido:request:${requestId}`,
  /**
   * String: the MCP session ended, with the reason its goals end with: written by its node for a
   * cancel Redis could not take as the session ended (kept-cancels.ts); read by a node taking
   * one of its goals, which then never starts it.
   */
  sessionEnded: (sessionId: string) => `aido:session-ended:${sessionId}`,
} as const;

/** How many events a goal's stream keeps (approximately: MAXLEN ~). */
export const GOAL_EVENTS_MAXLEN = 5_000;
/** How many events the all-goals stream keeps. */
export const ALL_EVENTS_MAXLEN = 20_000;
/** How many goal ends the goal-ends stream keeps. */
export const GOAL_ENDS_MAXLEN = 10_000;
/** How many settled approvals the cluster's index keeps (the newest), for approval.list. */
export const SETTLED_APPROVALS_KEPT = 10_000;
/** How long a goal's hash and stream stay after the goal ended. */
export const ENDED_TTL_SECONDS = 7 * 24 * 3600;
