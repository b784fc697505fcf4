// test/ui/dashboard-pages.test.ts — more of the dashboard in a real Chromium against the
// real daemon (goals in real containers, agents on the scripted provider): keyboard use,
// landmarks and long model text that must not widen the page; plans and intents; and the
// header's connection state across a daemon restart, after which the page catches up on
// what it missed.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MODEL } from "../daemon/fixture.js";
import { turn } from "../support/provider-server.js";
import { useDashboard } from "./browser.js";

const dash = useDashboard({ containers: true });

describe("the dashboard's pages in a browser", () => {
  it("is usable from the keyboard, with landmarks, and long unbroken model text never widens the page", async () => {
    const long = `${"x".repeat(3000)}<img src=x onerror=alert(1)>`;
    dash.server.script('manifest "ui-long"', [turn.text(long)]);
    const { goal_id } = await dash.c.call("goal.submit", {
      goal: long,
      manifest: { name: "ui-long", model: MODEL, system_prompt: "You answer." },
    });
    expect((await dash.c.call("goal.wait", { goal_id, timeout_ms: 60_000 })).state).toBe("succeeded");

    await dash.page.goto(`${dash.ui.origin}/#/goals`);
    await dash.page.locator(`tr[data-goal="${goal_id}"]`).waitFor();
    const width = () => dash.page.evaluate("document.documentElement.scrollWidth") as Promise<number>;
    expect(await width()).toBeLessThanOrEqual(1366);
    await dash.page.locator(`tr[data-goal="${goal_id}"] a`).click();
    await expect.poll(() => dash.page.getByTestId("goal-result").textContent()).toBe(long);
    expect(await width()).toBeLessThanOrEqual(1366);
    expect(await dash.page.locator("main img").count()).toBe(0);

    expect(await dash.page.getByRole("main").count()).toBe(1);
    expect(await dash.page.getByRole("navigation", { name: "Pages" }).count()).toBe(1);
    // From the top of a freshly loaded page: a skip link first, then the header's links in
    // order, each with a visible focus ring.
    await dash.page.reload();
    await dash.page.getByTestId("goal-result").waitFor();
    await dash.page.keyboard.press("Tab");
    expect(await dash.page.evaluate("document.activeElement.textContent")).toBe("Skip to content");
    expect(
      await dash.page.evaluate("document.activeElement.getBoundingClientRect().top"),
    ).toBeGreaterThanOrEqual(0);
    await dash.page.keyboard.press("Enter");
    expect(await dash.page.evaluate("document.activeElement.id")).toBe("main");
    expect(new URL(dash.page.url()).hash).toBe(`#/goals/${goal_id}`);
    await dash.page.reload();
    await dash.page.getByTestId("goal-result").waitFor();
    await dash.page.keyboard.press("Tab");
    const focused: string[] = [];
    for (let i = 0; i < 5; i++) {
      await dash.page.keyboard.press("Tab");
      focused.push((await dash.page.evaluate("document.activeElement.textContent")) as string);
      expect(await dash.page.evaluate("getComputedStyle(document.activeElement).outlineStyle")).toBe("solid");
    }
    expect(focused).toEqual(["Aido", "Goals", "Approvals", "Audit", "Plans & intents"]);
    await dash.page.keyboard.press("Shift+Tab");
    await dash.page.keyboard.press("Shift+Tab");
    await dash.page.keyboard.press("Enter");
    await dash.page.waitForURL(/#\/approvals$/);
    await dash.page.getByRole("heading", { name: "Waiting for you" }).waitFor();
  }, 120_000);

  it("lists plans and a workspace's intents, and a goal's own plans and intent, read-only", async () => {
    const folder = mkdtempSync(join(tmpdir(), "ui-web-intent-"));
    dash.server.script('manifest "ui-planner"', [turn.hang()]);
    try {
      await dash.c.call("intent.set", { workspace: folder, objective: "Ship the dashboard" });
      // A goal submitted from that folder carries its intent; its root agent makes a plan.
      const { goal_id } = await dash.c.call("goal.submit", {
        goal: "plan it",
        workspace: folder,
        manifest: {
          name: "ui-planner",
          model: MODEL,
          system_prompt: "You plan.",
          capabilities: ["tool: file_read", "file_read: /workspace/**"],
        },
      });
      let agentId: string | undefined;
      await expect
        .poll(async () => (agentId = (await dash.c.call("goal.status", { goal_id })).agent_id))
        .toBeTruthy();
      await dash.c.call("plan.create", {
        agent_id: agentId!,
        title: "Read the README <script>",
        steps: [{ tool: "file_read", input: { path: "/workspace/README.md" } }],
      });

      await dash.page.getByRole("link", { name: "Plans & intents" }).click();
      const plan = dash.page.locator("table tr", { hasText: "Read the README <script>" });
      await plan.waitFor();
      expect(await plan.textContent()).toContain("no step denied");
      await dash.page.getByLabel("Workspace folder (on the daemon's host)").fill(folder);
      await dash.page.getByRole("button", { name: "Show intents" }).click();
      await dash.page.locator("li.intent", { hasText: "Ship the dashboard" }).waitFor();

      await dash.page.goto(`${dash.ui.origin}/#/goals/${encodeURIComponent(goal_id)}`);
      await dash.page
        .locator("section[aria-labelledby=intent-h] li.intent", { hasText: "Ship the dashboard" })
        .waitFor();
      await dash.page
        .locator("section[aria-labelledby=plans-h] tr", { hasText: "Read the README <script>" })
        .waitFor();
      expect(await dash.page.getByRole("heading", { name: "Plans of this goal" }).count()).toBe(1);
      await dash.c.call("goal.cancel", { goal_id });
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  }, 60_000);

  it("says when the event stream drops, is live again when the daemon is back, and reloads what it missed", async () => {
    dash.server.script('manifest "ui-asker"', [
      turn.toolUse("file_write", { path: "/workspace/x.txt", content: "x" }),
      turn.text("asked"),
    ]);
    const { goal_id } = await dash.c.call("goal.submit", {
      goal: "ask, then be cut off",
      manifest: {
        name: "ui-asker",
        model: MODEL,
        system_prompt: "You ask.",
        capabilities: ["tool: file_write", "file_write: /workspace/**"],
        approval_required: ["file_write"],
      },
    });
    await dash.page.goto(`${dash.ui.origin}/#/goals`);
    const state = () => dash.page.getByTestId("connection").textContent();
    const approvals = dash.page
      .getByRole("navigation", { name: "Pages" })
      .getByRole("link", { name: /Approvals/ });
    await expect.poll(() => approvals.textContent()).toBe("Approvals (1)");
    await expect.poll(state).toBe("live");

    // The daemon stops: the stream closes first, then the goal ends and its request expires,
    // which the page cannot hear. It learns it from the lists once it is live again.
    await dash.restart(() => expect.poll(state).toBe("reconnecting…"));
    await expect.poll(state, { timeout: 30_000 }).toBe("live");
    await expect.poll(() => approvals.textContent()).toBe("Approvals");
    const row = dash.page.locator(`tr[data-goal="${goal_id}"]`);
    await expect.poll(() => row.locator(".badge").textContent()).toBe("failed");
  }, 60_000);

  it("ran every page under the CSP without a script error", () => {
    expect(dash.scriptProblems()).toEqual([]);
  });
});
