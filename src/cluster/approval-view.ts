// cluster/approval-view.ts — approval.list answered for the whole cluster: every node gives
// the same answer for the approvals of the cluster's goals, pending or settled. Pending ones
// are in the hash aido:approvals (owned-mirror.ts writes them); a settled one (decided,
// timed out, expired) is written by its node when it settles, as a key of its own that
// expires with ended goals (7 days), indexed by creation time in aido:approvals:settled
// (the newest SETTLED_APPROVALS_KEPT): a list reads what the index holds.
// For its own approvals a node answers from its own record, not the mirror's copy: an
// outcome whose write Redis refused stays pending in the mirror until the node's next
// heartbeat writes it again (owned-mirror.ts), and the node that settled it says so at once.
// To these a node adds its own records the mirror does not hold (from before it joined, of
// an agent outside any goal, or older than the mirror keeps), each with `node` this node.

import type { ApprovalListFilter, ApprovalRecord } from "../security/approval-store.js";
import { type NodeContext, readMirror } from "./context.js";
import { RedisKeys } from "./redis-keys.js";

/** How many of this node's records a list reads at a time past its first `want` (ownFirst). */
const TIES_PAGE = 100;

export type ClusterApproval = ApprovalRecord & { node: string };

/** approval.list on this node: the cluster's approvals and this node's own unmirrored ones. */
export async function listApprovals(
  ctx: NodeContext,
  filter: ApprovalListFilter,
): Promise<ClusterApproval[]> {
  const status = filter.status ?? "pending";
  const offset = filter.offset ?? 0;
  const want = filter.limit === undefined ? undefined : offset + filter.limit;
  const nodeId = ctx.identity.nodeId;
  const fits = (a: ClusterApproval) => status === "all" || a.status === status;
  // For its own approvals a node answers from its own record (the mirror's may lag).
  const asKnown = (as: ClusterApproval[]) =>
    as.map((a) => (a.node === nodeId ? (ownRecord(ctx, a.id) ?? a) : a));
  const mirrored = await readMirror(() =>
    want === undefined
      ? mirroredApprovals(ctx, status !== "pending").then(asKnown)
      : mirroredFirst(ctx, status, want, (as) => asKnown(as).filter(fits)),
  );
  // Every id the mirror holds pending or settled is the mirror's to list (limited: those read).
  const known = new Set(mirrored.map((a) => a.id));
  const own = ownFirst(ctx, status, want)
    .filter((a) => !known.has(a.id))
    .map((a) => ({ ...a, node: nodeId }));
  const matching = [...mirrored.filter(fits), ...own];
  // As a lone daemon orders them: pending oldest first (the next to answer), others newest first.
  const order = status === "pending" ? 1 : -1;
  matching.sort((a, b) => order * (a.created_at - b.created_at) || (a.id < b.id ? -order : order));
  return matching.slice(offset, want);
}

/**
 * This node's first `want` records in the answer's order, and those asked in the same
 * millisecond as the last of them: one past these cannot be in the answer's first `want`.
 * The ties are all read because this node's store orders them as asked, the answer by id.
 */
function ownFirst(ctx: NodeContext, status: ApprovalListFilter["status"], want: number | undefined) {
  const first = ctx.rt.approvals.list({ status, ...(want === undefined ? {} : { limit: want }) });
  const edge = first.at(-1)?.created_at;
  if (want === undefined || first.length < want || edge === undefined) return first;
  for (let offset = want; ; offset += TIES_PAGE) {
    const more = ctx.rt.approvals.list({ status, limit: TIES_PAGE, offset });
    const tied = more.filter((a) => a.created_at === edge);
    first.push(...tied);
    if (tied.length < TIES_PAGE) return first;
  }
}

/** This node's own record of an approval it mirrored (undefined if its database lacks it). */
function ownRecord(ctx: NodeContext, id: string): ClusterApproval | undefined {
  try {
    return { ...ctx.rt.approvals.get(id), node: ctx.identity.nodeId };
  } catch {
    return undefined;
  }
}

/** How many ids a limited list reads from an index at a time. */
const INDEX_PAGE = 100;

/**
 * The mirror's first `want` approvals matching `status` in the answer's order, read from the
 * indexes a page at a time rather than every record (a list asked for 10 read thousands):
 * pending ones from aido:approvals:pending (oldest first; newest first for "all"), settled
 * ones from aido:approvals:settled (newest first); `keep` says which of a page match. An id
 * whose record is gone leaves its index. The indexes order ties by id, as the answer does.
 */
async function mirroredFirst(
  ctx: NodeContext,
  status: NonNullable<ApprovalListFilter["status"]>,
  want: number,
  keep: (as: ClusterApproval[]) => ClusterApproval[],
): Promise<ClusterApproval[]> {
  const { redis } = ctx;
  const first = async (
    index: string,
    newestFirst: boolean,
    read: (ids: string[]) => Promise<(string | null)[]>,
  ) => {
    const out: ClusterApproval[] = [];
    for (let start = 0; out.length < want; start += INDEX_PAGE) {
      const end = start + INDEX_PAGE - 1;
      const ids = newestFirst
        ? await redis.zrevrange(index, start, end)
        : await redis.zrange(index, String(start), String(end));
      if (ids.length === 0) break;
      const rows = await read(ids);
      const gone = ids.filter((_, i) => rows[i] === null);
      if (gone.length > 0) await redis.zrem(index, ...gone);
      out.push(...keep(readable(rows.filter((r): r is string => r !== null))));
      if (ids.length < INDEX_PAGE) break;
    }
    return out;
  };
  if (status === "pending" || status === "all") await indexUnindexed(ctx);
  const pending =
    status === "pending" || status === "all"
      ? await first(RedisKeys.approvalsPending, status === "all", (ids) =>
          redis.hmget(RedisKeys.approvals, ...ids),
        )
      : [];
  if (status === "pending") return pending;
  const settled = await first(RedisKeys.approvalsSettled, true, (ids) =>
    redis.mget(ids.map((id) => RedisKeys.approvalSettled(id))),
  );
  // One settling between the two reads may be in both: the settled record wins.
  const done = new Set(settled.map((a) => a.id));
  return [...pending.filter((a) => !done.has(a.id)), ...settled];
}

/**
 * What the pending hash holds beyond its index, indexed: a node from before the index, still
 * running beside this one, writes the hash only, and a limited list read the index alone (its
 * approvals went unlisted until some node connected again). Checked by count (the hash
 * holding more entries than the index); an entry that is no approval record is indexed first
 * (read and skipped, until a node that connects drops it), so the counts agree after.
 */
async function indexUnindexed(ctx: NodeContext): Promise<void> {
  const { redis } = ctx;
  const [held, indexed] = await Promise.all([
    redis.hlen(RedisKeys.approvals),
    redis.zcard(RedisKeys.approvalsPending),
  ]);
  if (held <= indexed) return;
  const index: (string | number)[] = [];
  for (const [id, v] of Object.entries(await redis.hgetall(RedisKeys.approvals)))
    index.push(mirroredApproval(v)?.created_at ?? 0, id);
  // One settled meanwhile is indexed again, and leaves the index with the next list that reads it.
  if (index.length > 0) await redis.zadd(RedisKeys.approvalsPending, "NX", ...index);
}

/** The pending approvals of the cluster, and with `settled` those settled in the last 7 days. */
async function mirroredApprovals(ctx: NodeContext, settled: boolean): Promise<ClusterApproval[]> {
  const pending = readable(await ctx.redis.hvals(RedisKeys.approvals));
  if (!settled) return pending;
  const ids = await ctx.redis.zrange(RedisKeys.approvalsSettled, "0", "-1");
  if (ids.length === 0) return pending;
  const rows = await ctx.redis.mget(ids.map((id) => RedisKeys.approvalSettled(id)));
  const gone = ids.filter((_, i) => rows[i] === null);
  // A record that expired: its id leaves the index too.
  if (gone.length > 0) await ctx.redis.zrem(RedisKeys.approvalsSettled, ...gone);
  const settledRecords = readable(rows.filter((r): r is string => r !== null));
  // One settling between the two reads may be in both: the settled record wins.
  const done = new Set(settledRecords.map((a) => a.id));
  return [...pending.filter((a) => !done.has(a.id)), ...settledRecords];
}

/**
 * An approval as a node mirrors it (owned-mirror.ts), read back; undefined for anything else
 * in its place (a Redis writer's junk, a value cut short), which every reader skips: one
 * unreadable entry must not fail the list, the settling or the answers of all the others.
 */
export function mirroredApproval(raw: string): ClusterApproval | undefined {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null) return undefined;
  const a = v as Partial<Record<keyof ClusterApproval, unknown>>;
  const ok =
    typeof a.id === "string" &&
    typeof a.node === "string" &&
    typeof a.status === "string" &&
    typeof a.created_at === "number" &&
    (typeof a.goal_id === "string" || a.goal_id === null);
  return ok ? (v as ClusterApproval) : undefined;
}

function readable(raws: string[]): ClusterApproval[] {
  return raws
    .map(mirroredApproval)
    .filter((a): a is ClusterApproval => a !== undefined)
    .map(listable);
}

/** Said in place of what a mirrored record does not hold. */
const NOT_SAID = "(not in its record in Redis)";

/**
 * A mirrored approval as approval.list answers it: every field its readers (the dashboard's
 * inbox, aido approvals, a client) take for granted is there, said missing when the record
 * lacks it (a Redis writer's, one cut short): one such record must not break their view of
 * the others. What decides an answer is the owner's own record, not these.
 */
function listable(a: ClusterApproval): ClusterApproval {
  const text = (v: unknown): string => (typeof v === "string" ? v : NOT_SAID);
  const c = (typeof a.covers === "object" && a.covers !== null ? a.covers : {}) as Partial<
    Record<string, unknown>
  >;
  return {
    ...a,
    agent_id: text(a.agent_id),
    identity: text(a.identity),
    tool: text(a.tool),
    target: text(a.target),
    summary: text(a.summary),
    // A list of words a surface prints (a record of an older node has none).
    carries_secrets: Array.isArray(a.carries_secrets)
      ? a.carries_secrets.filter((k): k is string => typeof k === "string")
      : [],
    deadline_at: typeof a.deadline_at === "number" ? a.deadline_at : a.created_at,
    covers: {
      allow_once: text(c.allow_once),
      allow_session: text(c.allow_session),
      allow_always: text(c.allow_always),
    },
  };
}
