// test/ui/cluster-asks.test.ts — how the dashboard's Cluster panel asks cluster.status, in a
// real browser signed in on a real agentd node of a real redis-server. A request the daemon's
// HTTP never answers (held here by the browser's own network layer, as a proxy that keeps one
// request would: the rest pass to the server) was awaited for ever: the panel said STALE and
// never asked again until the page was reloaded; it is now given up after its bound, said so,
// and asked again. And a busy cluster's goal events each asked cluster.status at once, back to
// back: an event now marks "ask soon", at most one ask per poll period. A refusal no ACL explains
// (a junk key where the set of nodes is kept) does not send one to the ACL user.

import type { Browser, Page, Request, Route } from "playwright-core";
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
let node: Node;
let browser: Browser;
let page: Page;
/** When each cluster.status request left the page (ms). */
const asks: number[] = [];

const isClusterStatus = (r: Request) =>
  r.url().endsWith("/api/rpc") && (r.postData() ?? "").includes('"cluster.status"');

beforeAll(async () => {
  requireDocker();
  ensureUiBuilt();
  server = await startProviderServer();
  redisServer = await startRedis();
  node = await startNode(server, redisServer.url, "ui-asks-node", { capacity: 4 });
  const opened = await (await node.client()).call("ui.open", {});
  browser = await launchBrowser();
  ({ page } = await laptopPage(browser));
  page.on("request", (r) => {
    if (isClusterStatus(r)) asks.push(Date.now());
  });
  await page.goto(opened.url);
  await until(async () =>
    (await page.getByTestId("cluster").locator("tr[data-node]").count()) === 1 ? true : undefined,
  );
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stopAll();
  await server?.close();
}, 60_000);

describe("the Cluster panel's asks", () => {
  it("gives up a cluster.status the server never answers, says so, and asks again", async () => {
    let held: Route | undefined;
    await page.route("**/api/rpc", async (route) => {
      if (held === undefined && isClusterStatus(route.request())) {
        held = route; // never answered
        return;
      }
      await route.continue();
    });
    try {
      await expect.poll(() => held !== undefined, { timeout: 15_000 }).toBe(true);
      const heldAt = Date.now();
      // Late: STALE (as before).
      await expect.poll(() => page.getByTestId("cluster-stale").count(), { timeout: 10_000 }).toBe(1);
      // Past the bound: given up, said so, and asked again.
      await expect
        .poll(() => page.getByTestId("cluster-stale").textContent({ timeout: 2_000 }), { timeout: 40_000 })
        .toMatch(/cluster\.status had no answer within 30 s: given up; asked again/);
      await expect.poll(() => asks.filter((t) => t > heldAt).length, { timeout: 15_000 }).toBeGreaterThan(0);
      // Answered again: nothing stale.
      await expect.poll(() => page.getByTestId("cluster-stale").count(), { timeout: 15_000 }).toBe(0);
    } finally {
      await page.unroute("**/api/rpc");
    }
  }, 90_000);

  it("asks cluster.status at most once per poll period while many goal events arrive", async () => {
    const ids: string[] = [];
    const from = Date.now();
    for (let i = 0; i < 8; i++) {
      const marker = `ui-asks-goal-${i}`;
      server.script(forGoal(marker), [turn.text(`finished ${marker}`)]);
      const { goal_id } = await (await node.client()).call("goal.submit", {
        goal: `say ${marker}`,
        manifest: manifest(),
      });
      ids.push(goal_id);
      // Spread over a poll period and more: events while no ask is under way.
      await new Promise((r) => setTimeout(r, 700));
    }
    for (const goal_id of ids) {
      expect((await (await node.client()).call("goal.wait", { goal_id, timeout_ms: 60_000 })).state).toBe(
        "succeeded",
      );
    }
    // Every goal's end reached the page (its events: a revision of the goal list each).
    for (const goal_id of ids) {
      await expect
        .poll(() => page.locator(`tr[data-goal="${goal_id}"]`).textContent({ timeout: 2_000 }), {
          timeout: 15_000,
        })
        .toContain("succeeded");
    }
    await new Promise((r) => setTimeout(r, Math.max(1_000, from + 11_000 - Date.now())));
    const during = asks.filter((t) => t >= from);
    expect(during.length).toBeGreaterThanOrEqual(2);
    const gaps = during.slice(1).map((t, i) => t - (during[i] ?? t));
    // The page's own timers: a little leeway under the 5 s period.
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(4_500);
  }, 120_000);

  it("sends one to the key, not the ACL user, when a junk key holds the set of nodes (WRONGTYPE)", async () => {
    const raw = connectRedis(redisServer.url);
    const nodes = await raw.smembers("aido:nodes");
    await raw.del("aido:nodes");
    await raw.set("aido:nodes", "junk");
    try {
      const note = page.getByTestId("cluster-refused");
      await expect.poll(() => note.count(), { timeout: 20_000 }).toBe(1);
      const said = await note.textContent();
      expect(said).toMatch(/the key aido:nodes holds another type/);
      expect(said).toMatch(/a key in Redis holds another type than the cluster writes there/);
      expect(said).not.toMatch(/ACL user/);
    } finally {
      await raw.del("aido:nodes");
      if (nodes.length > 0) await raw.sadd("aido:nodes", ...nodes);
    }
    await expect.poll(() => page.getByTestId("cluster-refused").count(), { timeout: 20_000 }).toBe(0);
  }, 60_000);
});
