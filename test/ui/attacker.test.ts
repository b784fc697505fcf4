// test/ui/attacker.test.ts — attacks on the dashboard that got through its first build,
// each written as the attacker would run it (over real HTTP against a real daemon, the
// scripted provider behind the real SDK, real SQLite and audit log), kept as regressions.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_SIGNED_IN, MAX_STRANGERS, SIGN_IN_WINDOW_MS } from "../../src/daemon/ui/connections.js";
import { manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { type Json, turn } from "../support/provider-server.js";
import {
  eventually,
  openStream,
  openUi,
  postJson,
  rpc,
  type Session,
  sessionLines,
  signIn,
} from "./fixture.js";

const suite = useDaemonPerTest();
let scratch: string;

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "aido-ui-attacker-"));
  writeFileSync(join(scratch, "id_rsa"), "-----BEGIN OPENSSH PRIVATE KEY----- host secret");
  mkdirSync(join(scratch, "page"));
  writeFileSync(join(scratch, "page", "index.html"), "<!doctype html><title>Aido</title>");
  writeFileSync(join(scratch, "page", "signin.js"), "location.replace('/');");
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const call = async (ui: Parameters<typeof rpc>[0], session: Session, method: string, params: unknown = {}) =>
  JSON.parse((await rpc(ui, session, method, params)).text) as { result?: Json; error?: Json };

describe("a stolen session cookie", () => {
  it("loses the event stream it holds open when the operator rotates the token", async () => {
    const fx = await suite.start();
    const ui = await openUi(fx);
    const stolen = await signIn(ui);
    const stream = await openStream(ui, stolen, "/api/events");
    expect(stream.status).toBe(200);

    await openUi(fx, true); // aido ui --rotate
    await stream.ended;

    // Whatever runs after the rotation is not seen through the old cookie.
    suite.server.script('manifest "after"', [turn.text("private answer")]);
    const c = await fx.client();
    const { goal_id } = await c.call("goal.submit", {
      goal: "after the rotation",
      manifest: manifest("after"),
    });
    await c.call("goal.wait", { goal_id, timeout_ms: 20_000 }, { timeoutMs: 25_000 });
    expect(stream.events.map((e) => e.data.goal_id)).not.toContain(goal_id);
  });
});

describe("goal.submit through /api/rpc", () => {
  it("cannot name host files as inputs: a cookie is not a way to read the user's files", async () => {
    const fx = await suite.start();
    const ui = await openUi(fx);
    const session = await signIn(ui);
    const secret = join(scratch, "id_rsa");

    const r = await call(ui, session, "goal.submit", {
      goal: "copy /inputs/id_rsa to /output",
      manifest: JSON.stringify(manifest("thief")),
      inputs: [secret],
    });
    expect(r.result).toBeUndefined();
    expect(r.error?.code).toBe(-32602);
    expect(r.error?.message).toContain("inputs");
    expect(r.error?.message).toContain("POST /api/goals");
    expect(r.error?.data).toMatchObject({ details: { field: "inputs" } });

    // No goal was made from it, and the refusal is audited.
    const c = await fx.client();
    const { goals } = await c.call("goal.list", {});
    expect(goals).toEqual([]);
    const { entries } = await c.call("audit.query", { kind: "ui.denied" });
    expect(entries.map((e) => e.payload)).toContainEqual(
      expect.objectContaining({ reason: "params", path: "/api/rpc goal.submit" }),
    );

    // The socket, 0600 and the operator's own, still takes them.
    suite.server.script('manifest "reader"', [turn.text("ok")]);
    const own = await c.call("goal.submit", { goal: "read", manifest: manifest("reader"), inputs: [secret] });
    expect(own.goal_id).toMatch(/^g_/);
  });
});

describe("another local user holding sockets open", () => {
  it("cannot keep a signed-in browser out: idle sockets are closed after the sign-in window, pushed out by newcomers, and never take a signed-in connection's place", async () => {
    const fx = await suite.start();
    const ui = await openUi(fx);
    const session = await signIn(ui);
    const body = '{"method":"goal.list"}';
    const request = `POST /api/rpc HTTP/1.1\r\nHost: ${ui.host}\r\nOrigin: ${ui.origin}\r\n${sessionLines(session)}Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    // A browser's kept-alive connections, signed in before the attack: more than the strangers' pool.
    const browser: KeptAlive[] = [];
    for (let i = 0; i < MAX_STRANGERS + 4; i++) browser.push(await keptAlive(ui.port, request));
    // The attacker: more sockets than the old shared cap and both pools together, left
    // idle or with half a request.
    const opened: Socket[] = [];
    let connected = 0;
    let closed = 0;
    const attack = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const s = connect(ui.port, "127.0.0.1");
        s.on("error", () => {});
        s.on("connect", () => connected++);
        s.on("close", () => closed++);
        s.resume(); // read what the server sends, so its closing is seen
        if (i % 2 === 0) s.write(`GET / HTTP/1.1\r\nHost: ${ui.host}\r\n`);
        opened.push(s);
      }
      await eventually(async () => (connected === opened.length ? true : undefined), 3_000);
      await new Promise((r) => setTimeout(r, 300)); // the server has taken them all in
    };
    try {
      // Whatever is left free after the first wave (a connection that closed since), the second fills.
      await attack(MAX_SIGNED_IN + MAX_STRANGERS);
      await attack(MAX_STRANGERS);
      expect(closed).toBeLessThan(opened.length);
      // A new connection of the browser still gets in and is answered...
      for (let i = 0; i < 3; i++) expect(await statusOf(ui.port, request)).toBe(200);
      // ...and the connections it kept alive were not pushed out by the strangers.
      for (const k of browser) expect(await k.again()).toBe(200);
      // The daemon's own socket is not starved meanwhile.
      const c = await fx.client();
      expect((await c.call("goal.list", {})).goals).toEqual([]);
      // No stranger lives past the sign-in window.
      await eventually(async () => (closed === opened.length ? true : undefined), SIGN_IN_WINDOW_MS + 2_000);
      const { entries } = await c.call("audit.query", { kind: "ui.denied" });
      expect(entries.map((e) => e.payload)).toContainEqual(expect.objectContaining({ reason: "idle" }));
    } finally {
      for (const s of opened) s.destroy();
      for (const k of browser) k.socket.destroy();
    }
  }, 20_000);
});

describe("another local user crowding the strangers' pool during a download", () => {
  it("cannot cut the browser's download of an output file: its ticket signs the connection in", async () => {
    const fx = await suite.start();
    const ui = await openUi(fx);
    const session = await signIn(ui);
    suite.server.script('manifest "writer"', [turn.text("done")]);
    const c = await fx.client();
    const { goal_id } = await c.call("goal.submit", { goal: "write", manifest: manifest("writer") });
    const g = await c.call("goal.wait", { goal_id, timeout_ms: 20_000 }, { timeoutMs: 25_000 });
    const size = 32 * 1024 * 1024; // more than the socket buffers hold: the download takes a while
    writeFileSync(join(g.output_dir, "big.bin"), Buffer.alloc(size, 7));
    const { url } = (await postJson(ui, session, "/api/downloads", { goal_id, name: "big.bin" })).json as {
      url: string;
    };
    // The browser's download on a connection of its own, with the cookie and nothing of the page's.
    const download = connect(ui.port, "127.0.0.1");
    download.on("error", () => {});
    let received = 0;
    download.on("data", (d: Buffer) => {
      received += d.length;
    });
    const ended = new Promise<void>((r) => download.on("close", () => r()));
    download.write(
      `GET ${url} HTTP/1.1\r\nHost: ${ui.host}\r\nCookie: ${session.Cookie}\r\nConnection: close\r\n\r\n`,
    );
    await eventually(async () => (received > 0 ? true : undefined), 3_000);
    download.pause(); // a slow disk: the rest waits in the buffers
    // Any local user, no credential: a full pool of idle connections.
    const opened: Socket[] = [];
    let connected = 0;
    for (let i = 0; i < MAX_STRANGERS; i++) {
      const s = connect(ui.port, "127.0.0.1");
      s.on("error", () => {});
      s.on("connect", () => connected++);
      opened.push(s);
    }
    try {
      await eventually(async () => (connected === opened.length ? true : undefined), 3_000);
      await new Promise((r) => setTimeout(r, 300)); // the server has taken them all in
      download.resume();
      await ended;
      expect(received).toBeGreaterThan(size);
    } finally {
      for (const s of opened) s.destroy();
      download.destroy();
    }
  }, 20_000);
});

describe("a holder of the credential opening connection after connection", () => {
  it("gets a 503 past the signed-in cap, audited as busy, and the connections already in keep working", async () => {
    const fx = await suite.start();
    const ui = await openUi(fx);
    const session = await signIn(ui);
    const request = rpcRequest(ui, session);
    suite.server.script('manifest "writer"', [turn.text("done")]);
    const c = await fx.client();
    const { goal_id } = await c.call("goal.submit", { goal: "write", manifest: manifest("writer") });
    const g = await c.call("goal.wait", { goal_id, timeout_ms: 20_000 }, { timeoutMs: 25_000 });
    writeFileSync(join(g.output_dir, "report.md"), "# Report\n");
    const { url } = (await postJson(ui, session, "/api/downloads", { goal_id, name: "report.md" })).json as {
      url: string;
    };
    const download = `GET ${url} HTTP/1.1\r\nHost: ${ui.host}\r\nCookie: ${session.Cookie}\r\nConnection: close\r\n\r\n`;
    const held: KeptAlive[] = [];
    try {
      // The fixture's sign-in connection may still be open and signed in: fill up to the cap.
      await fillSignedIn(ui.port, request, held);
      expect(await statusOf(ui.port, request)).toBe(503);
      expect(await held[0]?.again()).toBe(200);
      // A download at the cap is turned away, its ticket not spent: the retry gets the file.
      expect(await statusOf(ui.port, download)).toBe(503);
      // A sign-in link opened meanwhile is turned away too, but not spent: once a tab is
      // closed, the same link signs in.
      const link = new URL(await ui.signInUrl());
      const visit = `GET ${link.pathname}${link.search} HTTP/1.1\r\nHost: ${ui.host}\r\n\r\n`;
      expect(await statusOf(ui.port, visit)).toBe(503);
      held.pop()?.socket.destroy();
      await eventually(async () => ((await statusOf(ui.port, visit)) === 200 ? true : undefined), 5_000);
      held.pop()?.socket.destroy();
      await eventually(async () => ((await statusOf(ui.port, download)) === 200 ? true : undefined), 5_000);
      const { entries } = await (await fx.client()).call("audit.query", { kind: "ui.denied" });
      expect(entries.map((e) => e.payload)).toContainEqual(
        expect.objectContaining({ reason: "busy", path: "/api/rpc" }),
      );
    } finally {
      for (const k of held) k.socket.destroy();
    }
  }, 20_000);
});

describe("a stolen cookie's connections after the operator rotates the token", () => {
  it("are signed out at the rotation, so they cannot hold the signed-in cap against the user's new link", async () => {
    const fx = await suite.start();
    const ui = await openUi(fx);
    const request = rpcRequest(ui, await signIn(ui)); // with the stolen cookie
    const held: KeptAlive[] = [];
    try {
      await fillSignedIn(ui.port, request, held);
      expect(held.length).toBeGreaterThan(MAX_SIGNED_IN - 2);
      await openUi(fx, true); // aido ui --rotate
      // The user's fresh link, opened on a new connection, signs in: the old cookie's
      // connections no longer count against the cap.
      const link = new URL(await ui.signInUrl());
      const visit = `GET /${link.search} HTTP/1.1\r\nHost: ${ui.host}\r\n\r\n`;
      expect(await statusOf(ui.port, visit)).toBe(200);
      // The old ones are refused, and closed once the sign-in window is over.
      expect(await held[0]?.again()).toBe(401);
      await eventually(
        async () => (held.every((k) => k.socket.closed) ? true : undefined),
        SIGN_IN_WINDOW_MS + 2_000,
      );
    } finally {
      for (const k of held) k.socket.destroy();
    }
  }, 20_000);
});

describe("a stolen cookie without the page key (another local user's server on another port)", () => {
  it("cannot fill the signed-in cap with requests for the page's files: the user's browser still gets in", async () => {
    const fx = await suite.start({
      config: (c) => {
        c.ui.assetsDir = join(scratch, "page");
      },
    });
    const ui = await openUi(fx);
    const session = await signIn(ui);
    // What the cookie alone still opens: the page, its files, a spent sign-in link.
    const cookieOnly = [
      `GET / HTTP/1.1\r\nHost: ${ui.host}\r\nCookie: ${session.Cookie}\r\n\r\n`,
      `HEAD /assets/signin.js HTTP/1.1\r\nHost: ${ui.host}\r\nCookie: ${session.Cookie}\r\n\r\n`,
      `GET /?code=spent HTTP/1.1\r\nHost: ${ui.host}\r\nCookie: ${session.Cookie}\r\n\r\n`,
    ];
    const held: KeptAlive[] = [];
    try {
      for (let i = 0; i < MAX_SIGNED_IN; i++) {
        const k = await keptAlive(ui.port, cookieOnly[i % cookieOnly.length] as string, false);
        if (k.first === 503) break; // the cap is full (on main, of the cookie alone)
        expect([200, 303]).toContain(k.first);
        held.push(k);
      }
      // The user's page, with the cookie and the page key, is answered on a new connection.
      expect(await statusOf(ui.port, rpcRequest(ui, session))).toBe(200);
      // The cookie-only connections are strangers: closed after the sign-in window.
      await eventually(
        async () => (held.every((k) => k.socket.closed) ? true : undefined),
        SIGN_IN_WINDOW_MS + 2_000,
      );
    } finally {
      for (const k of held) k.socket.destroy();
    }
  }, 20_000);
});

/** A dashboard RPC (goal.list) written byte for byte, with `session`. */
function rpcRequest(ui: { host: string; origin: string }, session: Session): string {
  const body = '{"method":"goal.list"}';
  return `POST /api/rpc HTTP/1.1\r\nHost: ${ui.host}\r\nOrigin: ${ui.origin}\r\n${sessionLines(session)}Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
}

/** Kept-alive connections sending `request` into `held` until one is refused or the cap is reached. */
async function fillSignedIn(port: number, request: string, held: KeptAlive[]): Promise<void> {
  while (held.length < MAX_SIGNED_IN) {
    const k = await keptAlive(port, request, false);
    if (k.first !== 200) return;
    held.push(k);
  }
}

interface KeptAlive {
  socket: Socket;
  /** The status of the first request. */
  first: number;
  /** The same request again on this connection: its status. */
  again(): Promise<number>;
}

/** A connection kept alive after one request (written byte for byte), as a browser keeps one. */
async function keptAlive(port: number, request: string, mustPass = true): Promise<KeptAlive> {
  const socket = connect(port, "127.0.0.1");
  socket.setEncoding("utf8");
  let out = "";
  let waiting: ((status: number) => void) | undefined;
  socket.on("data", (d: string) => {
    out += d;
    const m = /HTTP\/1\.1 (\d{3}) [\s\S]*?\r\n\r\n/.exec(out);
    if (m && waiting) {
      const w = waiting;
      waiting = undefined;
      out = "";
      w(Number(m[1]));
    }
  });
  socket.on("close", () => waiting?.(0));
  socket.on("error", () => {});
  const again = () =>
    new Promise<number>((resolve) => {
      waiting = resolve;
      socket.write(request);
    });
  const first = await again();
  if (mustPass) expect(first).toBe(200);
  return { socket, first, again };
}

/**
 * The status line's code of one request written byte for byte (headers a client library
 * would not send) on a new connection; 0 when the server closes it without an answer.
 */
function statusOf(port: number, request: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    s.on("close", () => resolve(0));
    let out = "";
    s.on("data", (d) => {
      out += d;
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(out);
      if (m) {
        s.destroy();
        resolve(Number(m[1]));
      }
    });
    s.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" ? resolve(0) : reject(e)));
    s.write(request);
  });
}

describe("a request naming another host (DNS rebinding)", () => {
  it("is refused however the other name is written: a second Host header, an absolute-form request line, look-alikes", async () => {
    const fx = await suite.start();
    const ui = await openUi(fx);
    const session = await signIn(ui);
    const p = ui.port;
    const get = (line: string, hosts: string[]) =>
      statusOf(
        p,
        `GET ${line} HTTP/1.1\r\n${hosts.map((h) => `Host: ${h}\r\n`).join("")}${sessionLines(session)}\r\n`,
      );
    // The control: the dashboard's own address, once.
    expect(await get("/api/goals/g_none/outputs", [`127.0.0.1:${p}`])).toBe(404);
    for (const [line, hosts] of [
      ["/", [`127.0.0.1:${p}`, "evil.example"]],
      ["/", ["evil.example", `127.0.0.1:${p}`]],
      ["http://evil.example/", [`127.0.0.1:${p}`]],
      [`http://evil.example:${p}/api/goals/g_none/outputs`, [`localhost:${p}`]],
      ["/", [`127.0.0.1.:${p}`]],
      ["/", [`LOCALHOST:${p}`]],
      ["/", [`127.0.0.1.nip.io:${p}`]],
      ["/", [`[::1]:${p}`]],
      ["/", ["127.0.0.1"]],
    ] as [string, string[]][]) {
      expect([line, hosts, await get(line, hosts)]).toEqual([line, hosts, 421]);
    }
  });
});
