// test/cluster/support/busy-nodes.ts — the set-up of the tests of an MCP session's goals in a
// cluster (session-end, session-shutdown, shutdown-redis-down, share-returns, session-cancel-kept):
// a node of one slot whose slot a user's hanging goal holds (its model call under way), so the
// goals a session on it submits wait in Redis or run on a second node started after it; and
// the reads of a node's own database those tests judge by (its ledger, its goal rows). Each
// file copied it before.

import Database from "better-sqlite3";
import type { AidoClient } from "../../../src/client/client.js";
import { until } from "../../daemon/process.js";
import { type ProviderServer, turn } from "../../support/provider-server.js";
import { forGoal, manifest, type Node, startNode } from "../fixture.js";

export interface BusyNode {
  node: Node;
  client: AidoClient;
  /** The user's goal that holds the node's only slot (its model call hangs until cancelled). */
  busy: string;
}

/** A node of one slot (`id`), its slot held by a user's goal `run <marker>` whose model call has started. */
export async function startBusyNode(
  server: ProviderServer,
  redisUrl: string,
  id: string,
  marker: string,
): Promise<BusyNode> {
  server.script(forGoal(marker), [turn.hang()]);
  const node = await startNode(server, redisUrl, id, { capacity: 1 });
  const client = await node.client();
  const busy = (await client.call("goal.submit", { goal: `run ${marker}`, manifest: manifest() })).goal_id;
  await until(() => (server.requestsMatching(forGoal(marker)).length === 1 ? true : undefined));
  return { node, client, busy };
}

export interface TwoNodes {
  /** A: a node of one slot, held by a user's goal (`busy`): a session's goal on A runs on B. */
  a: Node;
  ca: AidoClient;
  busy: string;
  /** B: a node of one slot, free, started after A's slot was taken. */
  b: Node;
  cb: AidoClient;
}

/** Nodes `<prefix>-a` (its only slot busy) and `<prefix>-b` (free), on `redisUrl`. */
export async function startTwoNodes(
  server: ProviderServer,
  redisUrl: string,
  prefix: string,
): Promise<TwoNodes> {
  const {
    node: a,
    client: ca,
    busy,
  } = await startBusyNode(server, redisUrl, `${prefix}-a`, `${prefix}-busy`);
  const b = await startNode(server, redisUrl, `${prefix}-b`, { capacity: 1 });
  return { a, ca, busy, b, cb: await b.client() };
}

/** One row of the node's own database (read-only), or undefined. */
export function nodeRow<T>(node: Node, sql: string, ...params: unknown[]): T | undefined {
  const db = new Database(node.home.config.dbPath, { readonly: true });
  try {
    return db.prepare(sql).get(...params) as T | undefined;
  } finally {
    db.close();
  }
}

/** A session goal's share in the node's ledger (`job:<goal>`), and the session's account it was carved from. */
export interface ShareRow {
  closed: number;
  limit: number;
  spent: number;
  /** What the session's account has carved out for its open shares. */
  parentCarved: number;
  parentSpent: number;
}

export function shareOf(node: Node, goalId: string): ShareRow | undefined {
  return nodeRow<ShareRow>(
    node,
    `SELECT s.closed AS closed, s.limit_tokens AS "limit", s.spent AS spent, p.carved AS parentCarved,
            p.spent AS parentSpent
     FROM budget_accounts s JOIN budget_accounts p ON p.id = s.parent_id WHERE s.id = ?`,
    `job:${goalId}`,
  );
}

/** The goal's state and error in the node's own database. */
export function localEnd(node: Node, goalId: string): { state: string; error: string | null } | undefined {
  return nodeRow(node, "SELECT state, error FROM goals WHERE id = ?", goalId);
}
