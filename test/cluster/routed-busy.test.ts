// A routed command (cluster/command-sender.ts) on a real redis-server that cannot serve now or
// refuses it: a Redis busy running a script (BUSY) is one that cannot be reached for now, not
// one that "refused a command" (which sent the reader to the node's ACL user for a state that
// passes); an ACL refusal is refused. Each says so in details.redis, as the reads do.

import type { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { CommandSender } from "../../src/cluster/command-sender.js";
import { AidoError } from "../../src/errors.js";
import { connectRedis, type RedisServer, startRedis, stopAll } from "./fixture.js";

let server: RedisServer;
let raw: Redis;
beforeAll(async () => {
  server = await startRedis();
  raw = connectRedis(server.url);
}, 60_000);
afterAll(stopAll);

/** The error `send` fails with, on a connection as `url`'s user. */
async function sendFailure(url: string): Promise<AidoError> {
  const redis = connectRedis(url, { maxRetriesPerRequest: 0 });
  redis.on("error", () => {});
  const sender = new CommandSender(
    redis,
    "routed-busy-sender",
    () => {},
    (text) => text,
  );
  try {
    await sender.send("routed-busy-owner", { type: "goal.cancel", goal_id: "g_routedbusy" }, 2_000);
  } catch (e) {
    expect(e).toBeInstanceOf(AidoError);
    return e as AidoError;
  } finally {
    sender.close();
  }
  throw new Error("expected the send to fail");
}

it("a Redis busy running a script (BUSY) cannot be reached now; it refused nothing", async () => {
  await raw.call("CONFIG", "SET", "busy-reply-threshold", "100");
  const busy = connectRedis(server.url, { maxRetriesPerRequest: 0 });
  busy.on("error", () => {});
  const script = busy.eval("while true do end", 0).catch(() => undefined);
  try {
    await new Promise((r) => setTimeout(r, 300));
    const e = await sendFailure(server.url);
    expect(e.code).toBe("cluster_unavailable");
    expect(e.message).toMatch(
      /the cluster's Redis cannot be reached \(asking whether the node heartbeats .*BUSY/,
    );
    expect(e.message).not.toMatch(/refused/);
    expect(e.details).toMatchObject({ redis: "unreachable" });
  } finally {
    await raw.call("SCRIPT", "KILL").catch(() => undefined);
    await script;
    await raw.call("CONFIG", "SET", "busy-reply-threshold", "5000");
  }
}, 30_000);

it("an ACL user that may not run the alive check is refused, saying NOPERM", async () => {
  await raw.call("ACL", "SETUSER", "routed-noperm", "on", ">routed-pw", "~*", "&*", "+@all", "-exists");
  const url = new URL(server.url);
  url.username = "routed-noperm";
  url.password = "routed-pw";
  const e = await sendFailure(url.toString());
  expect(e.message).toMatch(
    /the cluster's Redis refused a command \(asking whether the node heartbeats .*NOPERM/,
  );
  expect(e.details).toMatchObject({ redis: "refused" });
}, 30_000);
