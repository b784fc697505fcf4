// The connections one call's command may hold (egress/call-shares.ts callShare), attacked through
// the real proxy and the daemon's egress gate: a call's own credentials (callers.ts openCall)
// count against that call's share of its agent's egress.max_connections_per_agent, so a
// command opening connections up to the agent's limit (here waiting for a human under a
// confirm rule, held open) is refused beyond its share, with the call named, and another
// call of the same agent still gets through to its own question. Before, the limit was the
// agent's alone: the first call took every slot and the second call's connection was
// refused on arrival. A call's exec never holds the agent's own password, so its command
// cannot leave its share by connecting as the agent. The share is work-conserving: a call
// that is its agent's only running call may hold all of the agent's connections (an npm
// install opens up to 15); before, three quarters bit even then, and the npm install of a
// single MCP tool.invoke got 503s past 12.

import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callShare } from "../../src/egress/call-shares.js";
import { EgressCallers } from "../../src/egress/callers.js";
import type { EgressProxy } from "../../src/egress/types.js";
import { type ProviderServer, startProviderServer } from "../support/provider-server.js";
import { CallerPorts } from "./caller-ports.js";
import { type EgressBench, openEgressBench, startUpstreams, type Upstreams } from "./fixture.js";

const PER_AGENT = 4;
let server: ProviderServer;
let up: Upstreams;
let bench: EgressBench;
let proxy: EgressProxy;
const callers = new EgressCallers();
const ports = new CallerPorts(() => proxy);

beforeAll(async () => {
  server = await startProviderServer();
  up = await startUpstreams();
  bench = await openEgressBench(server, (c) => {
    c.policy.confirm = ["network: *"];
    c.egress = { ...c.egress, maxConnectionsPerAgent: PER_AGENT };
  });
  proxy = bench.rt.egress.proxy((c, u, p) => callers.authenticate(c, u, p), {
    requestOf: (c, p) => callers.requestOf(c, p),
    callsOf: (c) => callers.callsOf(c),
    endedCall: (c, p) => callers.endedCall(c, p),
  });
}, 60_000);

afterAll(async () => {
  for (const s of ports.sockets) s.destroy();
  await proxy?.close();
  await ports.close();
  await bench?.close();
  await up?.close();
  await server?.close();
});

/** A plain proxied request held open; `reply` is what the proxy answered, if anything. */
function request(port: number, user: string, password: string, path: string) {
  const s = connect(port, "127.0.0.1");
  ports.sockets.add(s);
  let reply = "";
  s.on("data", (d) => (reply += d.toString()));
  s.on("error", () => {});
  const auth = Buffer.from(`${user}:${password}`).toString("base64");
  s.write(
    `GET http://127.0.0.2:${up.httpPort}/${path} HTTP/1.1\r\nHost: 127.0.0.2:${up.httpPort}\r\nProxy-Authorization: Basic ${auth}\r\n\r\n`,
  );
  return { reply: () => reply, close: () => s.destroy() };
}

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("condition never held");
}

describe("one call's command holding connections", () => {
  it("is refused beyond its share, naming the call, and another call of the agent still gets its question", async () => {
    const a = bench.agent("share-a", ["network: 127.0.0.2:*"]);
    const caller = { goalId: a.goalId, agentId: a.id };
    const port = await ports.listen(caller);
    const greedy = callers.openCall(caller, "req_greedy");
    const other = callers.openCall(caller, "req_other");
    // The greedy call opens as many as the agent may hold; they wait for a human, held open.
    const held = Array.from({ length: PER_AGENT }, (_, i) => request(port, a.id, greedy.password, `g${i}`));
    await until(() => bench.rt.approvals.list({ status: "pending" }).some((p) => p.agent_id === a.id));
    await new Promise((r) => setTimeout(r, 300));
    // Two calls run: each may hold half.
    const share = callShare(PER_AGENT, 2);
    expect(share).toBeLessThan(PER_AGENT);
    // Its connection beyond its share is refused, naming the call, and audited.
    await until(() => held.some((h) => h.reply().includes("503")));
    const refused = held.filter((h) => h.reply().includes("503"));
    expect(refused).toHaveLength(PER_AGENT - share);
    expect(refused[0]?.reply()).toContain("call req_greedy");
    const denied = bench
      .audit("egress.denied", a.id)
      .map((e) => e.payload as { stage: string; reason: string });
    expect(denied.some((d) => d.stage === "limit" && d.reason.includes("call req_greedy"))).toBe(true);

    // Nor can the command escape its share by speaking as the agent: it never holds the
    // agent's own password (the part before the "." is the call's key), and a secret of its
    // own making behind that key is no call's.
    const [keyPart] = greedy.password.split(".");
    // One at a time: the agent holds one stream below its limit.
    const asAgent = request(port, a.id, String(keyPart), "as-agent");
    await until(() => asAgent.reply().includes("407"));
    await new Promise((r) => setTimeout(r, 300));
    const madeUp = request(port, a.id, `${keyPart}.${"A".repeat(32)}`, "made-up");
    await until(() => madeUp.reply().includes("407"));
    await new Promise((r) => setTimeout(r, 300));

    // The other call's connection is not starved: it reaches its own question.
    const mine = request(port, a.id, other.password, "other");
    await until(() =>
      bench.rt.approvals
        .list({ status: "pending" })
        .some((p) => p.agent_id === a.id && p.request_id === "req_other"),
    );
    expect(mine.reply()).toBe("");
    // The clients leave: every question still open or in line ends with them.
    for (const s of ports.sockets) s.destroy();
    await until(() => !bench.rt.approvals.list({ status: "pending" }).some((p) => p.agent_id === a.id));
    await new Promise((r) => setTimeout(r, 200));
    greedy.end();
    other.end();
  }, 60_000);

  it("may hold all of the agent's connections while it is the agent's only running call", async () => {
    const a = bench.agent("share-alone", ["network: 127.0.0.2:*"]);
    const caller = { goalId: a.goalId, agentId: a.id };
    const port = await ports.listen(caller);
    const alone = callers.openCall(caller, "req_alone");
    expect(callers.callsOf(caller)).toBe(1);
    const held = Array.from({ length: PER_AGENT }, (_, i) => request(port, a.id, alone.password, `a${i}`));
    await until(() =>
      bench.rt.approvals
        .list({ status: "pending" })
        .some((p) => p.agent_id === a.id && p.request_id === "req_alone"),
    );
    await new Promise((r) => setTimeout(r, 300));
    // Every one is admitted: the first asks, the others wait their turn, none is refused.
    expect(held.map((h) => h.reply())).toEqual(Array(PER_AGENT).fill(""));
    const denied = bench
      .audit("egress.denied", a.id)
      .map((e) => e.payload as { stage: string; reason: string });
    expect(denied.filter((d) => d.stage === "limit")).toEqual([]);
    // A second call starting now gets no connection taken back from the first; the first
    // gets no new one while it holds more than its half (the agent's limit is full anyway).
    const late = callers.openCall(caller, "req_late");
    expect(callers.callsOf(caller)).toBe(2);
    for (const s of ports.sockets) s.destroy();
    await until(() => !bench.rt.approvals.list({ status: "pending" }).some((p) => p.agent_id === a.id));
    await new Promise((r) => setTimeout(r, 200));
    alone.end();
    late.end();
    expect(callers.callsOf(caller)).toBe(0);
  }, 60_000);

  it("leaves a third running call its share when two others open connections without end", async () => {
    // Three quarters a call (as before) let two greedy calls hold 3 + 1 of 4 and the third
    // was refused on arrival; a fair share (4 / 3: one each) leaves the third its own.
    const a = bench.agent("share-three", ["network: 127.0.0.2:*"]);
    const caller = { goalId: a.goalId, agentId: a.id };
    const port = await ports.listen(caller);
    const g1 = callers.openCall(caller, "req_g1");
    const g2 = callers.openCall(caller, "req_g2");
    const third = callers.openCall(caller, "req_third");
    expect(callShare(PER_AGENT, 3)).toBe(1);
    const first = Array.from({ length: PER_AGENT }, (_, i) => request(port, a.id, g1.password, `one${i}`));
    await until(() => first.filter((h) => h.reply().includes("503")).length === PER_AGENT - 1);
    const second = Array.from({ length: PER_AGENT }, (_, i) => request(port, a.id, g2.password, `two${i}`));
    await until(() => second.filter((h) => h.reply().includes("503")).length === PER_AGENT - 1);
    // The refused ones leave (a client gives up on a 503); the held ones stay open.
    for (const h of [...first, ...second]) if (h.reply().includes("503")) h.close();
    await new Promise((r) => setTimeout(r, 300));
    const mine = request(port, a.id, third.password, "third");
    await until(() =>
      bench.rt.approvals
        .list({ status: "pending" })
        .some((p) => p.agent_id === a.id && p.request_id === "req_third"),
    );
    expect(mine.reply()).toBe("");
    for (const s of ports.sockets) s.destroy();
    await until(() => !bench.rt.approvals.list({ status: "pending" }).some((p) => p.agent_id === a.id));
    await new Promise((r) => setTimeout(r, 200));
    for (const c of [g1, g2, third]) c.end();
  }, 60_000);

  it("counts the connections of ended calls' credentials together, within a share: a running call is not starved", async () => {
    // A call's credentials keep authenticating after it ended (a process it left behind),
    // as the agent, naming no call. A command can keep them in a file of the workspace and
    // use them in a later call: before, such connections were counted against no call, so
    // they took every connection of the agent and the running call's was refused on arrival.
    const a = bench.agent("share-ended", ["network: 127.0.0.2:*"]);
    const caller = { goalId: a.goalId, agentId: a.id };
    const port = await ports.listen(caller);
    const old1 = callers.openCall(caller, "req_old1");
    const old2 = callers.openCall(caller, "req_old2");
    old1.end();
    old2.end();
    const running = callers.openCall(caller, "req_running");
    expect(callers.endedCall(caller, old1.password)).toBe(true);
    expect(callers.endedCall(caller, running.password)).toBe(false);
    const { slot } = running;
    expect(callers.endedCall(caller, `${slot.password}.${old1.secret}`)).toBe(false);
    // Two ended calls' credentials, as many connections each as the agent may hold.
    const left = [old1, old2].flatMap((c, n) =>
      Array.from({ length: PER_AGENT }, (_, i) => request(port, a.id, c.password, `left${n}-${i}`)),
    );
    const share = callShare(PER_AGENT, 2);
    await until(() => left.filter((h) => h.reply().includes("503")).length === left.length - share);
    expect(left.find((h) => h.reply().includes("503"))?.reply()).toMatch(/ended calls|connections open/);
    const denied = bench
      .audit("egress.denied", a.id)
      .map((e) => e.payload as { stage: string; reason: string });
    expect(denied.some((d) => d.stage === "limit" && d.reason.includes("ended calls"))).toBe(true);
    for (const h of left) if (h.reply().includes("503")) h.close();
    await new Promise((r) => setTimeout(r, 300));
    const mine = request(port, a.id, running.password, "running");
    await until(() =>
      bench.rt.approvals
        .list({ status: "pending" })
        .some((p) => p.agent_id === a.id && p.request_id === "req_running"),
    );
    expect(mine.reply()).toBe("");
    for (const s of ports.sockets) s.destroy();
    await until(() => !bench.rt.approvals.list({ status: "pending" }).some((p) => p.agent_id === a.id));
    await new Promise((r) => setTimeout(r, 200));
    running.end();
  }, 60_000);
});

describe("the agent's own credentials while calls run", () => {
  it("count as one more share: a later command reading the agent's password from a file does not starve a running call", async () => {
    // A model-driven exec of the agent writes `env > f` (its proxy password); a later call's
    // command reads f and connects as the agent, naming no call. Before, such connections
    // were counted against no call and took every connection the agent may hold.
    const a = bench.agent("share-own", ["network: 127.0.0.2:*"]);
    const caller = { goalId: a.goalId, agentId: a.id };
    const port = await ports.listen(caller);
    const running = callers.openCall(caller, "req_running_own");
    const { slot } = running;
    const own = Array.from({ length: PER_AGENT }, (_, i) =>
      request(port, slot.user, slot.password, `own-${i}`),
    );
    const share = callShare(PER_AGENT, 2);
    await until(() => own.filter((h) => h.reply().includes("503")).length === own.length - share);
    expect(own.find((h) => h.reply().includes("503"))?.reply()).toMatch(/own turns/);
    const denied = bench
      .audit("egress.denied", a.id)
      .map((e) => e.payload as { stage: string; reason: string });
    expect(denied.some((d) => d.stage === "limit" && d.reason.includes("own credentials"))).toBe(true);
    for (const h of own) if (h.reply().includes("503")) h.close();
    await new Promise((r) => setTimeout(r, 300));
    const mine = request(port, a.id, running.password, "running-own");
    await until(() =>
      bench.rt.approvals
        .list({ status: "pending" })
        .some((p) => p.agent_id === a.id && p.request_id === "req_running_own"),
    );
    expect(mine.reply()).toBe("");
    for (const s of ports.sockets) s.destroy();
    await until(() => !bench.rt.approvals.list({ status: "pending" }).some((p) => p.agent_id === a.id));
    await new Promise((r) => setTimeout(r, 200));
    running.end();
  }, 60_000);
});
