// A cluster's queue and goal view live in Redis: a Redis that keeps nothing on disk loses
// them when it restarts. The node says so when it connects, and cluster.status (and
// `aido cluster status`) shows how Redis keeps its data. Real redis-server, real daemon.

import type { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { captureIo } from "../cli/io.js";
import { until } from "../daemon/process.js";
import type { ProviderServer } from "../support/provider-server.js";
import { type RedisServer, startNode } from "./fixture.js";
import { withCluster } from "./support/file-cluster.js";

let server: ProviderServer;
let redis: RedisServer;
let admin: Redis;

withCluster((c) => ({ server, redis, raw: admin } = c));

describe("a Redis that keeps nothing on disk", () => {
  it("is named when a node joins and in cluster.status, and is not once appendonly is on", async () => {
    await admin.config("SET", "appendonly", "no");
    const node = await startNode(server, redis.url, "persist-a");
    await until(
      () => (node.child.output().includes("Redis keeps nothing on disk") ? true : undefined),
      10_000,
    );
    const c = await node.client();
    const st = await c.call("cluster.status", {});
    expect(st).toMatchObject({ enabled: true, redis: { persistence: "none" } });
    const cap = captureIo();
    expect(await runCli(["cluster", "status"], cap.io, { AIDO_HOME: node.home.dir })).toBe(0);
    expect(cap.out).toContain("redis persistence: none");
    expect(cap.err.join("\n")).toContain("warning: Redis keeps nothing on disk");

    await admin.config("SET", "appendonly", "yes");
    expect(await c.call("cluster.status", {})).toMatchObject({ redis: { persistence: "aof" } });
    await admin.config("SET", "save", "3600 1");
    expect(await c.call("cluster.status", {})).toMatchObject({ redis: { persistence: "aof+rdb" } });
    const ok = captureIo();
    expect(await runCli(["cluster", "status"], ok.io, { AIDO_HOME: node.home.dir })).toBe(0);
    expect(ok.out).toContain("redis persistence: aof+rdb");
    expect(ok.err.join("\n")).not.toContain("warning");
    await admin.config("SET", "save", ""); // as the fixture started it: no snapshot at shutdown
  }, 60_000);
});
