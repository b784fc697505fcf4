// test/ui/dashboard.test.ts — the dashboard as its user meets it: a real headless Chromium
// on the page the daemon serves, the real daemon (goals in real containers, agents driven
// by the real SDK against the scripted provider). A goal submitted from the page fills in
// its agent tree live; a call that needs approval waits in the inbox until a click
// answers it; Allow Always makes a standing grant that Revoke removes (and the next call
// asks again); Verify says the audit chain is intact, then names the row a tamperer
// edited. One daemon and one browser for the file; each test uses its own manifests.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import type { Config } from "../../src/config.js";
import { type DaemonFixture, MODEL, startFixture } from "../daemon/fixture.js";
import { requireDocker } from "../support/docker.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import { ensureUiBuilt, laptopPage, launchBrowser, screenshot } from "./browser.js";
import { openUi, type UiHandle } from "./fixture.js";

let server: ProviderServer;
let fx: DaemonFixture;
let c: AidoClient;
let ui: UiHandle;
let browser: Browser;
let page: Page;
let problems: string[];

/** An operator ceiling wide enough for the manifests the page submits. */
function ceiling(cfg: Config): void {
  cfg.grantCeilings = [
    [
      "tool: *",
      "file_read: /workspace/**",
      "file_read: /inputs/**",
      "file_write: /workspace/**",
      "file_write: /output/**",
      "spawn_child: [*]",
    ],
  ];
}

beforeAll(async () => {
  requireDocker();
  ensureUiBuilt();
  server = await startProviderServer();
  fx = await startFixture(server, { runtime: { backend: undefined }, config: ceiling });
  c = await fx.client();
  ui = await openUi(fx);
  browser = await launchBrowser();
  ({ page, problems } = await laptopPage(browser));
  await page.goto(ui.url);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await fx?.close();
  await server?.close();
});

const yaml = (lines: string[]) => `${lines.join("\n")}\n`;

async function goTo(name: "Goals" | "Approvals" | "Audit"): Promise<void> {
  await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name }).click();
}

/** The inbox's request whose target is `target`, once it is there. */
async function request(target: string) {
  const r = page.locator("[data-testid=inbox] article.request", { hasText: target });
  await r.waitFor();
  return r;
}

describe("the dashboard in a browser", () => {
  it("opens from the token URL: the token leaves the address bar and the stream is live", async () => {
    expect(new URL(page.url()).search).toBe("");
    await expect.poll(() => page.getByTestId("connection").textContent()).toBe("live");
    await page.getByRole("heading", { name: "Submit a goal" }).waitFor();
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, "..", "..", "package.json"), "utf8"));
    expect(await page.getByTestId("version").textContent()).toBe(`Aido ${pkg.version}`);
  });

  it("submits a goal from the page, fills in its agent tree live, and continues it after Allow Once", async () => {
    server.script('manifest "ui-lead"', [
      turn.toolUse("file_read", { path: "/etc/hostname" }),
      turn.toolUse("spawn_agent", {
        manifest: {
          name: "ui-writer",
          system_prompt: "You write notes.",
          capabilities: ["tool: file_write", "file_write: /workspace/**"],
          approval_required: ["file_write"],
        },
        message: "Write the notes.",
      }),
      turn.toolUse("file_write", { path: "/output/report.md", content: "# Report\nall good\n" }),
      turn.text("The report is in /output/report.md."),
    ]);
    server.script('manifest "ui-writer"', [
      turn.toolUse("file_write", { path: "/workspace/notes.md", content: "notes" }),
      turn.text("written"),
    ]);
    await goTo("Goals");
    await page.getByLabel("Goal", { exact: true }).fill("Write a report <b>with</b> notes");
    await page.getByText("Manifest and input files (optional)").click();
    await page
      .getByLabel("Manifest (YAML)")
      .fill(
        yaml([
          "name: ui-lead",
          `model: ${MODEL}`,
          "system_prompt: You lead.",
          "capabilities:",
          '  - "tool: file_read"',
          '  - "tool: file_write"',
          '  - "tool: spawn_agent"',
          '  - "file_read: /workspace/**"',
          '  - "file_write: /workspace/**"',
          '  - "file_write: /output/**"',
          '  - "spawn_child: [ui-writer]"',
        ]),
      );
    await page.getByRole("button", { name: "Submit goal" }).click();
    await page.waitForURL(/#\/goals\/[^/]+$/);
    const goalId = decodeURIComponent(new URL(page.url()).hash.split("/")[2]!);

    // The tree: the writer nested under the lead, each with its calls and verdicts.
    const lead = page.locator("li.agent[data-manifest=ui-lead]");
    const writer = lead.locator("li.agent[data-manifest=ui-writer]");
    await writer.locator("li.call[data-tool=file_write][data-status=waiting]").waitFor();
    const denied = lead.locator("li.call[data-tool=file_read][data-status=denied]").first();
    await expect.poll(() => denied.textContent()).toMatch(/denied at capability/);
    expect(await lead.locator("li.call[data-tool=spawn_agent]").first().getAttribute("data-status")).toBe(
      "running",
    );
    // Tokens against the budget, as the daemon keeps them.
    await expect
      .poll(() => lead.getByTestId("budget").first().textContent())
      .toMatch(/ of .* spent \(the goal's account\)$/);
    // Model text is shown as text, never as markup.
    expect(await page.locator("p.goal-text").textContent()).toBe("Write a report <b>with</b> notes");
    await screenshot(page, "goal-agent-tree");

    // The inbox: the call, its agent and lineage, what asked, and what each answer covers.
    await goTo("Approvals");
    await expect.poll(() => page.getByTestId("approval-notice").textContent()).toMatch(/1 approval/);
    const req = await request("file_write on /workspace/notes.md");
    const text = (await req.textContent()) ?? "";
    expect(text).toContain("ui-lead");
    expect(text).toContain("ui-writer");
    expect(text).toContain("this call only: file_write on /workspace/notes.md");
    expect(text).toMatch(/file_write on \/workspace\/notes\.md by agent \S+ until it stops/);
    expect(text).toContain("by agents of identity `ui-lead/ui-writer`");
    expect(await req.getByTestId("asked-by").textContent()).toBe(
      "the agent's manifest: approval_required lists file_write",
    );
    expect(await req.locator("ol.lineage li").allTextContents()).toEqual([
      expect.stringMatching(/^ui-lead /),
      expect.stringMatching(/^ui-writer /),
    ]);
    await screenshot(page, "approvals-inbox");
    await req.getByRole("button", { name: "Allow once" }).click();
    await page.getByTestId("inbox-empty").waitFor();

    // Back on the goal: it continues to succeeded; its output is a download.
    await page.goBack();
    await page.waitForURL(/#\/goals\//);
    await expect
      .poll(() => page.getByTestId("goal-state").textContent(), { timeout: 60_000 })
      .toBe("succeeded");
    expect(await page.getByTestId("goal-result").textContent()).toBe("The report is in /output/report.md.");
    expect(await writer.locator("li.call[data-tool=file_write]").getAttribute("data-status")).toBe("done");
    const link = page.getByRole("link", { name: "report.md" });
    const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
    const body = await download.createReadStream().then(async (s) => {
      const chunks: Buffer[] = [];
      for await (const chunk of s) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString("utf8");
    });
    expect(body).toBe("# Report\nall good\n");
    const status = await c.call("goal.status", { goal_id: goalId });
    expect(status.state).toBe("succeeded");
    const decided = await c.call("approval.list", { status: "decided" });
    expect(decided.approvals.map((a) => [a.decision, a.decided_by])).toEqual([["allow_once", "dashboard"]]);
  }, 120_000);

  it("lists the grant Allow Always makes, revokes it with one click, and the next call asks again", async () => {
    server.script('manifest "ui-keeper"', [
      turn.toolUse("file_write", { path: "/workspace/a.txt", content: "1" }),
      turn.toolUse("file_write", { path: "/workspace/b.txt", content: "2" }),
      turn.toolUse("file_write", { path: "/workspace/a.txt", content: "3" }),
      turn.text("kept"),
    ]);
    const { goal_id } = await c.call("goal.submit", {
      goal: "keep files",
      manifest: {
        name: "ui-keeper",
        model: MODEL,
        system_prompt: "You keep files.",
        capabilities: ["tool: file_write", "file_write: /workspace/**"],
        approval_required: ["file_write"],
      },
    });
    await goTo("Approvals");
    const first = await request("file_write on /workspace/a.txt");
    await first.getByRole("button", { name: "Allow always" }).click();

    const grant = page.locator("table.grants tr", { hasText: "file_write on /workspace/a.txt" });
    await grant.waitFor();
    expect(await grant.textContent()).toContain("ui-keeper");
    // The next request waits while the grant is revoked: answered from the keyboard.
    const second = await request("file_write on /workspace/b.txt");
    await screenshot(page, "grants");
    await grant.getByRole("button", { name: /Revoke/ }).click();
    await page.getByTestId("no-grants").waitFor();
    expect((await c.call("approval.grants", {})).grants).toEqual([]);
    await second.getByRole("button", { name: "Allow once" }).focus();
    await page.keyboard.press("Enter");

    // a.txt again: the revoked grant no longer covers it, so the gate asks a human.
    const third = await request("file_write on /workspace/a.txt");
    await third.getByRole("button", { name: "Allow once" }).click();
    const end = await c.call("goal.wait", { goal_id, timeout_ms: 60_000 });
    expect(end.state).toBe("succeeded");
    const history = page.locator("table.history tbody tr");
    await expect.poll(() => history.count()).toBeGreaterThanOrEqual(4);
    const revoked = await c.call("audit.query", { kind: "approval.grant_revoked" });
    expect(revoked.entries.map((e) => e.payload)).toEqual([expect.objectContaining({ by: "dashboard" })]);
  }, 120_000);

  it("submits a manifest file and an input file from the form, and cancels the goal from the list", async () => {
    const reader = server.script('manifest "ui-reader"', [
      turn.toolUse("file_read", { path: "/inputs/notes.txt" }),
      turn.hang(),
    ]);
    await goTo("Goals");
    await page.getByLabel("Goal", { exact: true }).fill("Read my notes");
    const more = page.locator("form.submit details");
    if ((await more.getAttribute("open")) === null)
      await page.getByText("Manifest and input files (optional)").click();
    await page.getByLabel("Manifest (YAML)").fill("");
    await page.getByLabel("…or read the manifest from a file").setInputFiles({
      name: "reader.yaml",
      mimeType: "text/yaml",
      buffer: Buffer.from(
        yaml([
          "name: ui-reader",
          `model: ${MODEL}`,
          "system_prompt: You read.",
          "capabilities:",
          '  - "tool: file_read"',
          '  - "file_read: /inputs/**"',
        ]),
      ),
    });
    await expect.poll(() => page.getByLabel("Manifest (YAML)").inputValue()).toContain("name: ui-reader");
    await page.getByLabel("Input files").setInputFiles({
      name: "notes.txt",
      mimeType: "text/plain",
      buffer: Buffer.from("the notes I handed in"),
    });
    await page.getByRole("button", { name: "Submit goal" }).click();
    await page.waitForURL(/#\/goals\/[^/]+$/);
    const goalId = decodeURIComponent(new URL(page.url()).hash.split("/")[2]!);
    await page
      .locator("li.agent[data-manifest=ui-reader] li.call[data-tool=file_read][data-status=done]")
      .waitFor();
    // The agent read the file the form handed in (the model got it as the tool result).
    await expect.poll(() => reader.requests.length).toBe(2);
    expect(JSON.stringify(reader.requests[1]!.body)).toContain("the notes I handed in");

    await goTo("Goals");
    const row = page.locator(`tr[data-goal="${goalId}"]`);
    await row.getByRole("button", { name: `Cancel goal ${goalId}` }).click();
    await expect.poll(() => row.locator(".badge").textContent(), { timeout: 30_000 }).toBe("cancelled");
    expect((await c.call("goal.status", { goal_id: goalId })).state).toBe("cancelled");
  }, 120_000);

  it("lists plans and a workspace's intents, read-only", async () => {
    const agent = await c.call("agent.spawn", {
      manifest: {
        name: "ui-planner",
        model: MODEL,
        system_prompt: "You plan.",
        capabilities: ["tool: file_read", "file_read: /workspace/**"],
      },
    });
    await c.call("plan.create", {
      agent_id: agent.agent_id,
      title: "Read the README <script>",
      steps: [{ tool: "file_read", input: { path: "/workspace/README.md" } }],
    });
    const folder = mkdtempSync(join(tmpdir(), "ui-web-intent-"));
    try {
      await c.call("intent.set", { workspace: folder, objective: "Ship the dashboard" });
      await page.getByRole("link", { name: "Plans & intents" }).click();
      const plan = page.locator("table tr", { hasText: "Read the README <script>" });
      await plan.waitFor();
      expect(await plan.textContent()).toContain("no step denied");
      await page.getByLabel("Workspace folder (on the daemon's host)").fill(folder);
      await page.getByRole("button", { name: "Show intents" }).click();
      await page.locator("li.intent", { hasText: "Ship the dashboard" }).waitFor();
    } finally {
      await c.call("agent.stop", { agent_id: agent.agent_id });
      rmSync(folder, { recursive: true, force: true });
    }
  }, 60_000);

  it("shows a running goal's snapshots as a timeline; a restore waits in the inbox, then goes through the gate", async () => {
    server.script('manifest "ui-drafter"', [
      turn.toolUse("file_write", { path: "/workspace/draft.md", content: "first" }),
      turn.toolUse("file_write", { path: "/workspace/draft.md", content: "second" }),
      turn.hang(),
    ]);
    const { goal_id } = await c.call("goal.submit", {
      goal: "draft",
      manifest: {
        name: "ui-drafter",
        model: MODEL,
        system_prompt: "You draft.",
        capabilities: [
          "tool: file_write",
          "tool: snapshot_restore",
          "file_read: /workspace/**",
          "file_write: /workspace/**",
        ],
        approval_required: ["snapshot_restore"],
      },
    });
    await page.goto(`${ui.origin}/#/goals/${encodeURIComponent(goal_id)}`);
    // The runtime snapshots the workspace before each turn that changes it; the timeline follows.
    const snap = page.locator("ol.timeline li", { hasText: "before turn 2" });
    await snap.waitFor();
    const draft = join(fx.home.config.goalsDir, goal_id, "workspace", "draft.md");
    await expect.poll(() => readFileSync(draft, "utf8")).toBe("second");
    const before = await page.locator("ol.timeline li").count();

    await snap.getByRole("button", { name: "Restore snapshot before turn 2" }).click();
    await page.getByText("Restoring").waitFor();
    // The goal's root agent restores it, and its manifest asks a human first: the inbox (another tab).
    const inbox = await page.context().newPage();
    await inbox.goto(`${ui.origin}/#/approvals`);
    const req = inbox.locator("[data-testid=inbox] article.request", { hasText: "snapshot_restore" });
    await req.waitFor();
    expect(await req.getByTestId("asked-by").textContent()).toBe(
      "the agent's manifest: approval_required lists snapshot_restore",
    );
    await req.getByRole("button", { name: "Allow once" }).click();
    await inbox.close();
    await expect
      .poll(() => page.locator("#snapshots-h ~ p[role=status]").last().textContent(), { timeout: 30_000 })
      .toMatch(/^Restored \S+ as the goal's root agent: 1 files restored\.$/);
    expect(readFileSync(draft, "utf8")).toBe("first");
    // Through the gate: the root agent's call, audited, with a snapshot taken first, which
    // the timeline then shows too.
    const status = await c.call("goal.status", { goal_id });
    const invoked = (await c.call("audit.query", { goal_id, kind: "tool.invoked" })).entries.filter(
      (e) => (e.payload as { tool: string }).tool === "snapshot_restore",
    );
    expect(invoked.map((e) => e.agent_id)).toEqual([status.agent_id]);
    await expect.poll(() => page.locator("ol.timeline li").count()).toBe(before + 1);
    await page.locator("#snapshots-h").scrollIntoViewIfNeeded();
    await screenshot(page, "snapshots");
    await c.call("goal.cancel", { goal_id });
  }, 120_000);

  it("is usable from the keyboard, with landmarks, and long unbroken model text never widens the page", async () => {
    const long = `${"x".repeat(3000)}<img src=x onerror=alert(1)>`;
    server.script('manifest "ui-long"', [turn.text(long)]);
    const { goal_id } = await c.call("goal.submit", {
      goal: long,
      manifest: { name: "ui-long", model: MODEL, system_prompt: "You answer." },
    });
    expect((await c.call("goal.wait", { goal_id, timeout_ms: 60_000 })).state).toBe("succeeded");

    await page.goto(`${ui.origin}/#/goals`);
    await page.locator(`tr[data-goal="${goal_id}"]`).waitFor();
    const width = () => page.evaluate("document.documentElement.scrollWidth") as Promise<number>;
    expect(await width()).toBeLessThanOrEqual(1366);
    await page.locator(`tr[data-goal="${goal_id}"] a`).click();
    await expect.poll(() => page.getByTestId("goal-result").textContent()).toBe(long);
    expect(await width()).toBeLessThanOrEqual(1366);
    expect(await page.locator("main img").count()).toBe(0);

    expect(await page.getByRole("main").count()).toBe(1);
    expect(await page.getByRole("navigation", { name: "Pages" }).count()).toBe(1);
    // From the top of a freshly loaded page: the header's links in order, each with a visible focus ring.
    await page.reload();
    await page.getByTestId("goal-result").waitFor();
    const focused: string[] = [];
    for (let i = 0; i < 5; i++) {
      await page.keyboard.press("Tab");
      focused.push((await page.evaluate("document.activeElement.textContent")) as string);
      expect(await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")).toBe("solid");
    }
    expect(focused).toEqual(["Aido", "Goals", "Approvals", "Audit", "Plans & intents"]);
    await page.keyboard.press("Shift+Tab");
    await page.keyboard.press("Shift+Tab");
    await page.keyboard.press("Enter");
    await page.waitForURL(/#\/approvals$/);
    await page.getByRole("heading", { name: "Waiting for you" }).waitFor();
  }, 120_000);

  it("verifies the audit chain from the page, then highlights the first entry a tamperer edited", async () => {
    await goTo("Audit");
    await page.getByRole("button", { name: "Verify" }).click();
    const result = page.getByTestId("verify-result");
    await expect.poll(() => result.textContent()).toMatch(/^The chain is intact: \d+ entries verified\.$/);
    const entries = Number((await result.textContent())!.match(/(\d+) entries/)![1]);
    expect(entries).toBe((await c.call("audit.verify", {})).entries);
    await screenshot(page, "audit-verify");

    // Filtered by kind, the page shows exactly the entries the socket's query gives.
    await page.getByLabel("Kind").fill("approval.decided");
    await page.getByRole("button", { name: "Filter" }).click();
    const want = (await c.call("audit.query", { kind: "approval.decided" })).entries.map((e) =>
      String(e.seq),
    );
    await expect
      .poll(async () =>
        page
          .locator("table.audit tbody tr")
          .evaluateAll((rows) => rows.map((r) => r.getAttribute("data-seq"))),
      )
      .toEqual(want);
    await page.getByLabel("Kind").fill("");
    await page.getByRole("button", { name: "Filter" }).click();

    fx.daemon.runtime.db.prepare('UPDATE audit SET payload = \'{"tool":"evil"}\' WHERE seq = 7').run();
    await page.getByRole("button", { name: "Verify" }).click();
    await expect.poll(() => result.textContent()).toMatch(/^The chain is broken at entry 7/);
    const bad = page.locator("table.audit tr.bad");
    await bad.waitFor();
    expect(await bad.getAttribute("data-seq")).toBe("7");
    expect(await bad.getAttribute("aria-label")).toBe("First bad entry, seq 7");
    await screenshot(page, "audit-tampered");
  }, 60_000);

  it("ran every page under the CSP without a script error", () => {
    expect(problems.filter((p) => !/Failed to load resource/.test(p))).toEqual([]);
  });
});
