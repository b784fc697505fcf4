// The `cluster` section of config.yaml and AIDO_REDIS_URL: off by default, checked when the
// config loads with errors that name the key, the Redis password never in any message, and
// only the operator's file may set it. Plus the node identity kept in the home.

import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { NODE_ID_FILE, nodeIdentity } from "../../src/cluster/identity.js";
import { redactRedisUrl } from "../../src/cluster/redis-url.js";
import { ErrorCode } from "../../src/errors.js";
import { RuntimeKey } from "../../src/security/keys.js";
import { failure, useConfigFolders } from "./fixture.js";

describe("cluster config", () => {
  let home: string;
  let project: string;
  const { load, operator: userFile } = useConfigFolders((f) => ({ home, project } = f), "aido-cluster-");

  it("is off without cluster.redis_url or AIDO_REDIS_URL", () => {
    expect(load().cluster).toBeUndefined();
  });

  it("reads the section, with defaults for what it does not set", () => {
    userFile("cluster:\n  redis_url: redis://:s3cret@redis.internal:6380/2\n  node_id: build-3\n");
    expect(load().cluster).toEqual({
      redisUrl: "redis://:s3cret@redis.internal:6380/2",
      nodeId: "build-3",
      leaseMs: 30_000,
      heartbeatMs: 5_000,
      onRedisLoss: "hold",
    });
  });

  it("reads cluster.on_redis_loss, and refuses any value but hold or finish naming the key", () => {
    userFile("cluster:\n  redis_url: redis://r:6379\n  on_redis_loss: finish\n");
    expect(load().cluster?.onRedisLoss).toBe("finish");
    userFile("cluster:\n  redis_url: redis://r:6379\n  on_redis_loss: wait\n");
    const e = failure(load);
    expect(e.code).toBe(ErrorCode.configInvalid);
    expect(e.message).toMatch(/cluster\.on_redis_loss.*"hold" or "finish" \(got "wait"\)/s);
    userFile("cluster:\n  redis_url: redis://r:6379\n  on_redis_loss: true\n");
    expect(failure(load).message).toMatch(/cluster\.on_redis_loss.*got true/s);
  });

  it("takes AIDO_REDIS_URL over the file's URL, keeping the file's other keys", () => {
    userFile("cluster:\n  redis_url: redis://file:6379\n  lease_ms: 4000\n  heartbeat_ms: 1000\n");
    expect(load({ AIDO_REDIS_URL: "rediss://env.example:6380" }).cluster).toEqual({
      redisUrl: "rediss://env.example:6380",
      leaseMs: 4000,
      heartbeatMs: 1000,
      onRedisLoss: "hold",
    });
    rmSync(join(home, "config.yaml"));
    expect(load({ AIDO_REDIS_URL: "redis://only-env:6379" }).cluster?.leaseMs).toBe(30_000);
  });

  it("refuses a URL that is not Redis's, naming the key and never the password", () => {
    userFile("cluster:\n  redis_url: http://user:hunter2@redis.internal:6379\n");
    const e = failure(load);
    expect(e.code).toBe(ErrorCode.configInvalid);
    expect(e.message).toContain("cluster.redis_url");
    expect(e.message).toContain("redis:// or rediss://");
    expect(e.message).not.toContain("hunter2");
    rmSync(join(home, "config.yaml"));
    const env = failure(() => load({ AIDO_REDIS_URL: "redis://:hunter2@host:6379/nodb" }));
    expect(env.message).toContain("AIDO_REDIS_URL");
    expect(env.message).not.toContain("hunter2");
    expect(failure(() => load({ AIDO_REDIS_URL: "not a url" })).message).toContain("is not a URL");
  });

  it("refuses a heartbeat that a lease could not outlive, an unknown key and a bad node id", () => {
    userFile("cluster:\n  redis_url: redis://r:6379\n  lease_ms: 2000\n  heartbeat_ms: 1500\n");
    expect(failure(load).message).toMatch(/cluster\.heartbeat_ms.*at most half of lease_ms/s);
    userFile("cluster:\n  redis_url: redis://r:6379\n  leases: 3\n");
    expect(failure(load).message).toContain('unknown key "leases"');
    userFile("cluster:\n  redis_url: redis://r:6379\n  node_id: ../evil\n");
    expect(failure(load).message).toContain("cluster.node_id");
  });

  it("takes inference.cluster_max_concurrent only in cluster mode, and lets a project lower it", () => {
    userFile("inference:\n  cluster_max_concurrent: 4\n");
    expect(failure(load).message).toContain(
      "inference.cluster_max_concurrent caps model calls across a cluster",
    );
    userFile("inference:\n  cluster_max_concurrent: 4\ncluster:\n  redis_url: redis://r:6379\n");
    expect(load().inference.clusterMaxConcurrent).toBe(4);
    writeFileSync(join(project, ".aido", "config.yaml"), "inference:\n  cluster_max_concurrent: 2\n");
    expect(load().inference.clusterMaxConcurrent).toBe(2);
  });

  it("lets only the operator's file choose the cluster", () => {
    writeFileSync(join(project, ".aido", "config.yaml"), "cluster:\n  redis_url: redis://attacker:6379\n");
    const e = failure(load);
    expect(e.message).toContain("cluster can only be set in the operator's config");
  });

  it("shows a URL with its password replaced", () => {
    expect(redactRedisUrl("redis://user:pa55@h:6379/1")).toBe("redis://user:***@h:6379/1");
    expect(redactRedisUrl("redis://h:6379")).toBe("redis://h:6379");
    expect(redactRedisUrl("rediss://s3cr3t-token@h:6380")).toBe("rediss://***@h:6380");
    expect(redactRedisUrl("::::")).toBe("(not a URL)");
  });

  it("gives a node an id generated once and kept private in the home, and the home's key", () => {
    userFile("cluster:\n  redis_url: redis://r:6379\n");
    const config = load();
    const first = nodeIdentity(config);
    expect(first.nodeId).toMatch(/^n-[0-9a-f]{12}$/);
    expect(readFileSync(join(home, NODE_ID_FILE), "utf8").trim()).toBe(first.nodeId);
    expect(statSync(join(home, NODE_ID_FILE)).mode & 0o777).toBe(0o600);
    expect(nodeIdentity(config).nodeId).toBe(first.nodeId);
    expect(first.keyId).toBe(RuntimeKey.load(config.keysDir).keyId);
    // The operator's node_id wins over the kept one.
    userFile("cluster:\n  redis_url: redis://r:6379\n  node_id: named-node\n");
    expect(nodeIdentity(load()).nodeId).toBe("named-node");
    // A kept file that was tampered with is refused, not used.
    writeFileSync(join(home, NODE_ID_FILE), "../../x\n");
    userFile("cluster:\n  redis_url: redis://r:6379\n");
    expect(failure(() => nodeIdentity(load())).message).toContain("does not hold a node id");
  });
});
