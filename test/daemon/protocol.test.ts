// The wire, attacked: malformed JSON, non-objects, batches, unknown methods, bad params,
// oversized lines, notifications and many clients at once. After each, the daemon must
// still answer.

import { execFileSync } from "node:child_process";
import { readdirSync, statSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { describe, expect, it } from "vitest";
import { AidoClient, AidoRpcError } from "../../src/client/client.js";
import { startDaemon } from "../../src/daemon/server.js";
import { turn } from "../support/provider-server.js";
import { type DaemonFixture, manifest, useDaemonPerTest } from "./fixture.js";
import { rawConnect } from "./raw.js";

const suite = useDaemonPerTest();

async function stillAnswers(f: DaemonFixture): Promise<void> {
  const c = await f.client();
  expect(await c.call("goal.list", {})).toEqual({ goals: [] });
}

describe("the daemon socket", () => {
  it("is created with mode 0600 and removed with the pid file on shutdown", async () => {
    const fx = await suite.start();
    const { socketPath, pidPath } = fx.home.config;
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);
    expect(statSync(pidPath).isFile()).toBe(true);
    await fx.daemon.close();
    expect(() => statSync(socketPath)).toThrow();
    expect(() => statSync(pidPath)).toThrow();
  });

  it("refuses to start while another daemon answers on the socket", async () => {
    const fx = await suite.start();
    await expect(startDaemon(fx.home.config, { eventLog: null, log: () => {} })).rejects.toThrow(
      /another Aido daemon is already running/,
    );
    await stillAnswers(fx);
  });

  it("removes a stale socket left by a dead daemon, but never a file that is not a socket", async () => {
    const fx = await suite.start();
    const config = fx.home.config;
    await fx.daemon.close();
    // A socket file nobody listens on: bound by a process that then exited.
    execFileSync("python3", [
      "-c",
      `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(config.socketPath)})`,
    ]);
    expect(statSync(config.socketPath).isSocket()).toBe(true);
    const d = await startDaemon(config, { eventLog: null, log: () => {} });
    const c = await AidoClient.connect(config.socketPath);
    expect(await c.call("goal.list", {})).toEqual({ goals: [] });
    c.close();
    await d.close();
    writeFileSync(config.socketPath, "not a socket");
    await expect(startDaemon(config, { eventLog: null, log: () => {} })).rejects.toThrow(/is not a socket/);
  });

  it("says how to start the daemon when nothing listens on the socket", async () => {
    await expect(AidoClient.connect("/nonexistent-aido-home/agentd.sock")).rejects.toThrow(
      "the Aido daemon is not running (no socket at /nonexistent-aido-home/agentd.sock): start it with `aido daemon start`",
    );
  });
});

describe("malformed requests", () => {
  it("answers malformed JSON with -32700 and id null, then keeps serving the connection", async () => {
    const fx = await suite.start();
    const raw = await rawConnect(fx.home.config.socketPath);
    raw.send('{"jsonrpc":"2.0","id":1,"method":\n');
    const err = await raw.next();
    expect(err).toMatchObject({ jsonrpc: "2.0", id: null, error: { code: -32700 } });
    raw.send('{"jsonrpc":"2.0","id":2,"method":"goal.list"}\n');
    expect(await raw.next()).toEqual({ jsonrpc: "2.0", id: 2, result: { goals: [] } });
    raw.close();
  });

  it("answers a request that is not an object, or lacks jsonrpc/method, with -32600", async () => {
    const fx = await suite.start();
    const raw = await rawConnect(fx.home.config.socketPath);
    for (const line of [
      "42",
      '"goal.list"',
      "null",
      '{"id":3,"method":"goal.list"}',
      '{"jsonrpc":"2.0","id":4}',
    ]) {
      raw.send(`${line}\n`);
      const r = await raw.next();
      expect(r.error, line).toMatchObject({ code: -32600 });
    }
    raw.send('{"jsonrpc":"2.0","id":5,"method":"goal.list","extra":1}\n');
    expect(await raw.next()).toMatchObject({
      id: 5,
      error: { code: -32600, message: expect.stringContaining('"extra"') },
    });
    raw.close();
    await stillAnswers(fx);
  });

  it("refuses a batch clearly with -32600", async () => {
    const fx = await suite.start();
    const raw = await rawConnect(fx.home.config.socketPath);
    raw.send(
      '[{"jsonrpc":"2.0","id":1,"method":"goal.list"},{"jsonrpc":"2.0","id":2,"method":"tool.list"}]\n',
    );
    const r = await raw.next();
    expect(r).toMatchObject({
      id: null,
      error: { code: -32600, message: expect.stringContaining("batches are not supported") },
    });
    raw.close();
    await stillAnswers(fx);
  });

  it("answers an unknown method with -32601 naming it", async () => {
    const fx = await suite.start();
    const c = await fx.client();
    const e = await c.call("goal.explode", {}).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AidoRpcError);
    expect((e as AidoRpcError).rpcCode).toBe(-32601);
    expect((e as Error).message).toContain('"goal.explode"');
    // Prototype names are not methods either.
    const p = await c.call("constructor", {}).catch((x: unknown) => x);
    expect((p as AidoRpcError).rpcCode).toBe(-32601);
  });

  it("answers bad params with -32602 naming the field: missing, wrong type, unknown key, not an object", async () => {
    const fx = await suite.start();
    const c = await fx.client();
    const fail = (m: string, p: unknown) =>
      c.call(m, p as Record<string, unknown>).then(
        () => {
          throw new Error("expected an error");
        },
        (e: AidoRpcError) => e,
      );
    const missing = await fail("goal.status", {});
    expect(missing.rpcCode).toBe(-32602);
    expect(missing.message).toContain("goal_id");
    expect(missing.details.field).toBe("goal_id");
    const wrongType = await fail("goal.wait", { goal_id: "g", timeout_ms: "soon" });
    expect(wrongType.message).toContain("timeout_ms");
    const unknownKey = await fail("goal.submit", { goal: "x", priority: 9 });
    expect(unknownKey.message).toContain('unknown key "priority"');
    expect(unknownKey.details.field).toBe("priority");
    const decision = await fail("approval.respond", { id: "apr_x", decision: "maybe" });
    expect(decision.message).toContain("decision");
    const both = await fail("agent.spawn", {});
    expect(both.message).toContain("exactly one of manifest or manifest_path");
    const raw = await rawConnect(fx.home.config.socketPath);
    raw.send('{"jsonrpc":"2.0","id":9,"method":"goal.status","params":["g_1"]}\n');
    expect(await raw.next()).toMatchObject({
      id: 9,
      error: { code: -32602, message: expect.stringContaining("params") },
    });
    raw.close();
  });

  it("refuses a connection over daemon.max_connections with an error naming the key, logs it, and closes it", async () => {
    const fx = await suite.start({ config: (c) => (c.daemon.maxConnections = 3) });
    const held = [];
    for (let i = 0; i < 3; i++) held.push(await rawConnect(fx.home.config.socketPath));
    await new Promise((r) => setTimeout(r, 100));
    expect(fx.daemon.connectionCount).toBe(3);
    // One more is told why and closed; it never counts.
    const over = await rawConnect(fx.home.config.socketPath);
    expect(await over.next()).toMatchObject({
      id: null,
      error: {
        code: -32002,
        message: expect.stringContaining("daemon.max_connections is 3"),
        data: { code: "limit_exceeded" },
      },
    });
    await over.ended;
    expect(fx.daemon.connectionCount).toBe(3);
    expect(fx.logs.some((l) => l.includes("refused a connection: 3 open, daemon.max_connections 3"))).toBe(
      true,
    );
    // The client library says so too, instead of waiting.
    const refused = await AidoClient.connect(fx.home.config.socketPath);
    const e = await refused.call("goal.list", {}).catch((x: Error) => x);
    expect(e).toBeInstanceOf(AidoRpcError);
    expect((e as Error).message).toContain("daemon.max_connections is 3");
    refused.close();
    // A thousand at once: every one refused or served, none hangs, the daemon holds no more than its cap.
    const flood = await Promise.all(
      Array.from({ length: 1000 }, () => rawConnect(fx.home.config.socketPath).catch(() => undefined)),
    );
    expect(fx.daemon.connectionCount).toBeLessThanOrEqual(3);
    for (const f of flood) f?.close();
    // Once one closes, a new connection is served.
    held.pop()?.close();
    await new Promise((r) => setTimeout(r, 100));
    await stillAnswers(fx);
    for (const h of held) h.close();
  });

  it("holds few descriptors for refused connections that never read or hang up, and logs a flood of them as a count", async () => {
    const fx = await suite.start({ config: (c) => (c.daemon.maxConnections = 2) });
    const held = [await rawConnect(fx.home.config.socketPath), await rawConnect(fx.home.config.socketPath)];
    await new Promise((r) => setTimeout(r, 100));
    const fds = () => readdirSync("/proc/self/fd").length;
    const before = fds();
    // 300 clients that connect and then neither read nor close (the daemon is in this process:
    // each open socket pair is two descriptors here, one of them the daemon's).
    const flood = [];
    for (let i = 0; i < 300; i++) {
      const s = createConnection(fx.home.config.socketPath);
      s.on("error", () => {});
      s.pause();
      flood.push(s);
    }
    await new Promise((r) => setTimeout(r, 500));
    const daemonSide = fds() - before - 300;
    expect(daemonSide).toBeLessThanOrEqual(64 + 10);
    expect(fx.daemon.connectionCount).toBe(2);
    // One line for the first refusal of the second, the rest counted into one more.
    await new Promise((r) => setTimeout(r, 1_200));
    const lines = fx.logs.filter((l) => l.includes("refused"));
    expect(lines.length).toBeLessThanOrEqual(4);
    expect(lines[0]).toContain("refused a connection: 2 open, daemon.max_connections 2");
    // Every refusal is still told: a line, or counted into one.
    const told = lines.reduce((n, l) => n + Number(/refused (\d+) more connection/.exec(l)?.[1] ?? 1), 0);
    expect(told).toBe(300);
    for (const s of flood) s.destroy();
    for (const h of held) h.close();
    await new Promise((r) => setTimeout(r, 100));
    await stillAnswers(fx);
  });

  it("drops a line over daemon.max_line_bytes with -32600 and resynchronises at the next newline", async () => {
    const fx = await suite.start({ config: (c) => (c.daemon.maxLineBytes = 4096) });
    const raw = await rawConnect(fx.home.config.socketPath);
    const huge = `{"jsonrpc":"2.0","id":1,"method":"goal.submit","params":{"goal":"${"x".repeat(100_000)}"}}`;
    // In pieces, so the cap is hit across chunks, not inside one.
    for (let i = 0; i < huge.length; i += 8192) raw.send(huge.slice(i, i + 8192));
    raw.send('\n{"jsonrpc":"2.0","id":2,"method":"goal.list"}\n');
    const err = await raw.next();
    expect(err).toMatchObject({
      id: null,
      error: { code: -32600, message: expect.stringContaining("4096") },
    });
    expect(await raw.next()).toEqual({ jsonrpc: "2.0", id: 2, result: { goals: [] } });
    expect(raw.lines).toHaveLength(2);
    raw.close();
  });

  it("sends nothing back for a notification (no id), even a failing one", async () => {
    const fx = await suite.start();
    const raw = await rawConnect(fx.home.config.socketPath);
    raw.send('{"jsonrpc":"2.0","method":"goal.list"}\n');
    raw.send('{"jsonrpc":"2.0","method":"goal.status","params":{"goal_id":"g_nope"}}\n');
    raw.send('{"jsonrpc":"2.0","method":"no.such.method"}\n');
    raw.send('{"jsonrpc":"2.0","id":"last","method":"goal.list"}\n');
    expect(await raw.next()).toEqual({ jsonrpc: "2.0", id: "last", result: { goals: [] } });
    await new Promise((r) => setTimeout(r, 200));
    expect(raw.lines).toHaveLength(1);
    raw.close();
  });

  it("answers an unexpected internal failure with -32603 and a safe message, no stack", async () => {
    const fx = await suite.start();
    const c = await fx.client();
    // A database the runtime can no longer use: an internal error, not the client's fault.
    fx.daemon.runtime.db.exec("DROP TABLE goals");
    const e = (await c.call("goal.list", {}).catch((x: unknown) => x)) as AidoRpcError;
    expect(e.rpcCode).toBe(-32603);
    expect(e.message).toBe("internal error in the Aido daemon (details are in its log)");
    expect(e.message).not.toMatch(/at .*\.ts/);
    expect(fx.logs.join("\n")).toContain("goals");
  });
});

describe("many clients", () => {
  it("serves 20 clients at once, each submitting and waiting for its own goal", async () => {
    suite.server.script(
      'manifest "solo"',
      [turn.text("done", { usage: { input_tokens: 10, output_tokens: 2 } })],
      {
        repeatLast: true,
      },
    );
    const fx = await suite.start();
    const f = fx;
    const results = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const c = await f.client();
        const { goal_id } = await c.call("goal.submit", { goal: `goal ${i}`, manifest: manifest("solo") });
        const s = await c.call("goal.wait", { goal_id, timeout_ms: 30_000 }, { timeoutMs: 40_000 });
        c.close();
        return s;
      }),
    );
    expect(results.map((r) => r.state)).toEqual(Array(20).fill("succeeded"));
    expect(new Set(results.map((r) => r.goal_id)).size).toBe(20);
    expect(results.every((r) => r.result === "done" && r.usage.input_tokens === 10)).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(fx.daemon.connectionCount).toBe(0);
  });
});
