// The daemon's egress decisions through the real kernel (EgressGate over the runtime's
// registry, tokens, policy engine and approvals queue), with real clients through the proxy:
// grants per agent, a deny rule, `policy.confirm: ["network: *"]` answered by a human
// (Allow Session reused and audited, Deny), a stopped agent, and the watch line per connection.

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { initialWatchState } from "../../src/cli/watch/seed.js";
import { reduceWatch } from "../../src/cli/watch/state.js";
import { fromWireEvent } from "../../src/cli/watch/wire.js";
import { toWireEvent } from "../../src/daemon/events.js";
import type { RuntimeEvent } from "../../src/kernel/events.js";
import { parseManifestValue } from "../../src/manifest/load.js";
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
let bench: EgressBench | undefined;

beforeAll(async () => {
  server = await startProviderServer();
  up = await startUpstreams();
});
afterEach(async () => {
  await bench?.close();
  bench = undefined;
});
afterAll(async () => {
  await up?.close();
  await server?.close();
});

const open = async (rules: { deny?: string[]; confirm?: string[] } = {}) => {
  bench = await openEgressBench(server, (c) => {
    c.egress.hosts = { "granted.test": UPSTREAM_ADDRESS, "other.test": UPSTREAM_ADDRESS };
    c.policy.deny = rules.deny ?? [];
    c.policy.confirm = rules.confirm ?? [];
  });
  return bench;
};

const curl = (b: EgressBench, port: number, agentId: string, host = "granted.test") =>
  run("curl", ["-sS", "--max-time", "15", "--cacert", up.caFile, `https://${host}:${up.httpsPort}/`], {
    HTTPS_PROXY: b.proxyUrl(port, agentId),
  });

const lastDenial = (b: EgressBench, agentId: string) =>
  b.audit("egress.denied", agentId).at(-1)?.payload as Record<string, unknown> | undefined;

describe("grants", () => {
  it("one agent's grant does not serve another agent of the same goal", async () => {
    const b = await open();
    const parent = b.agent("parent", [
      `network: granted.test:*`,
      `network: ${UPSTREAM_ADDRESS}:*`,
      "spawn_child: [*]",
      "tool: file_read",
    ]);
    const child = b.rt.spawner.spawn({
      goalId: parent.goalId,
      manifest: (await import("../../src/manifest/load.js")).parseManifestValue(
        { name: "child", system_prompt: "x", capabilities: ["tool: file_read"] },
        "test",
      ),
      parent: b.rt.registry.require(parent.id),
    });
    const parentPort = await b.listen({ goalId: parent.goalId, agentId: parent.id });
    const childPort = await b.listen({ goalId: parent.goalId, agentId: child.id });
    expect((await curl(b, parentPort, parent.id)).stderr).toBe("");
    expect((await curl(b, childPort, child.id)).stderr).toMatch(/403/);
    expect(lastDenial(b, child.id)).toMatchObject({ host: "granted.test", stage: "capability" });
  });

  it("a stopped agent reaches nothing", async () => {
    const b = await open();
    const a = b.agent("quitter", [`network: granted.test:*`, `network: ${UPSTREAM_ADDRESS}:*`]);
    const port = await b.listen({ goalId: a.goalId, agentId: a.id });
    b.rt.stopAgent(a.id, "done");
    expect((await curl(b, port, a.id)).stderr).toMatch(/403/);
    expect(String(lastDenial(b, a.id)?.reason)).toMatch(/has stopped/);
  });

  it("a world's child that stopped is refused as stopped, also once its goal's records left memory", async () => {
    const b = await open();
    const net = [`network: granted.test:*`, `network: ${UPSTREAM_ADDRESS}:*`];
    const spawner = b.agent("spawner", [...net, "spawn_child: [explorer]"]);
    const world = "w_00112233445566aa";
    const child = b.rt.spawner.spawn({
      goalId: spawner.goalId,
      manifest: parseManifestValue({ name: "explorer", system_prompt: "x", capabilities: net }, "test"),
      parent: b.rt.registry.require(spawner.id),
      sandboxGoal: world,
    });
    const port = await b.listen({ goalId: world, agentId: child.id });
    // From another world's network: not its own.
    const elsewhere = await b.listen({ goalId: "w_99887766554433bb", agentId: child.id });
    expect((await curl(b, port, child.id)).stderr).toBe("");
    b.rt.stopAgent(child.id, "its world ended");
    expect((await curl(b, port, child.id)).stderr).toMatch(/403/);
    expect(String(lastDenial(b, child.id)?.reason)).toBe(`agent ${child.id} has stopped`);
    // The spawner stops: the goal's records leave memory, and the child is answered from its row.
    b.rt.stopAgent(spawner.id, "done");
    expect(b.rt.registry.get(child.id)).toBeUndefined();
    expect((await curl(b, port, child.id)).stderr).toMatch(/403/);
    // On main: "<child> is not an agent of w_…" (the row did not know the world it acted in).
    expect(String(lastDenial(b, child.id)?.reason)).toBe(`agent ${child.id} has stopped`);
    expect((await curl(b, elsewhere, child.id)).stderr).toMatch(/403/);
    expect(String(lastDenial(b, child.id)?.reason)).toBe(`${child.id} is not an agent of w_99887766554433bb`);
  });
});

describe("the operator's policy", () => {
  it("a deny rule refuses a granted host", async () => {
    const b = await open({ deny: ["network: granted.test"] });
    const a = b.agent("denied", [`network: granted.test:*`, `network: ${UPSTREAM_ADDRESS}:*`]);
    const port = await b.listen({ goalId: a.goalId, agentId: a.id });
    expect((await curl(b, port, a.id)).stderr).toMatch(/403/);
    expect(lastDenial(b, a.id)).toMatchObject({ stage: "policy" });
    expect(String(lastDenial(b, a.id)?.reason)).toMatch(/policy rule "network: granted.test"/);
  });

  it('confirm "network: *": a miss asks a human; Allow Session is reused (audited), Deny refuses', async () => {
    const b = await open({ confirm: ["network: *"] });
    // No grant for granted.test: the question is the operator's confirm rule. The address it
    // resolves to is inward and granted literally, and the rule asks about it too.
    const a = b.agent("asker", [`network: ${UPSTREAM_ADDRESS}:*`]);
    const port = await b.listen({ goalId: a.goalId, agentId: a.id });
    const first = curl(b, port, a.id);
    const asked = await answerNext(b.rt, "allow_session");
    expect(asked).toMatchObject({ tool: "egress", agent_id: a.id });
    expect(asked?.summary).toMatch(/egress to granted.test port \d+/);
    const address = await answerNext(b.rt, "allow_session");
    expect(address?.summary).toMatch(new RegExp(`egress to ${UPSTREAM_ADDRESS.replaceAll(".", "\\.")}`));
    expect((await first).stderr).toBe("");
    // Again: covered by both standing answers, nobody asked, each reuse audited.
    const again = await curl(b, port, a.id);
    expect(again.stderr).toBe("");
    expect(b.rt.approvals.list({ status: "pending" })).toEqual([]);
    const reused = b.audit("approval.reused", a.id).map((e) => e.payload as { tool: string; via: string });
    expect(reused).toEqual([
      expect.objectContaining({ tool: "egress", via: "allow_session" }),
      expect.objectContaining({ tool: "egress", via: "allow_session" }),
    ]);
    // Another host: the human says no.
    const third = curl(b, port, a.id, "other.test");
    expect(await answerNext(b.rt, "deny")).toMatchObject({ tool: "egress" });
    expect((await third).stderr).toMatch(/403/);
    expect(lastDenial(b, a.id)).toMatchObject({ host: "other.test", stage: "approval" });
    expect(String(lastDenial(b, a.id)?.reason)).toMatch(/a human denied the connection/);
  });

  it("Allow Always covers later connections of the identity in its project (reuse audited with its grant), not another goal's", async () => {
    const b = await open({ confirm: ["network: *"] });
    const first = b.agent("keeper", [`network: ${UPSTREAM_ADDRESS}:*`]);
    const firstPort = await b.listen({ goalId: first.goalId, agentId: first.id });
    const asking = curl(b, firstPort, first.id);
    expect(await answerNext(b.rt, "allow_always")).toMatchObject({ tool: "egress" });
    expect(await answerNext(b.rt, "allow_always")).toMatchObject({ tool: "egress" });
    expect((await asking).stderr).toBe("");
    const laterPort = await b.listen({ goalId: first.goalId, agentId: first.id });
    expect((await curl(b, laterPort, first.id)).stderr).toBe("");
    expect(b.rt.approvals.list({ status: "pending" })).toEqual([]);
    const reused = b
      .audit("approval.reused", first.id)
      .map((e) => e.payload as { via: string; grant_id?: string });
    expect(reused).toHaveLength(2);
    for (const r of reused)
      expect(r).toMatchObject({ via: "allow_always", grant_id: expect.stringMatching(/^grt_/) });
    // An agent of the same identity in another goal (a pseudo-goal of its own, no project
    // folder): what it would send is another goal's, so a human is asked again.
    const elsewhere = b.agent("keeper", [`network: ${UPSTREAM_ADDRESS}:*`]);
    const elsewherePort = await b.listen({ goalId: elsewhere.goalId, agentId: elsewhere.id });
    const refused = curl(b, elsewherePort, elsewhere.id);
    expect(await answerNext(b.rt, "deny")).toMatchObject({ tool: "egress", agent_id: elsewhere.id });
    expect((await refused).stderr).not.toBe("");
  });

  it("an address no grant names is never put to a human", async () => {
    const b = await open({ confirm: ["network: *"] });
    const a = b.agent("no-address", ["network: granted.test:*"]);
    const port = await b.listen({ goalId: a.goalId, agentId: a.id });
    const r = curl(b, port, a.id);
    // The name is asked about; the loopback address it resolves to is refused outright.
    await answerNext(b.rt, "allow_once");
    expect((await r).stderr).toMatch(/403/);
    expect(b.rt.approvals.list({ status: "pending" })).toEqual([]);
    expect(lastDenial(b, a.id)).toMatchObject({ stage: "address" });
  });
});

describe("aido watch", () => {
  it("shows one line per connection: its bytes when it ends, the reason when refused", async () => {
    const b = await open();
    const a = b.agent("watched", [`network: granted.test:*`, `network: ${UPSTREAM_ADDRESS}:*`]);
    const events: RuntimeEvent[] = [];
    const unsubscribe = b.rt.events.subscribe({ goalId: a.goalId }, (e) => events.push(e));
    const port = await b.listen({ goalId: a.goalId, agentId: a.id });
    await curl(b, port, a.id);
    await curl(b, port, a.id, "other.test");
    for (let i = 0; i < 100 && !events.some((e) => e.type === "egress.close"); i++)
      await new Promise((r) => setTimeout(r, 20));
    unsubscribe();
    let state = initialWatchState({ goalId: a.goalId, agents: b.rt.listAgents({ goalId: a.goalId }) });
    for (const e of events) state = reduceWatch(state, fromWireEvent(toWireEvent(e)) as RuntimeEvent);
    const lines = state.activity.filter((l) => l.kind === "egress" || l.kind === "denied").map((l) => l.text);
    expect(lines).toEqual([
      expect.stringMatching(
        new RegExp(`watched ⇄ granted.test:${up.httpsPort} \\d+ B up, [\\d.]+ kB down, \\d+ ms`),
      ),
      expect.stringMatching(/watched ✗ egress other.test:\d+ DENIED \(capability: no capability grants/),
    ]);
  });
});

describe("a stdio MCP server's caller (mcp:<server> on its own network)", () => {
  const stdio = (name: string, network: string[]) => ({
    name,
    transport: "stdio" as const,
    command: ["node", "/x.js"],
    env: {},
    workspace: "none" as const,
    mounts: [],
    network: network.map((host) => ({ kind: "network" as const, host, port: "*" as const })),
    readOnlyTools: [],
    timeoutMs: 1000,
  });
  const openServers = () =>
    openEgressBench(server, (c) => {
      c.mcp.servers = {
        web: stdio("web", ["granted.test", "denied.test", "confirm.test", "10.1.2.3"]),
        quiet: stdio("quiet", []),
        remote: {
          name: "remote",
          transport: "http",
          url: "https://r.test/mcp",
          headers: {},
          readOnlyTools: [],
          timeoutMs: 1000,
        },
      };
      c.policy.deny = ["network: denied.test"];
      c.policy.confirm = ["network: confirm.test"];
    });
  const target = (host: string, port = 443, literal = false) => ({ host, port, literal });
  const decide = (b: EgressBench, goalId: string, agentId: string, t: ReturnType<typeof target>) =>
    b.rt.egress.decide({ goalId, agentId }, t, new AbortController().signal);

  it("is judged by the operator's entries for that server alone, from its own network only", async () => {
    const b = await openServers();
    bench = b;
    const own = "mcpnet.web.g_1";
    expect(await decide(b, own, "mcp:web", target("granted.test"))).toEqual({ allow: true });
    expect(await decide(b, own, "mcp:web", target("10.1.2.3", 5432, true))).toEqual({ allow: true });
    const refused = async (goalId: string, agentId: string, t: ReturnType<typeof target>) => {
      const v = await decide(b, goalId, agentId, t);
      return v.allow ? "allowed" : `${v.stage}: ${v.reason}`;
    };
    expect(await refused(own, "mcp:web", target("other.test"))).toMatch(
      /^capability: no capability grants .*other\.test.* \(mcp_servers\.web\.network\)$/,
    );
    // An address is allowed only by an entry naming it: granted.test's "*" does not cover one.
    expect(await refused(own, "mcp:web", target("10.1.2.4", 443, true))).toMatch(
      /an address needs a grant naming it exactly/,
    );
    expect(await refused(own, "mcp:web", target("denied.test"))).toMatch(/^policy: /);
    expect(await refused(own, "mcp:web", target("confirm.test"))).toMatch(
      /^approval: .*no human is asked about an MCP server's connections/,
    );
    // Another server's network, a goal's own network, a server without entries, a remote one.
    expect(await refused("mcpnet.quiet.g_1", "mcp:web", target("granted.test"))).toMatch(
      /mcp:web may speak only from its own server's network/,
    );
    expect(await refused("g_1", "mcp:web", target("granted.test"))).toMatch(
      /only from its own server's network/,
    );
    expect(await refused("mcpnet.quiet.g_1", "mcp:quiet", target("granted.test"))).toMatch(
      /MCP server quiet is not configured with network/,
    );
    expect(await refused("mcpnet.remote.g_1", "mcp:remote", target("granted.test"))).toMatch(
      /not configured with network/,
    );
    expect(await refused("mcpnet.nope.g_1", "mcp:nope", target("granted.test"))).toMatch(
      /not configured with network/,
    );
  });

  it("is audited under its real goal, as mcp:<server>", async () => {
    const b = await openServers();
    bench = b;
    b.rt.egress.record({
      phase: "denied",
      caller: { goalId: "mcpnet.web.g_7", agentId: "mcp:web" },
      host: "other.test",
      port: 443,
      method: "CONNECT",
      stage: "capability",
      reason: "no",
    });
    const e = b.audit("egress.denied", "mcp:web").at(-1);
    expect({ goal: e?.goal_id, agent: e?.agent_id }).toEqual({ goal: "g_7", agent: "mcp:web" });
  });
});
