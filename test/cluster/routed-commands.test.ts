// Routed commands between real agentd nodes on a real redis-server (cluster/command-sender.ts,
// command-replies.ts). A goal's reads are asked of its node: the dashboard's goal page asks a
// goal's agents about twice a second, and each command opened a Redis connection of its own
// (a duplicate for its BLPOP); the answers now come on one stream per sender, read on one
// connection. And an answer comes through Redis, where anyone who can write may put one: an
// answer to another request is ignored, one that is not what the command gives is an error
// naming the command and what was wrong, never handed to the client.

import type { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { AidoError } from "../../src/errors.js";
import { connectRedis, type Node, type RedisServer } from "./fixture.js";
import { nextCommand, type OwnerAsker, withOwnerAndAsker } from "./support/owner-asker.js";

let redisServer: RedisServer;
let raw: Redis;
let asker: Node;
let owner: Node;
let goalOn: OwnerAsker["goalOn"];
withOwnerAndAsker("routed", {}, (c) => {
  ({ redis: redisServer, raw, owner, asker, goalOn } = c);
});

/** Redis's client connections now, and how many it has taken since it started. */
async function connections(): Promise<{ now: number; made: number }> {
  const list = (await raw.client("LIST")) as string;
  const made = Number(/total_connections_received:(\d+)/.exec(await raw.info("stats"))?.[1]);
  return { now: list.trim().split("\n").length, made };
}

describe("routed commands", () => {
  it("share one answer connection: many routed reads leave Redis's connections where they were", async () => {
    const goalId = "g_routedmany";
    await goalOn(owner.id, goalId);
    const clients = await Promise.all([1, 2, 3, 4].map(() => asker.client()));
    // Warm: the asker's answer connection is made with its first command.
    await clients[0]!.call("agent.list", { goal_id: goalId });
    const before = await connections();
    let most = before.now;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        most = Math.max(most, (await connections()).now);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    // As four dashboard pages would ask, at once, many times.
    for (let round = 0; round < 25; round++) {
      const answers = await Promise.all(
        clients.flatMap((c) => [
          c.call("agent.list", { goal_id: goalId, include_stopped: true }),
          c.call("audit.query", { goal_id: goalId, limit: 5 }),
        ]),
      );
      expect(answers).toHaveLength(8);
    }
    sampling = false;
    await sampler;
    const after = await connections();
    // 200 commands: before, 200 connections made, up to 8 open at once.
    expect(after.made - before.made).toBeLessThanOrEqual(2);
    expect(most - before.now).toBeLessThanOrEqual(2);
  }, 120_000);

  it("ignores an answer to another request and refuses one that is not what the command gives", async () => {
    const fake = "routed-forger";
    const goalId = "g_routedforged";
    await raw.set(`aido:node:${fake}:alive`, "1", "PX", 60_000);
    await goalOn(fake, goalId);
    const reader = connectRedis(redisServer.url);
    reader.on("error", () => {});
    const c = await asker.client();
    let from = "0-0"; // its stream is new: every command in it is this test's
    /** Ask the goal's agents; the forger takes the command and writes `answers` to its sender. */
    const ask = async (answers: (requestId: string) => unknown[]) => {
      const asked = c.call("agent.list", { goal_id: goalId }).then(
        (r) => r,
        (e: unknown) => e,
      );
      const cmd = await nextCommand(reader, fake, from);
      from = cmd.entry;
      expect(cmd.command).toMatchObject({ type: "agent.list", goal_id: goalId });
      expect(cmd.reply_to).toBe(asker.id);
      await raw.set(`aido:request:${cmd.request_id}`, "taken", "EX", 60);
      for (const a of answers(cmd.request_id))
        await raw.xadd(`aido:node:${cmd.reply_to}:replies`, "*", "r", JSON.stringify(a));
      return asked;
    };
    const agentOf = (goal: string, agentId: string) => ({
      agent_id: agentId,
      goal_id: goal,
      parent_id: null,
      manifest: "m",
      model: "p/m",
      state: "running",
      depth: 0,
      children: [],
      created_at: new Date().toISOString(),
    });

    // An answer for another request id, first: ignored; the one for this request is taken.
    const ok = await ask((id) => [
      { request_id: "not-yours", ok: true, result: { agents: [agentOf(goalId, "a_forged")] } },
      { request_id: id, ok: true, result: { agents: [agentOf(goalId, "a_real")] } },
    ]);
    expect((ok as { agents: { agent_id: string }[] }).agents.map((a) => a.agent_id)).toEqual(["a_real"]);

    // Not an answer at all, a field of the wrong type, another goal's agents: each an error
    // that names the command, the node and what was wrong.
    const cases: [unknown, RegExp][] = [
      [{ ok: "yes", result: 1 }, /reply\.ok: /],
      [
        { ok: true, result: { agents: [{ ...agentOf(goalId, "a1"), agent_id: 7 }] } },
        /result\.agents\.0\.agent_id/,
      ],
      [{ ok: true, result: { agents: [agentOf("g_someoneelse", "a1")] } }, /result\.agents\.0\.goal_id/],
      [{ ok: true, result: "all of them" }, /result: /],
    ];
    for (const [bad, where] of cases) {
      const e = await ask((id) => [{ request_id: id, ...(bad as object) }]);
      expect(e).toBeInstanceOf(AidoError);
      const m = (e as Error).message;
      expect(m).toContain(`node ${fake} answered agent.list with a reply that is not one`);
      expect(m).toMatch(where);
    }
    // A node's refusal is passed on as its error.
    const refused = await ask((id) => [
      { request_id: id, ok: false, error: { code: "not_found", message: "no" } },
    ]);
    expect((refused as AidoError).code).toBe("not_found");
    expect((refused as Error).message).toBe(`node ${fake}: no`);
    // What the sender read is deleted: its reply stream does not keep answers (an audit page can be large).
    expect(await raw.xlen(`aido:node:${asker.id}:replies`)).toBe(0);
  }, 120_000);

  it("waits through a Redis restart: an answer written once Redis is back reaches the command", async () => {
    const fake = "routed-restart";
    const goalId = "g_routedrestart";
    await raw.set(`aido:node:${fake}:alive`, "1", "PX", 60_000);
    await goalOn(fake, goalId);
    const reader = connectRedis(redisServer.url, { maxRetriesPerRequest: null });
    for (const r of [reader, raw]) r.on("error", () => {}); // Redis stops for a moment
    const c = await asker.client();
    const asked = c.call("agent.list", { goal_id: goalId }).then(
      (r) => r,
      (e: unknown) => e,
    );
    const cmd = await nextCommand(reader, fake, "0-0");
    await raw.set(`aido:request:${cmd.request_id}`, "taken", "EX", 60);
    await redisServer.stop();
    await new Promise((r) => setTimeout(r, 1_500));
    await redisServer.start();
    await raw.set(`aido:node:${fake}:alive`, "1", "PX", 60_000);
    await raw.xadd(
      `aido:node:${cmd.reply_to}:replies`,
      "*",
      "r",
      JSON.stringify({ request_id: cmd.request_id, ok: true, result: { agents: [] } }),
    );
    expect(await asked).toEqual({ agents: [] });
  }, 120_000);

  it("fails within seconds when the node dies before it takes the command, and withdraws it", async () => {
    const fake = "routed-dies";
    const goalId = "g_routeddies";
    await raw.set(`aido:node:${fake}:alive`, "1", "PX", 60_000);
    await goalOn(fake, goalId);
    const reader = connectRedis(redisServer.url);
    reader.on("error", () => {});
    const c = await asker.client();
    const asked = c.call("agent.list", { goal_id: goalId }).then(
      (r) => r,
      (e: unknown) => e,
    );
    const cmd = await nextCommand(reader, fake, "0-0");
    const died = Date.now();
    await raw.del(`aido:node:${fake}:alive`);
    const e = await asked;
    expect(Date.now() - died).toBeLessThan(5_000);
    expect((e as Error).message).toBe(
      `node ${fake} stopped heartbeating before it took agent.list; it will not act on it`,
    );
    expect(await raw.get(`aido:request:${cmd.request_id}`)).toBe("withdrawn");
  }, 60_000);
});
