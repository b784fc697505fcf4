// A call's own proxy credentials (egress/callers.ts openCall), attacked through the real
// proxy and the daemon's egress gate: a connection made with them asks its human on behalf
// of that call (the approval request names its request id) while the call runs; once the
// call ended they speak as the agent and name no call; a secret the holder guessed, or one
// call's secret on another agent's password, names nothing or is refused; two calls of one
// agent ask side by side, each its own question; no secret reaches the audit.

import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { useCallerBench } from "./caller-ports.js";
import { run } from "./fixture.js";

const t = useCallerBench();
const { callers } = t;

const url = (port: number, user: string, password: string) =>
  `http://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}`;

const fetchVia = (proxyUrl: string, path: string) =>
  run("curl", ["-sS", "--max-time", "15", `http://127.0.0.2:${t.up.httpPort}/${path}`], {
    http_proxy: proxyUrl,
  });

/** The pending egress question of `agentId` about `path`'s connection, with the request id its audit entry names. */
async function question(agentId: string, n: number): Promise<{ id: string; requestId: unknown }[]> {
  for (let i = 0; i < 300; i++) {
    const pending = t.bench.rt.approvals.list({ status: "pending" }).filter((p) => p.agent_id === agentId);
    if (pending.length >= n) {
      const asked = t.bench.audit("approval.requested", agentId);
      return pending.map((p) => {
        const entry = asked.find((e) => (e.payload as { approval_id?: string }).approval_id === p.id);
        return { id: p.id, requestId: (entry?.payload as { request_id?: unknown } | undefined)?.request_id };
      });
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${n} questions of ${agentId} never came`);
}

describe("a call's own proxy credentials", () => {
  it("name the call while it runs, name nothing once it ended or when guessed, and never reach the audit", async () => {
    const { caller, port, ...a } = await t.agentWithPort("caller-a");
    const own = callers.slotOf(caller);
    const one = callers.openCall(caller, "req_one");
    const two = callers.openCall(caller, "req_two");

    // Two calls side by side: each asks its own question at once, named by its id.
    const first = fetchVia(url(port, a.id, one.password), "one");
    const second = fetchVia(url(port, a.id, two.password), "two");
    const both = await question(a.id, 2);
    expect(both.map((q) => q.requestId).sort()).toEqual(["req_one", "req_two"]);
    for (const q of both) t.bench.rt.approvals.respond(q.id, "allow_once", "test human");
    expect((await first).stdout).toContain('"path":"/one"');
    expect((await second).stdout).toContain('"path":"/two"');

    // The call ended: its credentials still speak as the agent (what it left running), naming no call.
    one.end();
    const late = fetchVia(url(port, a.id, one.password), "late");
    const [lateQ] = await question(a.id, 1);
    expect(lateQ?.requestId).toBeUndefined();
    t.bench.rt.approvals.respond(String(lateQ?.id), "deny", "test human");
    expect((await late).stdout).toMatch(/a human denied the connection/);

    // A secret the holder of the agent's password made up names no call.
    const guessed = fetchVia(url(port, a.id, `${own.password}.${"A".repeat(32)}`), "guessed");
    const [guessedQ] = await question(a.id, 1);
    expect(guessedQ?.requestId).toBeUndefined();
    t.bench.rt.approvals.respond(String(guessedQ?.id), "deny", "test human");
    await guessed;

    // A running call's secret on another agent's password: that agent's own, naming no call.
    const { caller: bCaller, port: bPort, ...b } = await t.agentWithPort("caller-b");
    const bOwn = callers.slotOf(bCaller);
    const secretOfTwo = two.password.slice(two.password.indexOf(".") + 1);
    const stolen = fetchVia(url(bPort, b.id, `${bOwn.password}.${secretOfTwo}`), "stolen");
    const [stolenQ] = await question(b.id, 1);
    expect(stolenQ?.requestId).toBeUndefined();
    t.bench.rt.approvals.respond(String(stolenQ?.id), "deny", "test human");
    await stolen;
    // ... and on the call's own agent port with a wrong agent part: 407.
    const forged = await run(
      "curl",
      ["-sS", "-o", "/dev/null", "-w", "%{http_code}", `http://127.0.0.2:${t.up.httpPort}/forged`],
      { http_proxy: url(port, a.id, `${bOwn.password}.${secretOfTwo}`) },
    );
    expect(forged.stdout).toBe("407");
    two.end();

    const written = JSON.stringify([
      ...t.bench.audit("approval.requested"),
      ...t.bench.audit("egress.open"),
      ...t.bench.audit("egress.denied"),
    ]);
    for (const secret of [own.password, one.password.split(".")[1], secretOfTwo, bOwn.password])
      expect(written).not.toContain(String(secret));
  }, 60_000);

  it("a connection that waited its turn past its call's end asks as the agent, naming no call", async () => {
    const { caller, port, ...a } = await t.agentWithPort("caller-late");
    const call = callers.openCall(caller, "req_ended");
    // Two connections of the call: the first asks, the second waits behind it in the call's line.
    const first = fetchVia(url(port, a.id, call.password), "first");
    const [firstQ] = await question(a.id, 1);
    expect(firstQ?.requestId).toBe("req_ended");
    const second = fetchVia(url(port, a.id, call.password), "second");
    await new Promise((r) => setTimeout(r, 300));
    // The call ends while the second waits (a process that outlived it); then the first is answered.
    call.end();
    t.bench.rt.approvals.respond(String(firstQ?.id), "allow_once", "test human");
    expect((await first).stdout).toContain('"path":"/first"');
    const [secondQ] = await question(a.id, 1);
    expect(secondQ?.requestId).toBeUndefined();
    expect(t.bench.rt.approvals.get(String(secondQ?.id)).request_id).toBeNull();
    t.bench.rt.approvals.respond(String(secondQ?.id), "deny", "test human");
    expect((await second).stdout).toMatch(/a human denied the connection/);
  }, 60_000);

  it("a suffix that is not a live call's secret names no call, whatever its shape (guard)", async () => {
    const a = t.bench.agent("caller-shapes", ["network: 127.0.0.2:*"]);
    const caller = { goalId: a.goalId, agentId: a.id };
    const own = callers.slotOf(caller);
    const call = callers.openCall(caller, "req_live");
    const secret = call.password.slice(call.password.indexOf(".") + 1);
    const digestHex = createHash("sha256").update(secret).digest("hex");
    const shapes = [
      `${own.password}.`,
      `${own.password}.${secret}.`,
      `${own.password}.${secret}.${secret}`,
      `${own.password}..${secret}`,
      `${own.password}.${digestHex}`,
      `${own.password}.${".".repeat(4000)}`,
      `${own.password}.${"x".repeat(12_000)}`,
    ];
    for (const p of shapes) {
      expect(callers.authenticate(caller, a.id, p)).toBe(true);
      expect(callers.requestOf(caller, p)).toBeUndefined();
    }
    // The call's secret behind a password that is not the agent's, or the agent's part alone
    // changed by a character: refused.
    expect(callers.authenticate(caller, a.id, `${own.password.slice(1)}.${secret}`)).toBe(false);
    expect(callers.authenticate(caller, a.id, `.${secret}`)).toBe(false);
    expect(callers.authenticate(caller, a.id, secret)).toBe(false);
    expect(callers.requestOf(caller, call.password)).toBe("req_live");
    call.end();
  });
});
