// test/ui/dashboard-door.test.ts — the dashboard refused in a real browser to whoever has
// no token: a tab without the session cookie gets the 401 page (never the app), a wrong
// token is refused, and a hostile page on another origin of the same machine — in a
// browser that IS signed in — can neither read the API, nor change anything through a
// simple (no preflight) POST or a form, nor follow the event stream. The sign-in link
// leaves no token in the browser (address bar, the tab's history, the profile's history
// database), and what it leaves there signs nobody in.

import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { type DaemonFixture, startFixture } from "../daemon/fixture.js";
import { type ProviderServer, startProviderServer } from "../support/provider-server.js";
import { ensureUiBuilt, launchBrowser, launchProfile } from "./browser.js";
import { openUi, type UiHandle } from "./fixture.js";

let server: ProviderServer;
let fx: DaemonFixture;
let c: AidoClient;
let ui: UiHandle;
let browser: Browser;
let evil: Server;
let evilOrigin: string;

/** The attacker's page: it tries every way in and records what it could see. */
function attackerPage(target: string): string {
  return `<!doctype html><html><body>
<form id="f" method="POST" action="${target}/api/rpc" enctype="text/plain" target="sink">
<input name='{"method":"goal.submit","params":{"goal":"form-evil","x":"' value='"}}'>
</form><iframe name="sink"></iframe>
<script>
window.results = {};
const done = (k, v) => { window.results[k] = v; };
fetch("${target}/api/rpc", { method: "POST", credentials: "include",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ method: "goal.list", params: {} }) })
  .then((r) => r.text()).then((t) => done("read", t), (e) => done("read", "blocked: " + e.name));
fetch("${target}/api/rpc", { method: "POST", mode: "no-cors", credentials: "include",
  headers: { "content-type": "text/plain" },
  body: JSON.stringify({ method: "goal.submit", params: { goal: "simple-evil" } }) })
  .then(() => done("simple", "sent"), (e) => done("simple", "blocked: " + e.name));
const es = new EventSource("${target}/api/events", { withCredentials: true });
es.onmessage = (m) => done("events", "got " + m.data);
es.onerror = () => { es.close(); done("events", "blocked"); };
document.getElementById("f").submit();
</script></body></html>`;
}

beforeAll(async () => {
  ensureUiBuilt();
  server = await startProviderServer();
  fx = await startFixture(server);
  c = await fx.client();
  ui = await openUi(fx);
  browser = await launchBrowser();
  evil = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(attackerPage(ui.origin));
  });
  await new Promise<void>((r) => evil.listen(0, "127.0.0.1", r));
  evilOrigin = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`;
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => evil?.close(r));
  await fx?.close();
  await server?.close();
});

describe("the dashboard's door, in a browser", () => {
  it("shows a tab without the session cookie the 401 page saying to run `aido ui`, never the app", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const res = await page.goto(`${ui.origin}/`);
    expect(res?.status()).toBe(401);
    expect(await page.locator("body").textContent()).toContain("aido ui");
    expect(await page.locator("#app").count()).toBe(0);
    const asset = await page.goto(`${ui.origin}/assets/app.js`);
    expect(asset?.status()).toBe(401);
    const wrong = await page.goto(`${ui.origin}/?code=${"A".repeat(43)}`);
    expect(wrong?.status()).toBe(401);
    expect(await context.cookies()).toEqual([]);
    await context.close();
  });

  it("lets a signed-in browser's other origin read nothing, change nothing and follow no events", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(ui.url); // signed in: the session cookie is set for 127.0.0.1
    await page.getByTestId("connection").waitFor();
    expect(await context.cookies()).toHaveLength(1);

    // Leave the dashboard first: a request it still had in flight (its own goal.list or event
    // stream) must not be counted as one the other origin's page sent.
    await page.goto("about:blank");
    const answers: string[] = [];
    page.on("response", (r) => {
      const req = r.request();
      if (!r.url().startsWith(ui.origin)) return;
      const what = /form-evil|simple-evil|goal\.list/.exec(req.postData() ?? "")?.[0] ?? "-";
      answers.push(`${req.method()} ${new URL(r.url()).pathname} ${what} ${r.status()}`);
    });
    // The no-cors POST's answer reaches the browser, which keeps it from the page (below).
    page.on("requestfailed", (req) => {
      if (!req.url().startsWith(ui.origin) || !(req.postData() ?? "").includes("simple-evil")) return;
      answers.push(`${req.method()} ${new URL(req.url()).pathname} simple-evil ${req.failure()?.errorText}`);
    });
    await page.goto(`${evilOrigin}/`);
    await expect
      .poll(() => page.evaluate("Object.keys(window.results).sort().join(',')"), { timeout: 20_000 })
      .toBe("events,read,simple");
    const results = (await page.evaluate("window.results")) as Record<string, string>;
    expect(results.read).toBe("blocked: TypeError");
    expect(results.events).toBe("blocked");
    // The JSON read never left the browser (its preflight failed); the two POSTs a page can
    // send without a preflight reached the server, with the cookie, and the Origin check
    // refused them; the no-cors one's answer the browser does not even hand to the page
    // (Cross-Origin-Resource-Policy: same-origin).
    await expect
      .poll(() => [...answers].sort(), { timeout: 20_000 })
      .toEqual([
        "POST /api/rpc form-evil 403",
        "POST /api/rpc simple-evil net::ERR_BLOCKED_BY_RESPONSE.NotSameOrigin",
      ]);

    // Nothing the page sent changed anything: no goal exists, and the refusals are audited.
    expect((await c.call("goal.list", {})).goals).toEqual([]);
    const denied = await c.call("audit.query", { kind: "ui.denied" });
    const reasons = new Set(denied.entries.map((e) => (e.payload as { reason: string }).reason));
    expect(reasons.has("origin")).toBe(true);
    await context.close();
  }, 60_000);

  it("signs in through a link that leaves no token in the address bar or any history, and reloads, deep links and events still work", async () => {
    const profile = mkdtempSync(join(tmpdir(), "aido-ui-profile-"));
    try {
      const context = await launchProfile(profile);
      const page = context.pages()[0] ?? (await context.newPage());
      const link = await ui.signInUrl();
      await page.goto(`${link}#/audit`); // a deep link: the link with a hash route
      const live = page.getByTestId("connection");
      await expect.poll(() => live.textContent(), { timeout: 20_000 }).toBe("live");
      expect(page.url()).toBe(`${ui.origin}/#/audit`);
      expect(await page.getByRole("link", { name: "Audit" }).getAttribute("aria-current")).toBe("page");
      const cdp = await context.newCDPSession(page);
      const tabHistory = async () =>
        (await cdp.send("Page.getNavigationHistory")).entries.map((e) => e.url).join("\n");
      expect(await tabHistory()).not.toContain(ui.token);
      // The page key the sign-in page handed over sits in the origin's storage, in no address.
      const key = (await page.evaluate('localStorage.getItem("aido-page-key")')) as string;
      expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(await tabHistory()).not.toContain(key);

      await page.reload(); // the cookie, not the link, signs the reload in
      await expect.poll(() => live.textContent(), { timeout: 20_000 }).toBe("live");
      expect(page.url()).toBe(`${ui.origin}/#/audit`);
      expect(await page.evaluate("location.href")).toBe(`${ui.origin}/#/audit`);
      expect(await tabHistory()).not.toContain(ui.token);
      await context.close(); // the profile's history database is written in full

      const db = new Database(join(profile, "Default", "History"), { readonly: true });
      const urls = (db.prepare("SELECT url FROM urls").all() as { url: string }[]).map((r) => r.url);
      db.close();
      expect(urls.some((u) => u.startsWith(ui.origin))).toBe(true);
      expect(urls.join("\n")).not.toContain(ui.token);
      expect(urls.join("\n")).not.toContain(key);
      // What the history keeps of the link signs a browser without the cookie in no more.
      const kept = urls.find((u) => u.includes("?code="));
      expect(kept).toBeDefined();
      const other = await browser.newContext();
      const replay = await (await other.newPage()).goto(kept as string);
      expect(replay?.status()).toBe(401);
      expect(await other.cookies()).toEqual([]);
      await other.close();
    } finally {
      rmSync(profile, { recursive: true, force: true });
    }
  }, 60_000);

  // Last in the file: it rotates the token.
  it("says `disconnected` in a tab without the page key, and once a rotation cuts the page's event stream and refuses its reconnection", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(await ui.signInUrl());
    const live = page.getByTestId("connection");
    await expect.poll(() => live.textContent(), { timeout: 20_000 }).toBe("live");
    // A tab of this browser whose origin storage lost the page key: the page, but no API.
    const keyless = await context.newPage();
    await keyless.goto(`${ui.origin}/#/goals`);
    await keyless.evaluate('localStorage.removeItem("aido-page-key")');
    await keyless.reload();
    const keylessState = keyless.getByTestId("connection");
    await expect.poll(() => keylessState.textContent(), { timeout: 20_000 }).toMatch(/^disconnected/);
    await keyless.close();
    ui = await openUi(fx, true); // aido ui --rotate
    await expect.poll(() => live.textContent(), { timeout: 20_000 }).toMatch(/^disconnected/);
    await context.close();
  }, 60_000);
});
