// ui/web/wire.ts — the shapes the page reads from the daemon's HTTP interface
// (docs/ui.md "HTTP interface"): socket method answers through /api/rpc and events from
// /api/events, exactly as the socket sends them (docs/daemon.md). The page is bundled
// for the browser apart from the Node code, so these mirror the daemon's types rather
// than import them; fields a daemon may leave out are optional, and the page shows what
// is there.

export type GoalState = "queued" | "running" | "succeeded" | "failed" | "cancelled";

export interface Usage {
  input_tokens: number;
  output_tokens: number;
}

export interface Goal {
  goal_id: string;
  state: GoalState;
  goal: string;
  result?: string;
  error?: string;
  usage: Usage;
  created_at: string;
  started_at?: string;
  finished_at?: string;
  agent_id?: string;
  intent_id?: string;
  /** Cluster mode: the node that runs (or ran) it, and the node it was submitted to. */
  node?: string;
  submitted_via?: string;
  /**
   * Set when the node answered from its own record because Redis could not be read (it did
   * not answer, or refused): the cluster's view as of `as_of`, its last heartbeat Redis took.
   */
  cluster?: { redis: "unreachable" | "refused"; reason: string; as_of: string | null };
}

export interface Agent {
  agent_id: string;
  goal_id: string;
  parent_id: string | null;
  manifest: string;
  description?: string;
  model: string;
  state: string;
  depth: number;
  children: string[];
  created_at: string;
  stop_reason?: string;
  /** The budget account it draws on: spent by it and its subtree, of the limit; shared: the goal's. */
  budget?: { spent: number; limit: number; shared: boolean };
  /** Tokens its own model calls used (since the daemon started). */
  usage?: Usage;
  /** Its model calls in the inference queue: waiting now, how many, how long they waited. */
  queue?: { waiting: boolean; calls: number; wait_ms_total: number; wait_ms_last: number | null };
}

export interface Coverage {
  allow_once: string;
  allow_session: string;
  allow_always: string;
}

export interface LineageStep {
  agent_id: string;
  manifest: string;
}

/** What made the gate ask: a policy.confirm rule, the manifest's approval_required, a tool's default. */
export interface AskedBy {
  source: string;
  rule?: string;
  text: string;
}

export interface Approval {
  id: string;
  goal_id: string | null;
  agent_id: string;
  identity: string;
  tool: string;
  target: string;
  summary: string;
  /** The call's input exactly as the gate checked it (what runs if it is allowed). */
  input: unknown;
  status: string;
  decision: string | null;
  decided_by: string | null;
  close_reason: string | null;
  created_at: number;
  deadline_at: number;
  decided_at: number | null;
  covers: Coverage;
  /** Root agent first, down to the asking agent. */
  lineage?: LineageStep[];
  /** null on requests recorded before the daemon kept it. */
  asked_by?: AskedBy | null;
  /** The secrets the call carries, by kind, never by value (blanked in input, summary and target). */
  carries_secrets?: string[];
  /** Who submitted the call's goal when the user did not: an MCP session; null: the user's goal. */
  submitted_by?: { kind: string; session_id: string } | null;
  /** The files an exec runs as code, with the text the human approves (cut: content shorter than chars). */
  code?: { path: string; sha256: string; content: string; chars: number }[];
  /** Cluster mode: the node whose agent waits for the answer. */
  node?: string;
}

/** cluster.status: every node that joined (docs/scale-out.md), or enabled: false. */
export interface ClusterNode {
  node_id: string;
  alive: boolean;
  last_heartbeat: string | null;
  host: string;
  running: number;
  capacity: number;
  goals: string[];
  /** What is wrong with its record in Redis (its fields shown are what could be read). */
  malformed?: string;
}

export type ClusterStatus =
  | { enabled: false }
  | {
      enabled: true;
      node_id: string;
      /** This node alone, from its memory, when it cannot read Redis (`redis.unreachable` or `redis.refused`). */
      nodes: ClusterNode[];
      fence?: { fenced: boolean; fenced_since?: string; on_redis_loss: string };
      redis?: { persistence: string; unreachable?: string; refused?: string };
    };

export interface Grant {
  id: string;
  identity: string;
  tool: string;
  target: string;
  decided_by: string | null;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  status: string;
}

export interface AuditEntry {
  seq: number;
  time: string;
  goal_id: string | null;
  agent_id: string | null;
  kind: string;
  payload: Record<string, unknown>;
  hash: string;
}

export interface AuditVerify {
  ok: boolean;
  entries: number;
  first_bad_seq?: number;
  reason?: string;
}

export interface Plan {
  plan_id: string;
  agent_id: string;
  goal_id: string;
  title: string;
  status: string;
  steps: number;
  hash: string;
  simulated_ok: boolean;
  created_at: string;
}

export interface Intent {
  id: string;
  workspace: string;
  objective: string;
  state: string;
  budget_tokens: number | null;
  tokens_spent: number;
  step_count: number;
  notes: { step: number; note: string; at: string; by?: string }[];
  check: string | null;
  created_at: string;
  updated_at: string;
}

export interface OutputFile {
  name: string;
  size: number;
}

/** One event of /api/events: `type`, `time`, `goal_id` and the event's own fields. */
export interface WireEvent {
  type: string;
  time: string;
  goal_id: string | null;
  [field: string]: unknown;
}

export interface Snapshot {
  id: string;
  label?: string;
  created_at: string;
  files: number;
  bytes: number;
}

export interface SnapshotRestore {
  goal_id: string;
  snapshot_id: string;
  /** Who restored: the goal's root agent while it runs, else an operator principal. */
  agent_id: string;
  as: string;
  files_restored: number;
  files_failed: { path: string; reason: string }[];
}
