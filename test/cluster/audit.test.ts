// Cluster mode, audit across nodes: each node publishes its signed audit head to Redis, and
// `aido audit verify --cluster` checks every node's chain against it — passing on an
// untouched cluster, and naming the node whose log was cut short behind its back (rows
// deleted, its local head file removed so that the node itself cannot tell).

import { rmSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { Redis } from "ioredis";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { captureIo } from "../cli/io.js";
import { until } from "../daemon/process.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import { forGoal, manifest, type Node, type RedisServer, startNode } from "./fixture.js";
import { withCluster } from "./support/file-cluster.js";

let server: ProviderServer;
let nodes: Node[];
let redis: Redis;
let redisServer: RedisServer;
withCluster((c) => ({ server, redis: redisServer, raw: redis } = c));

beforeAll(async () => {
  nodes = await Promise.all(
    ["cluster-audit-a", "cluster-audit-b"].map((id) => startNode(server, redisServer.url, id)),
  );
}, 60_000);

const publishedSeq = async (node: string) =>
  Number((await redis.hget(`aido:audit-head:${node}`, "seq")) ?? 0);

describe("aido audit verify --cluster", () => {
  it("passes for every node's chain, then names the node whose log was truncated", async () => {
    server.script(forGoal("audited-goal"), [turn.text("done")]);
    const a = await nodes[0]!.client();
    const { goal_id } = await a.call("goal.submit", { goal: "run audited-goal", manifest: manifest() });
    expect((await a.call("goal.wait", { goal_id, timeout_ms: 20_000 })).state).toBe("succeeded");
    // Both heads published, and up to date with the goal's entries.
    const b = nodes[1]!;
    const headB = await until(async () => {
      const s = await publishedSeq(b.id);
      const local = (await (await b.client()).call("audit.verify", {})).head_seq ?? -1;
      return s > 0 && s === local && (await publishedSeq(nodes[0]!.id)) > 0 ? s : undefined;
    });

    const ok = captureIo();
    expect(await runCli(["audit", "verify", "--cluster"], ok.io, { AIDO_HOME: nodes[0]!.home.dir })).toBe(0);
    expect(ok.out).toHaveLength(2);
    expect(ok.out.every((l) => l.startsWith("ok: node cluster-audit-"))).toBe(true);

    // B's log is cut two entries short of the head it published, and its head file removed.
    await b.kill();
    const db = new Database(join(b.home.dir, "aido.db"));
    db.prepare("DELETE FROM audit WHERE seq > ?").run(headB - 2);
    db.prepare("DELETE FROM audit_checkpoints WHERE seq > ?").run(headB - 2);
    db.close();
    rmSync(join(b.home.dir, "audit.head"), { force: true });
    await b.restart();
    // B carries on writing (a new head), but never publishes over the evidence.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await publishedSeq(b.id)).toBe(headB);

    const bad = captureIo();
    expect(
      await runCli(["audit", "verify", "--cluster", "--json"], bad.io, { AIDO_HOME: nodes[0]!.home.dir }),
    ).toBe(1);
    const r = JSON.parse(bad.text()) as {
      ok: boolean;
      nodes: { node_id: string; ok: boolean; reason?: string }[];
    };
    expect(r.ok).toBe(false);
    expect(r.nodes.find((n) => n.node_id === "cluster-audit-a")?.ok).toBe(true);
    expect(r.nodes.find((n) => n.node_id === "cluster-audit-b")).toMatchObject({
      ok: false,
      published_seq: headB,
    });
    // B's own log says it found out.
    const diverged = await (await b.client()).call("audit.query", { kind: "cluster.audit_head_diverged" });
    expect(diverged.entries).toHaveLength(1);
  }, 90_000);
});
