// Attack on the human behind `policy.confirm: ["network: *"]`: a command that opens many
// connections at once (the same host, or a new host each) must not put as many questions
// to the human at once. One egress question per agent is open at a time; the rest wait
// their turn and take a standing answer (Allow Session) unasked, audited as reused.
// An agent stopped (its goal cancelled) while its connection waits for a human: the question
// ends with the stop, and the connection is refused then, not at a timeout.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { answerNext } from "../redteam/fixture.js";
import { type ProviderServer, startProviderServer } from "../support/provider-server.js";
import {
  type EgressBench,
  openEgressBench,
  run,
  startUpstreams,
  UPSTREAM_ADDRESS,
  type Upstreams,
} from "./fixture.js";

let server: ProviderServer;
let up: Upstreams;
let bench: EgressBench;

beforeAll(async () => {
  server = await startProviderServer();
  up = await startUpstreams();
  bench = await openEgressBench(server, (c) => {
    c.egress.hosts = { "granted.test": UPSTREAM_ADDRESS };
    c.policy.confirm = ["network: *"];
  });
}, 60_000);

afterAll(async () => {
  await bench?.close();
  await up?.close();
  await server?.close();
});

const pending = () => bench.rt.approvals.list({ status: "pending" });

/** Wait `ms` and check that no more than one question was ever pending meanwhile. */
async function atMostOnePending(ms: number): Promise<void> {
  for (let waited = 0; waited < ms; waited += 25) {
    expect(pending().length).toBeLessThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("a burst of connections that each need a human", () => {
  it("to one host: one question at a time; Allow Session answers the rest, each reuse audited", async () => {
    // The address granted.test resolves to is inward, granted literally, and the confirm
    // rule asks about it too: two questions in all (host, then address), never two at once.
    const a = bench.agent("burst-one", [`network: ${UPSTREAM_ADDRESS}:*`]);
    const port = await bench.listen({ goalId: a.goalId, agentId: a.id });
    const curls = Array.from({ length: 4 }, () =>
      run("curl", ["-sS", "--max-time", "15", `http://granted.test:${up.httpPort}/`], {
        http_proxy: bench.proxyUrl(port, a.id),
      }),
    );
    for (const about of ["granted.test", UPSTREAM_ADDRESS]) {
      await atMostOnePending(500);
      const asked = await answerNext(bench.rt, "allow_session");
      expect(asked?.summary).toContain(`egress to ${about} port`);
    }
    for (const r of await Promise.all(curls)) expect(r.stdout).toContain('"path":"/"');
    expect(bench.rt.approvals.list({ status: "all" }).filter((p) => p.agent_id === a.id)).toHaveLength(2);
    expect(bench.audit("approval.reused", a.id)).toHaveLength(6);
  });

  it("to a new host each: the questions come one at a time", async () => {
    const a = bench.agent("burst-many", []);
    const port = await bench.listen({ goalId: a.goalId, agentId: a.id });
    const curls = ["h1", "h2", "h3"].map((h) =>
      run("curl", ["-sS", "--max-time", "15", `http://${h}.example/`], {
        http_proxy: bench.proxyUrl(port, a.id),
      }),
    );
    for (let n = 0; n < 3; n++) {
      await atMostOnePending(300);
      expect(await answerNext(bench.rt, "deny")).toMatchObject({ tool: "egress", agent_id: a.id });
    }
    for (const r of await Promise.all(curls)) expect(r.stdout).toMatch(/a human denied the connection/);
    expect(bench.audit("egress.denied", a.id).map((e) => (e.payload as { stage: string }).stage)).toEqual([
      "approval",
      "approval",
      "approval",
    ]);
  });

  it("a connection a standing answer covers does not wait behind another host's open question", async () => {
    const a = bench.agent("burst-mixed", [`network: ${UPSTREAM_ADDRESS}:*`]);
    const port = await bench.listen({ goalId: a.goalId, agentId: a.id });
    const get = (url: string) =>
      run("curl", ["-sS", "--max-time", "15", url], { http_proxy: bench.proxyUrl(port, a.id) });
    const first = get(`http://granted.test:${up.httpPort}/`);
    for (let n = 0; n < 2; n++) await answerNext(bench.rt, "allow_session"); // host, then address
    expect((await first).stdout).toContain('"path":"/"');
    const open = get("http://unanswered.example/");
    for (let waited = 0; pending().length === 0 && waited < 5000; waited += 25)
      await new Promise((r) => setTimeout(r, 25));
    expect(pending()).toHaveLength(1);
    // Covered by the standing answers: served while the other question is still open.
    expect((await get(`http://granted.test:${up.httpPort}/again`)).stdout).toContain('"path":"/again"');
    expect(pending()).toHaveLength(1);
    await answerNext(bench.rt, "deny");
    expect((await open).stdout).toMatch(/a human denied the connection/);
  });

  it("an agent stopped while its connection waits for a human: the question ends expired, the connection refused at once, the next asks nobody", async () => {
    const a = bench.agent("stopped-asking", []);
    const port = await bench.listen({ goalId: a.goalId, agentId: a.id });
    const get = () =>
      run("curl", ["-sS", "--max-time", "15", "http://asked.example/"], {
        http_proxy: bench.proxyUrl(port, a.id),
      });
    const open = get();
    for (let waited = 0; pending().length === 0 && waited < 5000; waited += 25)
      await new Promise((r) => setTimeout(r, 25));
    expect(pending()).toMatchObject([{ tool: "egress", agent_id: a.id }]);
    const t0 = performance.now();
    bench.rt.stopAgent(a.id, "cancelled by its goal");
    const r = await open;
    // Refused when the question closed, not at curl's 15 s or the approval's own timeout.
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(r.stdout).toMatch(/stopped: cancelled by its goal/);
    expect(pending()).toEqual([]);
    const [asked] = bench.rt.approvals.list({ status: "all" }).filter((p) => p.agent_id === a.id);
    expect(asked).toMatchObject({
      status: "expired",
      close_reason: expect.stringMatching(/stopped: cancelled by its goal/),
    });
    expect(bench.audit("approval.expired", a.id)).toHaveLength(1);
    expect(bench.audit("egress.denied", a.id).map((e) => (e.payload as { stage: string }).stage)).toEqual([
      "approval",
    ]);
    // Its token is revoked: a later connection with its credentials asks nobody.
    const after = await get();
    expect(after.stdout).toMatch(/has stopped/);
    expect(bench.audit("egress.denied", a.id).map((e) => (e.payload as { stage: string }).stage)).toEqual([
      "approval",
      "capability",
    ]);
    expect(bench.rt.approvals.list({ status: "all" }).filter((p) => p.agent_id === a.id)).toHaveLength(1);
  });
});
