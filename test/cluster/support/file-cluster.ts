// test/cluster/support/file-cluster.ts — what the tests of one file share: the scripted provider
// every node talks to (test/support/provider-suite.ts) and, for most files, one redis-server
// with a connection to it as its default user (the test's view of Redis). Started before the
// file's tests and handed to the file through `started`; after them, everything fixture.ts
// started (nodes, their homes, Redis, connections) is stopped, then the provider. A file whose
// every test starts a Redis of its own has fixture.ts's stopAll() after each test instead. The
// provider keeps its scripts from one test to the next: nodes may outlive the test that
// started them. A file of stand-in nodes (stand-in-node.ts) has no provider: withRedisHome()
// gives it the Redis, the connection and a home folder for its nodes.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import type { ProviderServer } from "../../support/provider-server.js";
import { useProviderServer } from "../../support/provider-suite.js";
import { connectRedis, type RedisServer, startRedis, stopAll } from "../fixture.js";

export interface FileCluster {
  server: ProviderServer;
  redis: RedisServer;
  /** Connected as Redis's default user; closed after the file's tests (stopAll). */
  raw: Redis;
}

/** The file's provider; nodes and Redis are stopped after each test, or after all of them. */
export function withProvider(
  started: (provider: { server: ProviderServer }) => void,
  opts: { stopAll?: "after each test" | "after all tests" } = {},
): void {
  useProviderServer({
    started: (server) => started({ server }),
    ...(opts.stopAll === "after each test" ? { afterEach: stopAll } : {}),
    afterAll: stopAll,
    keepBetweenTests: true,
  });
}

/** The file's provider and redis-server (its nodes, started by the file, join that Redis). */
export function withCluster(started: (cluster: FileCluster) => void): void {
  let server: ProviderServer;
  useProviderServer({
    started: (s) => {
      server = s;
    },
    afterAll: stopAll,
    keepBetweenTests: true,
  });
  beforeAll(async () => {
    const redis = await startRedis();
    started({ server, redis, raw: connectRedis(redis.url) });
  }, 60_000);
}

export interface RedisHome {
  redis: RedisServer;
  /** Connected as Redis's default user; closed after the file's tests (stopAll). */
  raw: Redis;
  /** A folder of the file's own (`prefix` and a random tail) for its nodes' homes. */
  home: string;
}

/** The file's redis-server and home folder, no provider; all of it gone after the file's tests. */
export function withRedisHome(prefix: string, started: (r: RedisHome) => void): void {
  let home: string | undefined;
  beforeAll(async () => {
    const redis = await startRedis();
    const raw = connectRedis(redis.url);
    home = mkdtempSync(join(tmpdir(), prefix));
    started({ redis, raw, home });
  });
  afterAll(async () => {
    await stopAll();
    if (home) rmSync(home, { recursive: true, force: true });
  });
}
