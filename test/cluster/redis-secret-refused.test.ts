// A job a Redis writer made, refused by the node that takes it, never quotes a secret of the
// node's config (config-secrets.ts): not its goal id holding the Redis password (job-intake.ts
// refuseId), not a bad input entry naming the password and a provider's API key (goal-runner.ts).
// The reason is audited (goal.refused) and written to the goal's failed status, which every
// node and client reads.

import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { GoalMirror } from "../../src/cluster/goal-mirror.js";
import type { GoalJob } from "../../src/cluster/goal-runner.js";
import { GOAL_QUEUE } from "../../src/cluster/redis-keys.js";
import { newGoalId } from "../../src/kernel/goals.js";
import { until } from "../daemon/process.js";
import { type ProviderServer, startProviderServer } from "../support/provider-server.js";
import { manifest, type Node, startNode, startRedis, stopAll } from "./fixture.js";

const PASSWORD = "refused-pw-5ecret";

let server: ProviderServer;
let node: Node;
let raw: Redis;
let queue: Queue<GoalJob>;

beforeAll(async () => {
  server = await startProviderServer();
  const r = await startRedis();
  raw = new Redis(r.url, { maxRetriesPerRequest: null });
  await raw.call("ACL", "SETUSER", "aido-refused", "on", `>${PASSWORD}`, "~*", "&*", "+@all");
  const url = new URL(r.url);
  url.username = "aido-refused";
  url.password = PASSWORD;
  node = await startNode(server, url.toString(), "secret-refused");
  queue = new Queue<GoalJob>(GOAL_QUEUE, { connection: raw });
}, 60_000);

afterAll(async () => {
  await queue?.close();
  raw?.disconnect();
  await stopAll();
  await server?.close();
}, 60_000);

/** Put a goal in the queue as a node would, with a job the attacker wrote. */
async function inject(job: Omit<GoalJob, "goal_id" | "via">, goalId = newGoalId()): Promise<string> {
  await new GoalMirror(raw).create({ goalId, goal: job.goal, via: "attacker", now: Date.now() });
  await queue.add(
    "goal",
    { ...job, goal_id: goalId, via: "attacker" },
    { jobId: goalId, removeOnComplete: true },
  );
  return goalId;
}

/** The goal.refused entries of the node that say `what`. */
async function refusedSaying(what: string): Promise<string> {
  const c = await node.client();
  const found = await until(async () => {
    const r = await c.call("audit.query", { kind: "goal.refused" });
    const hit = r.entries.filter((e) => JSON.stringify(e).includes(what));
    return hit.length > 0 ? JSON.stringify(hit) : undefined;
  }, 20_000);
  return found;
}

it("a job refused for its goal id quotes the id with the Redis password blanked", async () => {
  const goalId = `bad-${PASSWORD}`;
  await inject({ goal: "attack", manifest: manifest(), inputs: { names: [], entries: [] } }, goalId);
  const audited = await refusedSaying("is not one a node makes");
  expect(audited).toContain("bad-***");
  expect(audited).not.toContain(PASSWORD);
  const c = await node.client();
  // The goal's failed status (its id is the client's own: only what the node wrote is looked at).
  const s = await c.call("goal.wait", { goal_id: goalId, timeout_ms: 15_000 });
  expect(s.state).toBe("failed");
  expect(s.error).toContain("bad-***");
  expect(s.error).not.toContain(PASSWORD);
}, 60_000);

it("a job refused for a bad input entry quotes it with the Redis password and the API key blanked", async () => {
  const apiKey = String(node.home.config.providers.anthropic.apiKey);
  expect(apiKey.length).toBeGreaterThanOrEqual(4);
  const name = `../${PASSWORD}-${apiKey}`;
  const goalId = await inject({
    goal: "attack",
    manifest: manifest(),
    inputs: { names: ["notes"], entries: [{ path: name, type: "file", mode: 0o644, data: "eA==" }] },
  });
  const c = await node.client();
  const s = await c.call("goal.wait", { goal_id: goalId, timeout_ms: 15_000 });
  expect(s.state).toBe("failed");
  expect(s.error).toContain("../***-***");
  const audited = await refusedSaying("../***-***");
  for (const secret of [PASSWORD, apiKey]) {
    expect(audited).not.toContain(secret);
    expect(s.error).not.toContain(secret);
  }
}, 60_000);
