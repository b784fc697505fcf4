// The egress config keys, read from a real config.yaml, bounding real connections through
// the proxy: max_connections (per goal), max_connections_per_agent (two agents of one goal;
// an agent looping on its refusal is audited once a second with a count), idle_timeout_ms,
// connect_timeout_ms, hosts.

import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import {
  type EgressBench,
  openEgressBench,
  startUpstreams,
  UPSTREAM_ADDRESS,
  type Upstreams,
} from "./fixture.js";

let server: ProviderServer;
let up: Upstreams;
let bench: EgressBench;
let agent: { id: string; goalId: string };
let port = 0;
/**
 * A listener on SILENT whose accept queue a helper filled and never drains: Linux drops the
 * next SYN, so a connection there waits for the timeout (a blackholed address cannot be
 * relied on: this host's outbound traffic may be intercepted).
 */
const SILENT = "127.0.0.4";
let silent: ChildProcess;
let silentPort = 0;

beforeAll(async () => {
  silent = spawn("python3", [
    "-c",
    `import socket, sys, time
s = socket.socket(); s.bind(("${SILENT}", 0)); s.listen(0)
port = s.getsockname()[1]
fill = []
for _ in range(3):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(("${SILENT}", port))
    except BlockingIOError: pass
    fill.append(c)
time.sleep(0.3)
print(port, flush=True)
time.sleep(120)`,
  ]);
  silentPort = await new Promise<number>((resolve) =>
    silent.stdout?.once("data", (d) => resolve(Number(String(d).trim()))),
  );
  server = await startProviderServer();
  up = await startUpstreams();
  bench = await openEgressBench(server, (c) => {
    writeFileSync(
      join(c.home, "config.yaml"),
      `egress:\n  hosts:\n    granted.test: ${UPSTREAM_ADDRESS}\n    silent.test: ${SILENT}\n  max_connections: 2\n  idle_timeout_ms: 400\n  connect_timeout_ms: 300\n`,
    );
    c.egress = loadConfig({ env: { AIDO_HOME: c.home }, projectDir: c.home }).egress;
  });
  agent = bench.agent("bounded", [
    "network: granted.test:*",
    `network: ${UPSTREAM_ADDRESS}:*`,
    "network: silent.test:*",
    `network: ${SILENT}:*`,
  ]);
  port = await bench.listen({ goalId: agent.goalId, agentId: agent.id });
}, 60_000);

afterAll(async () => {
  silent?.kill();
  await bench?.close();
  await up?.close();
  await server?.close();
});

const lastDenial = () => bench.audit("egress.denied", agent.id).at(-1)?.payload;

function connectThrough(target: string): Promise<{ socket: Socket; head: string }> {
  return new Promise((resolve) => {
    const s = netConnect(port, "127.0.0.1");
    s.on("error", () => {});
    s.write(
      `CONNECT ${target} HTTP/1.1\r\nProxy-Authorization: Basic ${Buffer.from(`${agent.id}:secret-${agent.id}`).toString("base64")}\r\n\r\n`,
    );
    let buf = "";
    const onData = (c: Buffer) => {
      buf += c.toString("latin1");
      if (!buf.includes("\r\n\r\n")) return;
      s.off("data", onData);
      resolve({ socket: s, head: buf });
    };
    s.on("data", onData);
    s.on("close", () => resolve({ socket: s, head: buf }));
  });
}

async function tlsThrough(): Promise<Socket> {
  const { socket, head } = await connectThrough(`granted.test:${up.httpsPort}`);
  expect(head).toMatch(/^HTTP\/1.1 200/);
  const tls = tlsConnect({ socket, servername: "granted.test", ca: up.ca });
  await new Promise((r) => tls.once("secureConnect", r));
  return tls;
}

describe("egress bounds from config.yaml", () => {
  it("max_connections: a goal's third connection at once is refused (503), audited", async () => {
    const a = await tlsThrough();
    const b = await tlsThrough();
    const third = await connectThrough(`granted.test:${up.httpsPort}`);
    expect(third.head).toMatch(/^HTTP\/1.1 503[\s\S]*egress.max_connections allows \(2\)/);
    expect(lastDenial()).toMatchObject({ stage: "limit" });
    a.destroy();
    b.destroy();
    await new Promise((r) => setTimeout(r, 100));
  });

  it("idle_timeout_ms: a tunnel with no byte either way is closed, and its close says why", async () => {
    const tls = await tlsThrough();
    const started = Date.now();
    await new Promise((r) => tls.once("close", r));
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    for (
      let i = 0;
      i < 100 &&
      !bench
        .audit("egress.close", agent.id)
        .some((e) => /idle/.test(String((e.payload as { reason?: string }).reason)));
      i++
    )
      await new Promise((r) => setTimeout(r, 20));
    const closed = bench.audit("egress.close", agent.id).map((e) => e.payload as { reason?: string });
    expect(closed.some((c) => c.reason === "idle for 400 ms")).toBe(true);
  });

  it("connect_timeout_ms: an address that never answers is given up on (502), audited", async () => {
    const started = Date.now();
    const r = await connectThrough(`silent.test:${silentPort}`);
    expect(r.head).toMatch(/^HTTP\/1.1 502[\s\S]*no answer within 300 ms/);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(lastDenial()).toMatchObject({ host: "silent.test", stage: "upstream" });
  });
});

describe("a flood of refusals that differ is audited at a bounded rate, every refusal counted", () => {
  it("an agent's process trying 200 hosts and ports it may not reach writes 20 entries and a summary, not 200", async () => {
    const hopper = bench.agent("hopper", ["network: granted.test:*"]);
    const hopperPort = await bench.listen({ goalId: hopper.goalId, agentId: hopper.id });
    const auth = Buffer.from(`${hopper.id}:secret-${hopper.id}`).toString("base64");
    const started = Date.now();
    for (let i = 0; i < 200; i++) {
      const head = await new Promise<string>((resolve) => {
        const s = netConnect(hopperPort, "127.0.0.1");
        s.on("error", () => {});
        let buf = "";
        s.on("data", (c: Buffer) => {
          buf += c.toString("latin1");
        });
        s.on("close", () => resolve(buf));
        s.end(
          `CONNECT h${i}.example:${8000 + (i % 7)} HTTP/1.1\r\nProxy-Authorization: Basic ${auth}\r\n\r\n`,
        );
      });
      expect(head).toMatch(/^HTTP\/1.1 403/);
    }
    const seconds = Math.ceil((Date.now() - started) / 1000);
    await new Promise((r) => setTimeout(r, 1_300));
    type Denied = {
      stage: string;
      host?: string;
      repeats?: number;
      refusals?: number;
      distinct?: number;
      stages?: Record<string, number>;
      sample?: { host?: string; stage: string }[];
    };
    const entries = bench.audit("egress.denied", hopper.id).map((e) => e.payload as Denied);
    const floods = entries.filter((e) => e.stage === "flood");
    // 20 written a second, then one summary a second of the rest.
    expect(entries.length).toBeLessThanOrEqual(21 * seconds);
    expect(
      entries
        .filter((e) => e.stage === "capability")
        .slice(0, 20)
        .map((e) => e.host),
    ).toEqual(Array.from({ length: 20 }, (_, i) => `h${i}.example`));
    expect(floods.length).toBeGreaterThanOrEqual(1);
    const first = floods[0] as Denied;
    expect(first.sample?.length).toBe(5);
    expect(first.sample?.[0]).toMatchObject({ host: "h20.example", stage: "capability" });
    // Nothing dropped uncounted: entries written, plus the refusals the summaries count.
    const counted = entries.reduce((n, e) => n + (e.refusals ?? 1 + (e.repeats ?? 0)), 0);
    expect(counted).toBe(200);
    expect(floods.reduce((n, e) => n + (e.distinct ?? 0), 0)).toBe(200 - (entries.length - floods.length));
    for (const f of floods) expect(f.stages).toEqual({ capability: f.refusals });
  });
});

describe("a new kind of refusal is not hidden in a flood", () => {
  it("an agent that floods 30 hosts and then tries another agent's credentials has that refusal written, not only counted", async () => {
    // 20 junk refusals filled the caller's second; the refusal that mattered (stage auth:
    // credentials not the caller's) was one more count in the summary, its sample the junk.
    const masker = bench.agent("masker", ["network: granted.test:*"]);
    const other = bench.agent("masked-victim", ["network: granted.test:*"]);
    const maskerPort = await bench.listen({ goalId: masker.goalId, agentId: masker.id });
    const refuse = (host: string, as: string) =>
      new Promise<string>((resolve) => {
        const s = netConnect(maskerPort, "127.0.0.1");
        s.on("error", () => {});
        let buf = "";
        s.on("data", (c: Buffer) => {
          buf += c.toString("latin1");
        });
        s.on("close", () => resolve(buf));
        const auth = Buffer.from(`${as}:secret-${as}`).toString("base64");
        s.end(`CONNECT ${host}:443 HTTP/1.1\r\nProxy-Authorization: Basic ${auth}\r\n\r\n`);
      });
    for (let i = 0; i < 30; i++) expect(await refuse(`m${i}.example`, masker.id)).toMatch(/^HTTP\/1.1 403/);
    expect(await refuse("granted.test", other.id)).toMatch(/^HTTP\/1.1 407/);
    expect(await refuse("m40.example", masker.id)).toMatch(/^HTTP\/1.1 403/);
    type Denied = { stage: string; host?: string; reason: string; refusals?: number };
    const written = () => bench.audit("egress.denied", masker.id).map((e) => e.payload as Denied);
    // Written at once, before the second ends.
    expect(written().filter((e) => e.stage === "auth")).toEqual([
      expect.objectContaining({
        host: "granted.test",
        reason: "these proxy credentials are not the caller's",
      }),
    ]);
    // The rest of the flood is still counted, not written.
    expect(written().filter((e) => e.stage === "capability")).toHaveLength(20);
    await new Promise((r) => setTimeout(r, 1_300));
    const floods = written().filter((e) => e.stage === "flood");
    expect(floods.reduce((n, e) => n + (e.refusals ?? 0), 0)).toBe(11);
  });
});

describe("refusals kept repeating do not open more room than 20 entries a second", () => {
  it("an agent that refuses 20 new hosts a second and keeps every earlier one repeating still writes about 21 entries a second", async () => {
    // Each earlier host, refused again within its second, was counted into one `repeats`
    // entry a second outside the caller's 20: an entry a second per host ever tried, so the
    // rate grew by 20 each second the process kept it up.
    const keeper = bench.agent("keeper", ["network: granted.test:*"]);
    const keeperPort = await bench.listen({ goalId: keeper.goalId, agentId: keeper.id });
    const auth = Buffer.from(`${keeper.id}:secret-${keeper.id}`).toString("base64");
    const refuse = (host: string) =>
      new Promise<string>((resolve) => {
        const s = netConnect(keeperPort, "127.0.0.1");
        s.on("error", () => {});
        let buf = "";
        s.on("data", (c: Buffer) => {
          buf += c.toString("latin1");
        });
        s.on("close", () => resolve(buf));
        s.end(`CONNECT ${host}:443 HTTP/1.1\r\nProxy-Authorization: Basic ${auth}\r\n\r\n`);
      });
    const known: string[] = [];
    let sent = 0;
    const started = Date.now();
    while (Date.now() - started < 4_200) {
      if (known.length < 20 * (1 + Math.floor((Date.now() - started) / 1_050)))
        known.push(...Array.from({ length: 20 }, (_, i) => `k${known.length + i}.example`));
      // One at a time: the bench's goal takes 2 connections at once (max_connections).
      for (const host of known) {
        expect(await refuse(host)).toMatch(/^HTTP\/1.1 403/);
        sent++;
      }
      await new Promise((r) => setTimeout(r, 150));
    }
    await new Promise((r) => setTimeout(r, 1_300));
    const seconds = Math.ceil((Date.now() - started) / 1000);
    type Denied = { stage: string; repeats?: number; refusals?: number };
    const entries = bench.audit("egress.denied", keeper.id).map((e) => e.payload as Denied);
    expect(entries.length).toBeLessThanOrEqual(21 * (seconds + 1));
    // Every refusal is still on record, as an entry, a repeat count or in a summary.
    expect(entries.reduce((n, e) => n + (e.refusals ?? 1 + (e.repeats ?? 0)), 0)).toBe(sent);
  }, 20_000);
});

describe("egress.max_connections_per_agent: one agent cannot hold all of its goal's connections", () => {
  let share: EgressBench;

  beforeAll(async () => {
    share = await openEgressBench(server, (c) => {
      writeFileSync(
        join(c.home, "config.yaml"),
        `egress:\n  hosts:\n    granted.test: ${UPSTREAM_ADDRESS}\n  max_connections: 3\n  max_connections_per_agent: 2\n`,
      );
      c.egress = loadConfig({ env: { AIDO_HOME: c.home }, projectDir: c.home }).egress;
    });
  }, 60_000);

  afterAll(() => share?.close());

  /** CONNECT through `port` as `agentId`: the response head (and the TLS socket once 200). */
  async function tunnel(port: number, agentId: string): Promise<{ head: string; tls?: Socket }> {
    const s = netConnect(port, "127.0.0.1");
    s.on("error", () => {});
    const auth = Buffer.from(`${agentId}:secret-${agentId}`).toString("base64");
    s.write(`CONNECT granted.test:${up.httpsPort} HTTP/1.1\r\nProxy-Authorization: Basic ${auth}\r\n\r\n`);
    const head = await new Promise<string>((resolve) => {
      let buf = "";
      s.on("data", (c: Buffer) => {
        buf += c.toString("latin1");
        if (buf.includes("\r\n\r\n")) resolve(buf);
      });
      s.on("close", () => resolve(buf));
    });
    if (!head.startsWith("HTTP/1.1 200")) return { head };
    s.removeAllListeners("data");
    const tls = tlsConnect({ socket: s, servername: "granted.test", ca: up.ca });
    await new Promise((r) => tls.once("secureConnect", r));
    return { head, tls };
  }

  it("refuses an agent's connection past its share (503, audited) while a sibling still gets one", async () => {
    const grants = ["network: granted.test:*", `network: ${UPSTREAM_ADDRESS}:*`];
    const a = share.agent("share-a", [...grants, "tool: spawn_agent", "spawn_child: [share-b]"]);
    // B, A's child in the same goal, stays running while the test connects for both.
    server.script('manifest "share-b"', [turn.text("done", { delayMs: 1500 })]);
    const spawning = share.rt.invokeTool(a.id, "spawn_agent", {
      manifest: {
        name: "share-b",
        system_prompt: "You are share-b, under test.",
        capabilities: grants,
        budget: { max_tokens: 8000 },
      },
      message: "Wait.",
    });
    let b: string | undefined;
    for (let i = 0; i < 100 && !b; i++) {
      await new Promise((r) => setTimeout(r, 20));
      b = share.rt
        .listAgents({ goalId: a.goalId })
        .find((s) => s.manifest === "share-b" && s.state === "running")?.agent_id;
    }
    if (!b) throw new Error("share-b never ran");
    const portA = await share.listen({ goalId: a.goalId, agentId: a.id });
    const portB = await share.listen({ goalId: a.goalId, agentId: b });

    const held = [await tunnel(portA, a.id), await tunnel(portA, a.id)];
    for (const h of held) expect(h.head).toMatch(/^HTTP\/1.1 200/);
    const third = await tunnel(portA, a.id);
    expect(third.head).toMatch(/^HTTP\/1.1 503[\s\S]*egress.max_connections_per_agent: 2/);
    const denied = share.audit("egress.denied", a.id).at(-1);
    expect(denied).toMatchObject({ goal_id: a.goalId, payload: { stage: "limit" } });
    expect((denied?.payload as { reason?: string } | undefined)?.reason).toContain(
      "max_connections_per_agent",
    );

    const sibling = await tunnel(portB, b);
    expect(sibling.head).toMatch(/^HTTP\/1.1 200/);

    // The agent loops on its refused connect: every attempt is refused, and the log gets one
    // more entry a second that counts them, not an entry each.
    const limited = () =>
      share.audit("egress.denied", a.id).filter((e) => (e.payload as { stage: string }).stage === "limit");
    expect(limited()).toHaveLength(1);
    for (let i = 0; i < 10; i++) expect((await tunnel(portA, a.id)).head).toMatch(/^HTTP\/1.1 503/);
    expect(limited()).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 1_300));
    const [first, counted] = limited().map((e) => e.payload as { reason: string; repeats?: number });
    expect(counted).toEqual({ ...first, repeats: 10 });
    for (const t of [...held, sibling]) t.tls?.destroy();
    await spawning;
  });
});
