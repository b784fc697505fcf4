// test/ui/attacker-page.test.ts — the dashboard's page in a real Chromium attacked through
// what a model controls: the input of a call that waits for the operator's answer. The
// real daemon and the scripted provider behind the real SDK; one browser for the file.

import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, request } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MODEL } from "../daemon/fixture.js";
import { turn } from "../support/provider-server.js";
import { useDashboard } from "./browser.js";
import { type RawResponse, raw } from "./fixture.js";

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
    const link = dash.page.locator("ul.outputs button");
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
    // The control: the dashboard's own page can load it (with its page key).
    await dash.page.goto(`${dash.ui.origin}/#/goals`);
    const own = `fetch(${JSON.stringify(src)}, { headers: { "x-aido-key": localStorage.getItem("aido-page-key") } }).then(async (r) => (await r.arrayBuffer()).byteLength)`;
    expect(await dash.page.evaluate(own)).toBe(Buffer.from(png, "base64").length);

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

describe("another local user's server on another port of 127.0.0.1", () => {
  it("receives the signed-in browser's cookie, but replayed outside the dashboard's page it opens neither the API, nor the events, nor a download; the page itself still works end to end", async () => {
    // A finished goal with an output file, and a goal whose call waits for the operator.
    dash.server.script('manifest "ui-reporter"', [turn.text("reported")]);
    const done = await dash.c.call("goal.submit", {
      goal: "report",
      manifest: { name: "ui-reporter", model: MODEL, system_prompt: "You report." },
    });
    const finished = await dash.c.call("goal.wait", { goal_id: done.goal_id, timeout_ms: 30_000 });
    mkdirSync(finished.output_dir, { recursive: true });
    writeFileSync(join(finished.output_dir, "secret-report.md"), "# only for the operator\n");
    dash.server.script('manifest "ui-waiter"', [
      turn.toolUse("memory_store", { content: "a fact", category: "fact" }),
      turn.text("stored"),
    ]);
    const waiting = await dash.c.call("goal.submit", {
      goal: "remember a fact",
      manifest: {
        name: "ui-waiter",
        model: MODEL,
        system_prompt: "You remember.",
        capabilities: ["tool: memory_store"],
        approval_required: ["memory_store"],
      },
    });
    let approvalId = "";
    await expect
      .poll(async () => {
        const { approvals } = await dash.c.call("approval.list", {});
        approvalId = approvals.find((a) => a.goal_id === waiting.goal_id)?.id ?? "";
        return approvalId;
      })
      .not.toBe("");

    // The user's browser loads anything at all from the other server: it sends the cookie.
    const seen: IncomingHttpHeaders[] = [];
    const other = createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<!doctype html><title>cat pictures</title>");
    });
    await new Promise<void>((r) => other.listen(0, "127.0.0.1", r));
    try {
      await dash.page.goto(`http://127.0.0.1:${(other.address() as AddressInfo).port}/`);
    } finally {
      await new Promise((r) => other.close(r));
    }
    const stolen = /(?:^|; )(aido_ui_\d+=[A-Za-z0-9_-]+)/.exec(seen[0]?.cookie ?? "")?.[1] ?? "";
    expect(stolen).toMatch(new RegExp(`^aido_ui_${dash.ui.port}=`));

    // Replayed from a script (no browser: any Host, Origin or Sec-Fetch header it likes).
    const replay = (method: string, path: string, extra: Record<string, string> = {}, body?: string) =>
      raw(dash.ui.port, {
        method,
        path,
        headers: { Host: dash.ui.host, Cookie: stolen, ...extra },
        body,
      });
    const rpcBody = (m: string, params: unknown) => JSON.stringify({ method: m, params });
    const json = { "Content-Type": "application/json", Origin: dash.ui.origin };
    const refused = async (answer: Promise<RawResponse>) => {
      const r = await answer;
      expect(r.status).toBe(401);
      expect(r.text).toContain("page key");
      expect(r.text).not.toContain("only for the operator");
    };
    await refused(replay("POST", "/api/rpc", json, rpcBody("goal.list", {})));
    const allow = rpcBody("approval.respond", { id: approvalId, decision: "allow_always" });
    await refused(replay("POST", "/api/rpc", json, allow));
    await refused(replay("GET", `/api/goals/${done.goal_id}/outputs`));
    await refused(replay("GET", `/api/goals/${done.goal_id}/outputs/secret-report.md`));
    await refused(replay("POST", "/api/goals", json, JSON.stringify({ goal: "planted" })));
    // The event stream: its status line is enough (a stream let in would stay open).
    const events = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          port: dash.ui.port,
          host: "127.0.0.1",
          path: "/api/events",
          headers: { Host: dash.ui.host, Cookie: stolen },
        },
        (res) => {
          resolve(res.statusCode ?? 0);
          req.destroy();
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(events).toBe(401);
    // A made-up key is no better.
    const forged = { ...json, "X-Aido-Key": "A".repeat(43) };
    expect((await replay("POST", "/api/rpc", forged, rpcBody("goal.list", {}))).status).toBe(401);
    // The page's own files, which hold nothing, still open with the cookie alone.
    expect((await replay("GET", "/assets/app.js")).status).toBe(200);
    const { entries } = await dash.c.call("audit.query", { kind: "ui.denied" });
    expect(entries.map((e) => e.payload)).toContainEqual(
      expect.objectContaining({ reason: "page_key", method: "POST", path: "/api/rpc", remote: "127.0.0.1" }),
    );
    // Nothing the replays asked for happened.
    expect((await dash.c.call("approval.list", {})).approvals.map((a) => a.id)).toContain(approvalId);
    expect((await dash.c.call("goal.list", {})).goals.map((g) => g.goal)).not.toContain("planted");

    // The signed-in page, back on the dashboard: the goals list, live events, an answer, a download.
    await dash.page.goto(`${dash.ui.origin}/#/goals`);
    await expect.poll(() => dash.page.getByTestId("connection").textContent()).toBe("live");
    await dash.page.locator(`tr[data-goal="${done.goal_id}"]`).waitFor();
    dash.server.script('manifest "ui-late"', [turn.text("late")]);
    const late = await dash.c.call("goal.submit", {
      goal: "arrives while the page is open",
      manifest: { name: "ui-late", model: MODEL, system_prompt: "You are late." },
    });
    await dash.page.locator(`tr[data-goal="${late.goal_id}"]`).waitFor(); // told by the event stream
    await dash.page.goto(`${dash.ui.origin}/#/approvals`);
    const card = dash.page.locator(`article.request[data-approval="${approvalId}"]`);
    await card.getByRole("button", { name: "Allow once" }).click();
    await expect
      .poll(async () => (await dash.c.call("goal.status", { goal_id: waiting.goal_id })).state, {
        timeout: 30_000,
      })
      .toBe("succeeded");
    await dash.page.goto(`${dash.ui.origin}/#/goals/${encodeURIComponent(done.goal_id)}`);
    const file = dash.page.getByRole("button", { name: "secret-report.md" });
    const [download] = await Promise.all([dash.page.waitForEvent("download"), file.click()]);
    expect(download.suggestedFilename()).toBe("secret-report.md");
    const chunks: Buffer[] = [];
    for await (const chunk of await download.createReadStream()) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString("utf8")).toBe("# only for the operator\n");
    expect(dash.scriptProblems()).toEqual([]);
  }, 90_000);
});

describe("a page of another local port that opens the dashboard in a window of its own", () => {
  it("keeps no handle on it: the dashboard's pages leave the opener's browsing context group", async () => {
    // Ports are not origins' walls for cookies, and a window handle would let the other page
    // navigate the dashboard's tab or count its frames: Cross-Origin-Opener-Policy cuts it.
    const other = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<!doctype html><title>cat pictures</title>");
    });
    await new Promise<void>((r) => other.listen(0, "127.0.0.1", r));
    try {
      await dash.page.goto(`http://127.0.0.1:${(other.address() as AddressInfo).port}/`);
      const popup = dash.page.context().waitForEvent("page");
      await dash.page.evaluate(`window.held = window.open(${JSON.stringify(`${dash.ui.origin}/`)})`);
      const opened = await popup;
      await opened.waitForLoadState();
      // The page the dashboard answered with is the dashboard's: the handle is severed.
      await expect.poll(() => dash.page.evaluate("window.held.closed")).toBe(true);
      expect(await opened.evaluate("window.opener")).toBeNull();
      await opened.close();
    } finally {
      await new Promise((r) => other.close(r));
    }
  }, 60_000);
});

describe("a link whose route holds a malformed escape", () => {
  it("opens the page (the part is shown as written), not a blank tab", async () => {
    await dash.page.goto(`${dash.ui.origin}/#/goals/%E0%A4%A`);
    await dash.page.locator("main").waitFor();
    await expect.poll(() => dash.page.getByTestId("connection").textContent()).toBe("live");
    expect(dash.scriptProblems()).toEqual([]);
  }, 60_000);
});
