// test/ui/cluster.test.ts — the dashboard of a node in a cluster (docs/scale-out.md), in a
// real browser: two agentd nodes on one real redis-server (test/cluster/fixture.ts), the
// page signed in on node B. A goal submitted to node A shows in B's list and detail with
// the node that runs it, B's Cluster panel lists both nodes up with their load, and the
// goal's approval shows in B's inbox with the node its agent waits on and is answered
// there (routed to that node when it is A).

import type { Redis } from "ioredis";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectRedis,
  forGoal,
  manifest,
  type Node,
  type RedisServer,
  startNode,
  startRedis,
  stopAll,
} from "../cluster/fixture.js";
import { until } from "../daemon/process.js";
import { requireDocker } from "../support/docker.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import { ensureUiBuilt, laptopPage, launchBrowser } from "./browser.js";

let server: ProviderServer;
let redisServer: RedisServer;
/** Connected as Redis's default user before the nodes joined (the test's view of Redis). */
let raw: Redis;
let a: Node;
let b: Node;
let browser: Browser;
let page: Page;
let problems: string[];

beforeAll(async () => {
  requireDocker();
  ensureUiBuilt();
  server = await startProviderServer();
  redisServer = await startRedis();
  raw = connectRedis(redisServer.url);
  await raw.ping();
  [a, b] = await Promise.all([
    startNode(server, redisServer.url, "ui-node-a", { capacity: 2 }),
    // Never fenced: Redis stopped, the page says Redis cannot be reached (not the fence).
    startNode(server, redisServer.url, "ui-node-b", { capacity: 2, onRedisLoss: "finish" }),
  ]);
  const opened = await (await b.client()).call("ui.open", {});
  browser = await launchBrowser();
  ({ page, problems } = await laptopPage(browser));
  await page.goto(opened.url);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stopAll();
  await server?.close();
}, 60_000);

describe("the dashboard of a cluster node", () => {
  it("shows node A's goal on node B with its owner, lists both nodes, and answers its approval there", async () => {
    // Both nodes up in B's Cluster panel, B marked as the node the page talks to.
    const panel = page.getByTestId("cluster");
    await expect.poll(() => panel.locator("tr[data-node]").count(), { timeout: 15_000 }).toBe(2);
    for (const id of ["ui-node-a", "ui-node-b"]) {
      await expect.poll(() => panel.locator(`tr[data-node=${id}]`).textContent()).toMatch(/up\s*\d+ \/ 2/);
    }
    expect(await panel.locator("tr[data-node=ui-node-b]").textContent()).toContain("(this node)");

    const marker = "ui-cluster-goal";
    server.script(forGoal(marker), [
      turn.toolUse("file_write", { path: "/output/x.md", content: "x" }),
      turn.text(`finished ${marker}`),
    ]);
    const { goal_id } = await (await a.client()).call("goal.submit", {
      goal: `write ${marker}`,
      manifest: manifest({ approve: true }),
    });

    // B's goal list: the goal, with the node that runs it.
    const row = page.locator(`tr[data-goal="${goal_id}"]`);
    await expect
      .poll(() => row.getByTestId("goal-node").textContent(), { timeout: 20_000 })
      .toMatch(/^ui-node-[ab]$/);
    const owner = (await row.getByTestId("goal-node").textContent()) as string;
    expect((await (await b.client()).call("goal.status", { goal_id })).node).toBe(owner);

    // Its detail page names the owner and, when it is not A, that it came through A.
    await page.goto(`${page.url().split("#")[0]}#/goals/${encodeURIComponent(goal_id)}`);
    const node = page.locator("[data-testid=goal-node]").first();
    await expect.poll(() => node.textContent()).toContain(owner);
    if (owner !== "ui-node-a")
      await expect.poll(() => node.textContent()).toContain("submitted via ui-node-a");

    // B's inbox: the request with the node its agent waits on; answered from B.
    await page.getByRole("link", { name: /^Approvals/ }).click();
    const req = page.locator("article.request").filter({ hasText: "file_write" }).first();
    await req.waitFor({ timeout: 20_000 });
    expect(await req.getByTestId("approval-node").textContent()).toBe(owner);
    await req.getByRole("button", { name: "Allow once" }).click();
    await page.getByTestId("inbox-empty").waitFor();

    const ended = await (await a.client()).call("goal.wait", { goal_id, timeout_ms: 30_000 });
    expect(ended).toMatchObject({ state: "succeeded", result: `finished ${marker}`, node: owner });
    // The owner's record: allowed through the dashboard, via node B.
    const ownerNode = owner === a.id ? a : b;
    const decided = await (await ownerNode.client()).call("approval.list", { status: "decided" });
    const answer = decided.approvals.find((x) => x.goal_id === goal_id);
    expect(answer?.decision).toBe("allow_once");
    expect(answer?.decided_by).toBe("dashboard via node ui-node-b");
    expect(problems.filter((p) => !/Failed to load resource/.test(p))).toEqual([]);
  }, 90_000);

  it("shows a goal whose node is gone, and says why its agents and calls are missing", async () => {
    // Its agents and audit entries are in that node's database only (asked of it, refused:
    // not heartbeating); its status is the cluster's. The page showed nothing but the error.
    const redis = raw;
    const goalId = "g_ui_gone_node";
    try {
      await redis.hset(`aido:goal:${goalId}`, {
        goal_id: goalId,
        state: "succeeded",
        owner: "ui-node-gone",
        goal: "ran on a node that left",
        created_at: String(Date.now()),
        finished_at: String(Date.now()),
      });
      await page.goto(`${page.url().split("#")[0]}#/goals/${goalId}`);
      await expect
        .poll(() => page.getByTestId("goal-state").textContent({ timeout: 5_000 }), { timeout: 15_000 })
        .toContain("succeeded");
      await expect
        .poll(() => page.locator("[data-testid=goal-node]").first().textContent({ timeout: 5_000 }))
        .toContain("ui-node-gone");
      await expect
        .poll(() => page.locator("section[aria-labelledby=goal-h] p.error").textContent({ timeout: 5_000 }))
        .toContain("not heartbeating");
    } finally {
      await redis.del(`aido:goal:${goalId}`);
    }
  }, 60_000);

  it("shows a node's malformed record, and says when this node cannot reach Redis", async () => {
    await raw.sadd("aido:nodes", "ui-node-bad");
    await raw.hset("aido:node:ui-node-bad", { node_id: "ui-node-bad", running: "many" });
    const base = page.url().split("#")[0];
    try {
      await page.goto(`${base}#/`);
      const bad = page.getByTestId("cluster").locator("tr[data-node=ui-node-bad]");
      await expect
        .poll(() => bad.getByTestId("node-malformed").textContent({ timeout: 5_000 }), { timeout: 15_000 })
        .toContain("running is not a count");
    } finally {
      await raw.srem("aido:nodes", "ui-node-bad");
      await raw.del("aido:node:ui-node-bad");
    }
    raw.on("error", () => {});
    await redisServer.stop();
    try {
      // The panel: this node as it says now, the others as last read, and why.
      await expect
        .poll(() => page.getByTestId("cluster-unreachable").textContent({ timeout: 5_000 }), {
          timeout: 15_000,
        })
        .toContain("Redis cannot be reached from this node");
      const panel = page.getByTestId("cluster");
      expect(await panel.locator("tr[data-node=ui-node-b]").textContent()).toContain("(this node)");
      expect(await panel.locator("tr[data-node=ui-node-a]").count()).toBe(1);
      expect(await page.getByTestId("cluster-stale").textContent()).toMatch(
        /STALE since .*other nodes as of then/,
      );
      // The goal page says it too.
      await page.goto(`${base}#/goals/g_ui_redis_down`);
      await expect
        .poll(() => page.getByTestId("cluster-unreachable").textContent({ timeout: 5_000 }), {
          timeout: 15_000,
        })
        .toContain("Redis cannot be reached from this node");
    } finally {
      await redisServer.start();
    }
    await expect.poll(() => page.getByTestId("cluster-note").count(), { timeout: 20_000 }).toBe(0);
  }, 90_000);

  it("says the table is STALE while Redis stalls, though no answer failed and the socket stays up", async () => {
    // A silent partition: Redis takes the connection but answers nothing (CLIENT PAUSE; DEBUG
    // SLEEP is off in this redis-server). cluster.status then answers after its 5 s bound: the
    // page asked again every 5 s and threw away each answer slower than that, so the last
    // healthy table stayed up without a word.
    await page.goto(`${page.url().split("#")[0]}#/`);
    const panel = page.getByTestId("cluster");
    await expect.poll(() => panel.locator("tr[data-node]").count(), { timeout: 15_000 }).toBe(2);
    expect(await page.getByTestId("cluster-stale").count()).toBe(0);
    await raw.call("CLIENT", "PAUSE", "14000", "ALL");
    try {
      await expect
        .poll(() => page.getByTestId("cluster-stale").count(), { timeout: 11_000, interval: 250 })
        .toBe(1);
      expect(await page.getByTestId("cluster-stale").textContent()).toMatch(/^STALE since /);
      // The nodes last read stay listed under it.
      expect(await panel.locator("tr[data-node]").count()).toBe(2);
    } finally {
      await raw.call("CLIENT", "UNPAUSE");
    }
    await expect.poll(() => page.getByTestId("cluster-stale").count(), { timeout: 20_000 }).toBe(0);
  }, 60_000);

  it("marks a goal page's status as this node's own record while Redis is stopped", async () => {
    // A goal this node (B) runs, waiting for a human: submitted until B takes one.
    // One script per goal: the scripted provider's turns are each goal's own.
    const marker = (i: number) => `ui-own-record-${i}`;
    const submitted: string[] = [];
    let mine: string | undefined;
    for (let i = 0; i < 6 && mine === undefined; i++) {
      server.script(forGoal(marker(i)), [
        turn.toolUse("file_write", { path: "/output/x.md", content: "x" }),
        turn.text(`finished ${marker(i)}`),
      ]);
      const { goal_id } = await (await b.client()).call("goal.submit", {
        goal: `write ${marker(i)}`,
        manifest: manifest({ approve: true }),
      });
      submitted.push(goal_id);
      const s = await until(async () => {
        const st = await (await b.client()).call("goal.status", { goal_id });
        return st.node !== undefined ? st : undefined;
      });
      if (s.node === b.id) mine = goal_id;
    }
    if (mine === undefined) throw new Error("node B took none of six goals");
    await page.goto(`${page.url().split("#")[0]}#/goals/${encodeURIComponent(mine)}`);
    await expect
      .poll(() => page.getByTestId("goal-state").textContent(), { timeout: 15_000 })
      .toContain("running");
    expect(await page.getByTestId("goal-own-record").count()).toBe(0);
    raw.on("error", () => {});
    await redisServer.stop();
    try {
      // Read again as it would be when opened now: the page's goal.status is the node's record.
      await page.reload();
      const mark = page.getByTestId("goal-own-record");
      await expect
        .poll(() => mark.textContent({ timeout: 5_000 }), { timeout: 15_000 })
        .toMatch(
          /this node's own record: the cluster's Redis cannot be reached .*another node may have ended or taken this goal since/,
        );
    } finally {
      await redisServer.start();
    }
    // Redis back: the goal is read again, and the mark goes.
    await expect.poll(() => page.getByTestId("goal-own-record").count(), { timeout: 30_000 }).toBe(0);
    // Every goal submitted is answered and ends.
    for (const goal_id of submitted) {
      const pending = await until(async () =>
        (await (await b.client()).call("approval.list", {})).approvals.find((p) => p.goal_id === goal_id),
      );
      await (await b.client()).call("approval.respond", { id: pending.id, decision: "allow_once" });
      expect((await (await b.client()).call("goal.wait", { goal_id, timeout_ms: 60_000 })).state).toBe(
        "succeeded",
      );
    }
  }, 120_000);
});
