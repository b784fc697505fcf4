// test/cluster/support/owner-asker.ts — a file's two real agentd nodes on its one redis-server
// (file-cluster.ts's withCluster): `owner`, whose goals the test plants in Redis with goalOn(),
// and `asker`, whose routed commands go to the owner. Started before the file's tests.

import type { Redis } from "ioredis";
import { beforeAll } from "vitest";
import { type Node, startNode } from "../fixture.js";
import { type FileCluster, withCluster } from "./file-cluster.js";

export interface OwnerAsker extends FileCluster {
  owner: Node;
  asker: Node;
  /** A goal the cluster says `node` runs (its hash, as a node mirrors it). */
  goalOn(node: string, goalId: string): Promise<void>;
}

/** Nodes `<prefix>-owner` and `<prefix>-asker`, started with `opts`, handed over by `started`. */
export function withOwnerAndAsker(
  prefix: string,
  opts: Parameters<typeof startNode>[3],
  started: (nodes: OwnerAsker) => void,
): void {
  let cluster: FileCluster;
  withCluster((c) => {
    cluster = c;
  });
  beforeAll(async () => {
    const { server, redis, raw } = cluster;
    const owner = await startNode(server, redis.url, `${prefix}-owner`, opts);
    const asker = await startNode(server, redis.url, `${prefix}-asker`, opts);
    const goalOn = (node: string, goalId: string) => plantGoal(raw, node, goalId);
    started({ ...cluster, owner, asker, goalOn });
  }, 60_000);
}

/** A goal the cluster says `node` runs (its hash, as a node mirrors it), written by `raw`. */
export async function plantGoal(raw: Redis, node: string, goalId: string): Promise<void> {
  await raw.hset(`aido:goal:${goalId}`, {
    goal_id: goalId,
    state: "running",
    owner: node,
    goal: "a goal another node runs",
    created_at: String(Date.now()),
    started_at: String(Date.now()),
    submitted_via: node,
  });
}

/** The next command sent to `node` after entry `from` (a node of the test's: nobody else reads its stream). */
export async function nextCommand(
  reader: Redis,
  node: string,
  from: string,
): Promise<{ entry: string; request_id: string; reply_to: string; command: Record<string, unknown> }> {
  const r = (await reader.xread("BLOCK", 15_000, "STREAMS", `aido:node:${node}:commands`, from)) as
    | [string, [string, string[]][]][]
    | null;
  const [entry, fields] = r?.[0]?.[1][0] ?? [];
  if (!entry || !fields) throw new Error(`no command reached ${node}`);
  return { entry, ...JSON.parse(fields[1] ?? "{}") };
}
