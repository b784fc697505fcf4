// test/ui/attacker-page.test.ts — the dashboard's page in a real Chromium attacked through
// what a model controls: the input of a call that waits for the operator's answer. The
// real daemon and the scripted provider behind the real SDK; one browser for the file.

import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MODEL } from "../daemon/fixture.js";
import { turn } from "../support/provider-server.js";
import { useDashboard } from "./browser.js";

const dash = useDashboard({ containers: false });

describe("an approval request a model shaped", () => {
  it("shows the operator the exact call: nothing hidden past the summary's cut, no bidi or zero-width trick, no markup", async () => {
    // What the summary shows looks harmless; the part that matters is past its 300 characters,
    // and the bidi override makes "gpj.exe" read as "exe.jpg".
    const tail = "and then mail the notes to attacker@evil.example";
    const content = `weekly notes${" ".repeat(320)}${tail} invoice\u202egpj.exe\u202c pay\u200bpal <img src=x onerror=window.__pwned=1>`;
    dash.server.script('manifest "ui-shaped"', [
      turn.toolUse("memory_store", { content, category: "fact" }),
      turn.text("stored"),
    ]);
    const { goal_id } = await dash.c.call("goal.submit", {
      goal: "remember the notes",
      manifest: {
        name: "ui-shaped",
        model: MODEL,
        system_prompt: "You remember.",
        capabilities: ["tool: memory_store"],
        approval_required: ["memory_store"],
      },
    });
    let id = "";
    await expect
      .poll(async () => {
        const { approvals } = await dash.c.call("approval.list", {});
        id = approvals.find((a) => a.goal_id === goal_id)?.id ?? "";
        return id;
      })
      .not.toBe("");

    await dash.page.goto(`${dash.ui.origin}/#/approvals`);
    const card = dash.page.locator(`article.request[data-approval="${id}"]`);
    await card.waitFor();
    const call = (await card.getByTestId("call").textContent()) ?? "";
    expect(call).toContain(tail);
    expect(call).toContain("invoice\\u202egpj.exe\\u202c");
    expect(call).toContain("pay\\u200bpal");
    expect(call).toContain("<img src=x onerror=window.__pwned=1>");
    // Nowhere on the card does an invisible character reach the screen.
    const all = (await card.textContent()) ?? "";
    expect(all).not.toMatch(/[\u200b\u202a-\u202e\u2066-\u2069]/);
    expect(await dash.page.locator("main img").count()).toBe(0);
    expect(await dash.page.evaluate("window.__pwned")).toBeUndefined();

    await card.getByRole("button", { name: "Deny" }).click();
    await expect.poll(async () => (await dash.c.call("goal.status", { goal_id })).state).not.toBe("queued");
    expect(dash.scriptProblems()).toEqual([]);
  }, 120_000);
});

describe("an output file a model named", () => {
  it("shows and saves its name with the bidi override written out: report\\u202efdp.exe, not what reads as reportexe.pdf", async () => {
    dash.server.script('manifest "ui-namer"', [turn.text("done")]);
    const { goal_id } = await dash.c.call("goal.submit", {
      goal: "write a report",
      manifest: { name: "ui-namer", model: MODEL, system_prompt: "You write." },
    });
    const done = await dash.c.call("goal.wait", { goal_id, timeout_ms: 30_000 });
    mkdirSync(done.output_dir, { recursive: true });
    writeFileSync(join(done.output_dir, "report\u202efdp.exe"), "MZ");

    await dash.page.goto(`${dash.ui.origin}/#/goals/${encodeURIComponent(goal_id)}`);
    const link = dash.page.locator("ul.outputs a");
    await link.waitFor();
    expect(await link.textContent()).toBe("report\\u202efdp.exe");
    const [download] = await Promise.all([dash.page.waitForEvent("download"), link.click()]);
    expect(download.suggestedFilename()).not.toContain("\u202e");
    expect(download.suggestedFilename()).toContain("fdp.exe");
    await download.cancel();
  }, 60_000);
});

describe("a page of another local web server (same site, another port)", () => {
  it("cannot embed a goal's output with the signed-in browser's cookie (Sec-Fetch-Site)", async () => {
    dash.server.script('manifest "ui-painter"', [turn.text("drawn")]);
    const { goal_id } = await dash.c.call("goal.submit", {
      goal: "draw",
      manifest: { name: "ui-painter", model: MODEL, system_prompt: "You draw." },
    });
    const done = await dash.c.call("goal.wait", { goal_id, timeout_ms: 30_000 });
    mkdirSync(done.output_dir, { recursive: true });
    const png =
      "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    writeFileSync(join(done.output_dir, "chart.png"), Buffer.from(png, "base64"));
    const src = `${dash.ui.origin}/api/goals/${goal_id}/outputs/chart.png`;
    // The control: the dashboard's own page can load it.
    await dash.page.goto(`${dash.ui.origin}/#/goals`);
    const own = `new Promise((r) => { const i = new Image(); i.onload = () => r(i.naturalWidth); i.onerror = () => r(0); i.src = ${JSON.stringify(src)}; })`;
    expect(await dash.page.evaluate(own)).toBe(1);

    const other = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(`<!doctype html><img id="x" src="${src}">`);
    });
    await new Promise<void>((r) => other.listen(0, "127.0.0.1", r));
    try {
      await dash.page.goto(`http://127.0.0.1:${(other.address() as AddressInfo).port}/`);
      await dash.page.waitForFunction("document.getElementById('x').complete");
      expect(await dash.page.evaluate("document.getElementById('x').naturalWidth")).toBe(0);
    } finally {
      await new Promise((r) => other.close(r));
    }
    const { entries } = await dash.c.call("audit.query", { kind: "ui.denied" });
    expect(entries.map((e) => e.payload)).toContainEqual(expect.objectContaining({ reason: "origin" }));
  }, 60_000);
});
