// test/ui/attacker.test.ts — attacks on the dashboard that got through its first build,
// each written as the attacker would run it (over real HTTP against a real daemon, the
// scripted provider behind the real SDK, real SQLite and audit log), kept as regressions.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HEADERS_TIMEOUT_MS, MAX_CONNECTIONS } from "../../src/daemon/ui/server.js";
import { manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { type Json, turn } from "../support/provider-server.js";
import { eventually, openStream, openUi, rpc, signIn } from "./fixture.js";

const suite = useDaemonPerTest();
let scratch: string;

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "aido-ui-attacker-"));
  writeFileSync(join(scratch, "id_rsa"), "-----BEGIN OPENSSH PRIVATE KEY----- host secret");
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const call = async (ui: Parameters<typeof rpc>[0], cookie: string, method: string, params: unknown = {}) =>
  JSON.parse((await rpc(ui, cookie, method, params)).text) as { result?: Json; error?: Json };

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
    const cookie = await signIn(ui);
    const secret = join(scratch, "id_rsa");

    const r = await call(ui, cookie, "goal.submit", {
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
  it("gets no more than the cap and loses idle ones after the header timeout; the daemon keeps answering", async () => {
    const fx = await suite.start();
    const ui = await openUi(fx);
    const cookie = await signIn(ui);
    // Sockets that connect and never send a request (or only part of one).
    const extra = 20;
    let closed = 0;
    const sockets: Socket[] = [];
    for (let i = 0; i < MAX_CONNECTIONS + extra; i++) {
      const s = connect(ui.port, "127.0.0.1");
      s.on("error", () => {});
      s.on("close", () => closed++);
      s.resume(); // read what the server sends, so its closing is seen
      if (i % 2 === 0) s.write(`GET / HTTP/1.1\r\nHost: ${ui.host}\r\n`);
      sockets.push(s);
    }
    try {
      await eventually(async () => (closed >= extra ? true : undefined), 3_000);
      // The daemon's socket is not starved meanwhile.
      const c = await fx.client();
      expect((await c.call("goal.list", {})).goals).toEqual([]);
      // None of them lives past the header timeout; then the dashboard is there again.
      await eventually(
        async () => (closed === sockets.length ? true : undefined),
        HEADERS_TIMEOUT_MS + 3_000,
      );
      expect((await rpc(ui, cookie, "goal.list")).status).toBe(200);
    } finally {
      for (const s of sockets) s.destroy();
    }
  }, 20_000);
});

/** The status line's code of one request written byte for byte (headers a client library would not send). */
function statusOf(port: number, request: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    let out = "";
    s.on("data", (d) => {
      out += d;
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(out);
      if (m) {
        s.destroy();
        resolve(Number(m[1]));
      }
    });
    s.on("error", reject);
    s.write(request);
  });
}

describe("a request naming another host (DNS rebinding)", () => {
  it("is refused however the other name is written: a second Host header, an absolute-form request line, look-alikes", async () => {
    const fx = await suite.start();
    const ui = await openUi(fx);
    const cookie = await signIn(ui);
    const p = ui.port;
    const get = (line: string, hosts: string[]) =>
      statusOf(
        p,
        `GET ${line} HTTP/1.1\r\n${hosts.map((h) => `Host: ${h}\r\n`).join("")}Cookie: ${cookie}\r\n\r\n`,
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
