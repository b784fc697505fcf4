// test/ui/server-attacks.test.ts — the dashboard's HTTP server attacked the way a hostile
// web page in the user's browser, another local user or a stray script would: over real
// HTTP against a real daemon (scripted provider, real SQLite, real audit log).

import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { connect } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Config } from "../../src/config.js";
import { type DaemonFixture, manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { turn } from "../support/provider-server.js";
import { openUi, postJson, raw, rpc, sessionOf, signIn, type UiHandle } from "./fixture.js";

const suite = useDaemonPerTest();
let assets: string;
let scratch: string;

beforeAll(() => {
  assets = mkdtempSync(join(tmpdir(), "aido-ui-attacks-assets-"));
  writeFileSync(
    join(assets, "index.html"),
    "<!doctype html><title>Aido</title><script src=/assets/app.js></script>",
  );
  writeFileSync(join(assets, "app.js"), "console.log('aido');");
  writeFileSync(join(assets, "app.css"), "body{}");
  scratch = mkdtempSync(join(tmpdir(), "aido-ui-attacks-"));
  writeFileSync(join(scratch, "secret.txt"), "host secret");
});
afterAll(() => {
  rmSync(assets, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

const withAssets = (c: Config) => {
  c.ui.assetsDir = assets;
};

async function start(): Promise<{ fx: DaemonFixture; ui: UiHandle }> {
  const fx = await suite.start({ config: withAssets });
  return { fx, ui: await openUi(fx) };
}

const get = (ui: UiHandle, path: string, headers: Record<string, string> = {}) =>
  raw(ui.port, { path, headers: { Host: ui.host, ...headers } });

async function denials(fx: DaemonFixture, reason?: string) {
  const c = await fx.client();
  const { entries } = await c.call("audit.query", { kind: "ui.denied" });
  return entries.filter((e) => reason === undefined || (e.payload as { reason: string }).reason === reason);
}

/** The four doors: the shell, an asset, the RPC and the event stream. */
function doors(ui: UiHandle, headers: Record<string, string>) {
  const json = { "Content-Type": "application/json", Origin: ui.origin };
  return [
    get(ui, "/", headers),
    get(ui, "/assets/app.js", headers),
    raw(ui.port, {
      method: "POST",
      path: "/api/rpc",
      headers: { Host: ui.host, ...json, ...headers },
      body: JSON.stringify({ method: "goal.list" }),
    }),
    get(ui, "/api/events", headers),
  ];
}

function expectRefused(answers: Awaited<ReturnType<typeof raw>>[]) {
  for (const r of answers) {
    expect(r.status).toBe(401);
    expect(r.text).toContain("aido ui");
    expect(r.text).not.toContain("<script");
    expect(r.headers["content-security-policy"]).toContain("default-src 'self'");
  }
}

describe("the token", () => {
  it("is required on the shell, the assets, /api/rpc and /api/events: none, a wrong one, a forged cookie", async () => {
    const { ui } = await start();
    expectRefused(await Promise.all(doors(ui, {})));
    // One character off (a token ending in "A" once made this the right token, 1 run in 16).
    const wrong = `${ui.token.slice(0, -1)}${ui.token.endsWith("A") ? "B" : "A"}`;
    expectRefused(await Promise.all(doors(ui, { Authorization: `Bearer ${wrong}` })));
    expectRefused(await Promise.all(doors(ui, { Cookie: `aido_ui_${ui.port}=${ui.token}` }))); // the token is not the session
    for (const path of ["/?code=not-a-code", `/?token=${ui.token}`, `/?code=${ui.token}`]) {
      const wrongVisit = await get(ui, path);
      expect(wrongVisit.status).toBe(401);
      expect(wrongVisit.headers["set-cookie"]).toBeUndefined();
    }
  });

  it("signs in through a link whose code is traded, once, for an HttpOnly SameSite=Strict cookie and the page key, in a page whose script takes the code out of the address", async () => {
    const { ui } = await start();
    const link = new URL(ui.url);
    expect(link.searchParams.get("code")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(ui.url).not.toContain(ui.token);
    const visit = await get(ui, link.pathname + link.search);
    expect(visit.status).toBe(200);
    expect(visit.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(visit.headers["cache-control"]).toBe("no-store");
    // The page's only script is the dashboard's own file (the CSP allows no inline script).
    expect(visit.text.match(/<script[^>]*>/g)).toEqual(['<script src="/assets/signin.js">']);
    const setCookie = ([] as string[]).concat(visit.headers["set-cookie"] ?? [])[0] as string;
    expect(setCookie).toMatch(
      new RegExp(`^aido_ui_${ui.port}=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=/$`),
    );
    expect(setCookie).not.toContain(ui.token);
    const session = sessionOf(visit);
    expect(session["X-Aido-Key"]).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(visit.text).not.toContain(ui.token);
    expect(session.Cookie).not.toContain(session["X-Aido-Key"]);
    // The page's own files open with the cookie alone; the API needs the key beside it.
    const shell = await get(ui, "/", { Cookie: session.Cookie });
    expect(shell.status).toBe(200);
    expect(shell.text).toContain("<title>Aido</title>");
    expect(shell.headers["cache-control"]).toBe("no-store");
    const js = await get(ui, "/assets/app.js", { Cookie: session.Cookie });
    expect(js.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(JSON.parse((await rpc(ui, session, "goal.list")).text)).toEqual({ result: { goals: [] } });
    // A script may use the token itself.
    const viaBearer = await raw(ui.port, {
      method: "POST",
      path: "/api/rpc",
      headers: { Host: ui.host, Authorization: `Bearer ${ui.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ method: "goal.list", params: {} }),
    });
    expect(JSON.parse(viaBearer.text)).toEqual({ result: { goals: [] } });
    // The link is spent: opened again it signs nobody in, but takes a signed-in tab on to `/`.
    const again = await get(ui, link.pathname + link.search);
    expect(again.status).toBe(401);
    expect(again.text).toContain("used already or has expired");
    expect(again.headers["set-cookie"]).toBeUndefined();
    const reload = await get(ui, link.pathname + link.search, { Cookie: session.Cookie });
    expect(reload.status).toBe(303);
    expect(reload.text).not.toContain(session["X-Aido-Key"]);
    expect(reload.headers["set-cookie"]).toBeUndefined();
  });

  it("rotated, leaves every cookie and URL of the old one refused", async () => {
    const { fx, ui } = await start();
    const oldSession = await signIn(ui);
    const unopened = new URL(await ui.signInUrl()); // links handed out before a rotation die with the old token
    const rotated = await openUi(fx, true);
    expect(rotated.port).toBe(ui.port);
    expect(rotated.token).not.toBe(ui.token);
    expectRefused(await Promise.all(doors(ui, { ...oldSession })));
    expectRefused(await Promise.all(doors(ui, { Authorization: `Bearer ${ui.token}` })));
    expect((await get(ui, unopened.pathname + unopened.search)).status).toBe(401);
    const fresh = await signIn(rotated);
    expect((await rpc(rotated, fresh, "goal.list")).status).toBe(200);
    // The page key was the old token's too: beside the new cookie it opens nothing.
    const staleKey = { ...fresh, "X-Aido-Key": oldSession["X-Aido-Key"] };
    expect((await rpc(rotated, staleKey, "goal.list")).status).toBe(401);
    expect(readFileSync(rotated.tokenFile, "utf8").trim()).toBe(rotated.token);
  });

  it("is kept 0600, and a planted symlink or a 0644 file at its path is replaced, never trusted", async () => {
    const fx = await suite.start({ config: withAssets });
    const path = join(fx.home.config.home, "ui-token");
    const known = "A".repeat(43);
    writeFileSync(join(scratch, "planted"), `${known}\n`, { mode: 0o600 });
    symlinkSync(join(scratch, "planted"), path);
    const viaLink = await openUi(fx);
    expect(viaLink.token).not.toBe(known);
    expect(lstatSync(path).isSymbolicLink()).toBe(false);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(scratch, "planted"), "utf8")).toBe(`${known}\n`); // the target untouched
    expect(fx.logs.join("\n")).toContain("is a symbolic link");
    await fx.restart();
    rmSync(path);
    writeFileSync(path, `${known}\n`, { mode: 0o644 });
    const viaLoose = await openUi(fx);
    expect(viaLoose.token).not.toBe(known);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect((await get(viaLoose, "/", { Authorization: `Bearer ${known}` })).status).toBe(401);
  });
});

describe("requests from elsewhere", () => {
  it("refuses a Host that is not the dashboard's (DNS rebinding), even with a good cookie", async () => {
    const { ui } = await start();
    const session = await signIn(ui);
    for (const host of [`evil.example:${ui.port}`, "127.0.0.1", `127.0.0.1:${ui.port + 1}`, ""]) {
      const r = await raw(ui.port, { path: "/api/events", headers: { Host: host, ...session } });
      expect(r.status).toBe(421);
    }
    // No Host at all: Node's parser refuses HTTP/1.1 without one (400) before the guard.
    expect((await raw(ui.port, { path: "/", headers: { ...session } })).status).toBe(400);
    expect((await get(ui, "/", { ...session, Host: `localhost:${ui.port}` })).status).toBe(200);
  });

  it("refuses another Origin on POST and on the event stream", async () => {
    const { fx, ui } = await start();
    const session = await signIn(ui);
    for (const origin of [
      "http://evil.example",
      "null",
      `http://127.0.0.1:${ui.port + 1}`,
      `https://127.0.0.1:${ui.port}`,
    ]) {
      const post = await raw(ui.port, {
        method: "POST",
        path: "/api/rpc",
        headers: { Host: ui.host, Origin: origin, ...session, "Content-Type": "application/json" },
        body: JSON.stringify({ method: "goal.submit", params: { goal: "from evil" } }),
      });
      expect(post.status).toBe(403);
      const stream = await get(ui, "/api/events", { Origin: origin, ...session });
      expect(stream.status).toBe(403);
    }
    const c = await fx.client();
    expect((await c.call("goal.list", {})).goals).toEqual([]);
  });

  it("refuses form posts (urlencoded, text/plain, multipart) and a POST with neither Origin nor Bearer", async () => {
    const { fx, ui } = await start();
    const session = await signIn(ui);
    const body = JSON.stringify({ method: "goal.submit", params: { goal: "csrf" } });
    for (const type of [
      "application/x-www-form-urlencoded",
      "text/plain",
      "multipart/form-data; boundary=x",
      "",
    ]) {
      const headers: Record<string, string> = { Host: ui.host, Origin: ui.origin, ...session };
      if (type) headers["Content-Type"] = type;
      const r = await raw(ui.port, { method: "POST", path: "/api/rpc", headers, body });
      expect(r.status).toBe(415);
    }
    const noOrigin = await raw(ui.port, {
      method: "POST",
      path: "/api/goals",
      headers: { Host: ui.host, ...session, "Content-Type": "application/json" },
      body: JSON.stringify({ goal: "csrf" }),
    });
    expect(noOrigin.status).toBe(403);
    const c = await fx.client();
    expect((await c.call("goal.list", {})).goals).toEqual([]);
  });

  it("listens on 127.0.0.1 only: the host's other addresses refuse the connection", async () => {
    const { ui } = await start();
    const others = ["127.0.0.2", "::1"];
    for (const list of Object.values(networkInterfaces()))
      for (const a of list ?? []) if (!a.internal) others.push(a.address);
    for (const address of others) {
      const outcome = await new Promise<string>((resolve) => {
        const s = connect({ host: address, port: ui.port });
        s.once("connect", () => {
          s.destroy();
          resolve("connected");
        });
        s.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
      });
      expect([address, outcome]).not.toEqual([address, "connected"]);
    }
  });
});

describe("what the dashboard may do", () => {
  it("refuses every socket method outside its allowlist", async () => {
    const { fx, ui } = await start();
    const session = await signIn(ui);
    for (const method of [
      "session.open",
      "agent.run",
      "agent.spawn",
      "agent.spawn_and_run",
      "tool.invoke",
      "events.subscribe",
      "ui.open",
      "mcp.approve",
      "plan.execute",
      "intent.set",
      "__proto__",
      "constructor",
    ]) {
      const r = JSON.parse((await rpc(ui, session, method, {})).text);
      expect(r.error.code).toBe(-32601);
      expect(r.result).toBeUndefined();
    }
    const bad = JSON.parse(
      (await rpc(ui, session, "goal.wait", { goal_id: "g_x", timeout_ms: 600_000 })).text,
    );
    expect(bad.error).toMatchObject({ code: -32602, data: { details: { field: "timeout_ms" } } });
    expect((await denials(fx, "method")).length).toBe(1); // rate-limited: one entry per minute
  });

  it("serves assets by exact name only: traversal, encoded, absolute and NUL paths are 404", async () => {
    const { ui } = await start();
    const session = await signIn(ui);
    for (const path of [
      "/assets/../package.json",
      "/assets/..%2fpackage.json",
      "/assets/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
      "/assets//etc/passwd",
      "/assets/%2Fetc%2Fpasswd",
      "/assets/app.js%00.html",
      "/assets/",
      "/assets/.",
      "/index.html",
      "/etc/passwd",
    ]) {
      const r = await get(ui, path, { ...session });
      expect([path, r.status]).toEqual([path, 404]);
      expect(r.text).not.toContain("root:");
    }
  });
});

describe("a goal's output files", () => {
  async function finishedGoal(fx: DaemonFixture): Promise<{ goalId: string; outputDir: string }> {
    suite.server.script('manifest "writer"', [turn.text("done")]);
    const c = await fx.client();
    const { goal_id } = await c.call("goal.submit", { goal: "write", manifest: manifest("writer") });
    const g = await c.call("goal.wait", { goal_id, timeout_ms: 20_000 }, { timeoutMs: 25_000 });
    return { goalId: goal_id, outputDir: g.output_dir };
  }

  it("are sent as octet-stream attachments (an x.html is never rendered) and only by a listed name", async () => {
    const { fx, ui } = await start();
    const session = await signIn(ui);
    const { goalId, outputDir } = await finishedGoal(fx);
    writeFileSync(join(outputDir, "x.html"), "<script>alert(document.cookie)</script>");
    mkdirSync(join(outputDir, "sub"));
    writeFileSync(join(outputDir, "sub", "notes.md"), "# notes");
    symlinkSync(join(scratch, "secret.txt"), join(outputDir, "link.txt"));
    symlinkSync(scratch, join(outputDir, "dirlink"));

    const list = JSON.parse((await get(ui, `/api/goals/${goalId}/outputs`, { ...session })).text);
    expect(list.files).toEqual([
      { name: "sub/notes.md", size: 7 },
      { name: "x.html", size: 39 },
    ]);
    const html = await get(ui, `/api/goals/${goalId}/outputs/x.html`, { ...session });
    expect(html.status).toBe(200);
    expect(html.headers["content-type"]).toBe("application/octet-stream");
    expect(html.headers["content-disposition"]).toBe("attachment; filename*=UTF-8''x.html");
    expect(html.headers["content-security-policy"]).toContain("default-src 'self'");
    expect(html.headers["x-content-type-options"]).toBe("nosniff");
    expect(html.text).toBe("<script>alert(document.cookie)</script>");
    const nested = await get(ui, `/api/goals/${goalId}/outputs/sub%2Fnotes.md`, { ...session });
    expect(nested.text).toBe("# notes");

    for (const name of [
      "link.txt",
      "dirlink%2Fsecret.txt",
      "..%2F..%2F..%2Fkeys",
      "%2E%2E%2Fworkspace",
      `${encodeURIComponent(join(scratch, "secret.txt"))}`,
      "x.html%00",
      "%E0%A4%A",
    ]) {
      const r = await get(ui, `/api/goals/${goalId}/outputs/${name}`, { ...session });
      expect([name, r.status]).toEqual([name, 404]);
      expect(r.text).not.toContain("host secret");
    }
    expect((await get(ui, "/api/goals/g_nope/outputs", { ...session })).status).toBe(404);
    expect((await get(ui, `/api/goals/${goalId}/outputs`)).status).toBe(401);
  });

  it("are downloaded by the page through one-time tickets: spent by their first use, useless without the cookie, only for listed files", async () => {
    const { fx, ui } = await start();
    const session = await signIn(ui);
    const { goalId, outputDir } = await finishedGoal(fx);
    writeFileSync(join(outputDir, "report.md"), "# Report\n");
    symlinkSync(join(scratch, "secret.txt"), join(outputDir, "link.txt"));
    const ticket = (name: string, goal = goalId) =>
      postJson(ui, session, "/api/downloads", { goal_id: goal, name });
    const cookieOnly = { Cookie: session.Cookie };

    const issued = await ticket("report.md");
    expect(issued.status).toBe(200);
    const url = (issued.json as { url: string }).url;
    expect(url).toMatch(/^\/download\/[A-Za-z0-9_-]{43}$/);
    // A browser download carries the cookie and nothing of the page's.
    const file = await get(ui, url, cookieOnly);
    expect(file.status).toBe(200);
    expect(file.headers["content-type"]).toBe("application/octet-stream");
    expect(file.headers["content-disposition"]).toBe("attachment; filename*=UTF-8''report.md");
    expect(file.text).toBe("# Report\n");
    // Spent: a second use (a replay from a proxy's log, the download list) gets nothing.
    const again = await get(ui, url, cookieOnly);
    expect(again.status).toBe(404);
    expect(again.text).not.toContain("Report");

    // A ticket without the cookie (leaked alone) opens nothing, and is still the page's.
    const other = (await ticket("report.md")).json as { url: string };
    expect((await get(ui, other.url)).status).toBe(401);
    // Another site's page cannot use one either (an <img> or a link from another port).
    expect((await get(ui, other.url, { ...cookieOnly, "Sec-Fetch-Site": "same-site" })).status).toBe(403);
    expect((await get(ui, other.url, cookieOnly)).text).toBe("# Report\n");

    // The cookie alone (stolen by a server on another port) gets no ticket.
    const stolen = await raw(ui.port, {
      method: "POST",
      path: "/api/downloads",
      headers: { Host: ui.host, Origin: ui.origin, ...cookieOnly, "Content-Type": "application/json" },
      body: JSON.stringify({ goal_id: goalId, name: "report.md" }),
    });
    expect(stolen.status).toBe(401);
    // Tickets only for files the listing has; a made-up ticket opens nothing.
    expect((await ticket("link.txt")).status).toBe(404);
    expect((await ticket("../../keys")).status).toBe(404);
    expect((await ticket("report.md", "g_nope")).status).toBe(404);
    const bad = await postJson(ui, session, "/api/downloads", { goal_id: goalId, name: "", extra: 1 });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json)).toMatch(/name|extra/);
    expect((await get(ui, `/download/${"A".repeat(43)}`, cookieOnly)).status).toBe(404);
    expect((await get(ui, "/download/..%2F..%2Fkeys", cookieOnly)).status).toBe(404);
    expect((await denials(fx, "ticket")).length).toBeGreaterThan(0);
  });

  it("survive a HEAD (a download manager's, some browsers' first request): it answers the GET's headers, the GET that follows gets the file, and only once", async () => {
    const { fx, ui } = await start();
    const session = await signIn(ui);
    const { goalId, outputDir } = await finishedGoal(fx);
    writeFileSync(join(outputDir, "report.md"), "# Report\n");
    const cookieOnly = { Cookie: session.Cookie };
    const { url } = (await postJson(ui, session, "/api/downloads", { goal_id: goalId, name: "report.md" }))
      .json as { url: string };

    const head = await raw(ui.port, { method: "HEAD", path: url, headers: { Host: ui.host, ...cookieOnly } });
    expect(head.status).toBe(200);
    expect(head.headers["content-length"]).toBe("9");
    expect(head.headers["content-disposition"]).toBe("attachment; filename*=UTF-8''report.md");
    expect(head.body.length).toBe(0);
    // The download itself, after the HEAD.
    const file = await get(ui, url, cookieOnly);
    expect(file.status).toBe(200);
    expect(file.text).toBe("# Report\n");
    // Spent by that GET: neither another GET nor a HEAD opens it again.
    expect((await get(ui, url, cookieOnly)).status).toBe(404);
    expect(
      (await raw(ui.port, { method: "HEAD", path: url, headers: { Host: ui.host, ...cookieOnly } })).status,
    ).toBe(404);
    // A HEAD does not lift the other checks: without the cookie, from another site.
    const other = (await postJson(ui, session, "/api/downloads", { goal_id: goalId, name: "report.md" }))
      .json as { url: string };
    expect((await raw(ui.port, { method: "HEAD", path: other.url, headers: { Host: ui.host } })).status).toBe(
      401,
    );
    expect(
      (
        await raw(ui.port, {
          method: "HEAD",
          path: other.url,
          headers: { Host: ui.host, ...cookieOnly, "Sec-Fetch-Site": "cross-site" },
        })
      ).status,
    ).toBe(403);
    expect((await get(ui, other.url, cookieOnly)).text).toBe("# Report\n");
  });

  it("refuse a HEAD with a ticket never issued, and audit it", async () => {
    const { fx, ui } = await start();
    const session = await signIn(ui);
    const head = await raw(ui.port, {
      method: "HEAD",
      path: `/download/${"A".repeat(43)}`,
      headers: { Host: ui.host, Cookie: session.Cookie },
    });
    expect(head.status).toBe(404);
    const denied = await denials(fx, "ticket");
    expect(denied).toHaveLength(1);
    expect(denied[0]?.payload).toMatchObject({ reason: "ticket", method: "HEAD", path: "/download/…" });
  });

  it("die with a rotated token: a ticket got before the rotation opens nothing beside the new cookie", async () => {
    const { fx, ui } = await start();
    const session = await signIn(ui);
    const { goalId, outputDir } = await finishedGoal(fx);
    writeFileSync(join(outputDir, "report.md"), "# Report\n");
    // A thief with the old cookie and page key keeps tickets; the user rotates, and the
    // thief's server on another port receives the new cookie at the next visit.
    const held = (await postJson(ui, session, "/api/downloads", { goal_id: goalId, name: "report.md" }))
      .json as {
      url: string;
    };
    const rotated = await openUi(fx, true);
    const fresh = await signIn(rotated);
    const r = await get(rotated, held.url, { Cookie: fresh.Cookie });
    expect(r.status).toBe(404);
    expect(r.text).not.toContain("Report");
    // The new token's tickets work.
    const mine = (await postJson(rotated, fresh, "/api/downloads", { goal_id: goalId, name: "report.md" }))
      .json as {
      url: string;
    };
    expect((await get(rotated, mine.url, { Cookie: fresh.Cookie })).text).toBe("# Report\n");
  });

  it("are saved under a name with the invisible characters the page writes out written out too (the server's name is the one the browser keeps)", async () => {
    const { fx, ui } = await start();
    const session = await signIn(ui);
    const { goalId, outputDir } = await finishedGoal(fx);
    // Hangul fillers, a soft hyphen, a Mongolian vowel separator and a deprecated format
    // character show as blanks or nothing: "invoice.pdf      .exe" reads like a PDF.
    const name = "invoice.pdf\u3164\u3164\u115f\u1160\u00ad\u180e\u206a\uffa0.exe";
    writeFileSync(join(outputDir, name), "MZ");
    const { url } = (await postJson(ui, session, "/api/downloads", { goal_id: goalId, name })).json as {
      url: string;
    };
    const file = await get(ui, url, { Cookie: session.Cookie });
    expect(file.status).toBe(200);
    const disposition = String(file.headers["content-disposition"]);
    const saved = decodeURIComponent(disposition.replace("attachment; filename*=UTF-8''", ""));
    expect(saved).not.toMatch(/[\u00ad\u115f\u1160\u180e\u206a\u3164\uffa0]/);
    expect(saved).toMatch(/^invoice\.pdf\\u3164\\u3164.*\.exe$/);
  });
});

describe("refusals", () => {
  it("are audited as ui.denied with the reason and remote address, once per reason per minute", async () => {
    const { fx, ui } = await start();
    for (let i = 0; i < 20; i++) await get(ui, "/api/events");
    for (let i = 0; i < 5; i++) await raw(ui.port, { path: "/", headers: { Host: "evil.example" } });
    const token = await denials(fx, "token");
    expect(token).toHaveLength(1);
    expect(token[0]?.payload).toMatchObject({
      reason: "token",
      remote: "127.0.0.1",
      method: "GET",
      path: "/api/events",
    });
    expect(await denials(fx, "host")).toHaveLength(1);
    const c = await fx.client();
    expect((await c.call("audit.verify", {})).ok).toBe(true);
  });
});
