// When and how the daemon contacts an external MCP server, through the daemon socket and
// the agent loop the way a refused agent, a hostile server or an unlucky operator meets it:
// a refused call contacts nothing; each server's schema is compiled alone; a connection that
// dies is dropped, its reason audited and given to the call in flight; so is one whose server
// stopped answering (a timed-out call, then an unanswered ping); an unreachable server
// is not retried on every turn; a goal's end closes what a call in flight opened.

import { afterEach, describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import type { Config } from "../../src/config.js";
import { type DaemonFixture, manifest, rpcError, useDaemonPerTest } from "../daemon/fixture.js";
import { echoTool, type RemoteMcpServer, startRemoteMcpServer } from "../support/mcp-remote-server.js";
import { turn } from "../support/provider-server.js";

const suite = useDaemonPerTest();
const remotes: RemoteMcpServer[] = [];
afterEach(async () => {
  for (const r of remotes.splice(0)) await r.close();
});

async function remoteServer(...args: Parameters<typeof startRemoteMcpServer>): Promise<RemoteMcpServer> {
  const r = await startRemoteMcpServer(...args);
  remotes.push(r);
  return r;
}

/** A daemon declaring each of `servers` (name -> url) as a remote server, all tools read-only. */
async function start(
  servers: Record<string, string>,
  opts: { deny?: string[]; timeoutMs?: number } = {},
): Promise<{ fx: DaemonFixture; c: AidoClient }> {
  const fx = await suite.start({
    config: (cfg: Config) => {
      for (const [name, url] of Object.entries(servers))
        cfg.mcp.servers[name] = {
          name,
          transport: "http",
          url,
          headers: {},
          readOnlyTools: ["*"],
          timeoutMs: opts.timeoutMs ?? 5_000,
        };
      cfg.grantCeilings = [["tool: *", ...Object.keys(servers).map((s) => `mcp: ${s}/*`)]];
      cfg.policy.deny = opts.deny ?? [];
    },
  });
  return { fx, c: await fx.client() };
}

const user = (name: string, servers: string[], extra: Record<string, unknown> = {}) =>
  manifest(name, {
    lifecycle: "persistent",
    capabilities: servers.map((s) => `mcp: ${s}/*`),
    mcp_servers: servers,
    ...extra,
  });

async function spawn(c: AidoClient, m: Record<string, unknown>): Promise<string> {
  return (await c.call("agent.spawn", { manifest: m })).agent_id;
}

const invoke = (c: AidoClient, agentId: string, tool: string, input: Record<string, unknown>) =>
  c.call("tool.invoke", { agent_id: agentId, tool, input });

describe("a call the gate refuses", () => {
  it("contacts nothing: no grant, a policy deny, a server outside the manifest, an unpinned tool, bad input", async () => {
    const remote = await remoteServer();
    const { c } = await start({ remote: remote.url }, { deny: ["mcp: remote/ec*"] });
    await c.call("mcp.approve", { server: "remote" });
    const approvedWith = remote.headers.length;

    const noGrant = await spawn(c, user("nogrant", ["remote"], { capabilities: ["mcp: remote/other_*"] }));
    const noServer = await spawn(c, user("noserver", [], { capabilities: ["mcp: remote/*"] }));
    const granted = await spawn(c, user("granted", ["remote"]));
    const refusals = [
      [noGrant, "mcp__remote__echo", { text: "x" }, "capability_denied"],
      [noServer, "mcp__remote__echo", { text: "x" }, "capability_denied"],
      [granted, "mcp__remote__echo", { text: "x" }, "policy_denied"],
      [granted, "mcp__remote__other", { text: "x" }, "capability_denied"],
      [granted, "mcp__remote__echo", { text: 42 }, "invalid_input"],
    ] as const;
    for (const [agent, tool, input, code] of refusals) {
      const e = await rpcError(invoke(c, agent, tool, input));
      expect(e.code).toBe(code);
    }
    // Not one HTTP request since the approval: no connection, no header sent, no tools/list.
    expect(remote.headers.length).toBe(approvedWith);
    const { entries } = await c.call("audit.query", { kind: "tool.denied", limit: 100 });
    expect(entries).toHaveLength(refusals.length);
    expect((await c.call("audit.query", { kind: "mcp.unreachable" })).entries).toEqual([]);
  });

  it("is not offered, nor its server contacted, when the agent's grants match none of the pinned tools", async () => {
    const remote = await remoteServer();
    const { c } = await start({ remote: remote.url });
    await c.call("mcp.approve", { server: "remote" });
    const approvedWith = remote.headers.length;
    suite.server.script("You are narrow", [turn.text("nothing for me")]);
    const r = await c.call("agent.spawn_and_run", {
      manifest: user("narrow", ["remote"], { lifecycle: "on-demand", capabilities: ["mcp: remote/other_*"] }),
      message: "go",
    });
    expect(r.text).toBe("nothing for me");
    expect(suite.server.requests.at(-1)?.toolNames.some((n: string) => n.startsWith("mcp__"))).toBe(false);
    expect(remote.headers.length).toBe(approvedWith);
  });
});

/** An echo tool whose input schema is `schema`. */
function echoWith(schema: Record<string, unknown>): ReturnType<typeof echoTool> {
  const t = echoTool();
  t.def.inputSchema = schema as typeof t.def.inputSchema;
  return t;
}

describe("each server's input schemas, compiled alone", () => {
  const ID = "https://schemas.example/echo-input";
  const honest = {
    $id: ID,
    type: "object",
    properties: { text: { type: "string", maxLength: 100 } },
    required: ["text"],
    additionalProperties: false,
  };

  it("cannot be broken by another server claiming their $id, nor reached by its $ref", async () => {
    const alpha = await remoteServer([echoWith(honest)]);
    // beta claims alpha's $id (with a schema of its own); gamma points its $ref at it.
    const beta = await remoteServer([
      echoWith({ $id: ID, type: "object", properties: { text: { type: "string" } } }),
    ]);
    const gamma = await remoteServer([echoWith({ type: "object", $ref: ID })]);
    const { c } = await start({ alpha: alpha.url, beta: beta.url, gamma: gamma.url });
    for (const s of ["alpha", "beta", "gamma"]) await c.call("mcp.approve", { server: s });
    const a = await spawn(c, user("many", ["alpha", "beta", "gamma"]));

    // beta's schema compiles first; alpha's, with the same $id, still does, and checks.
    expect(await invoke(c, a, "mcp__beta__echo", { text: "b" })).toMatchObject({ output: "b" });
    expect(await invoke(c, a, "mcp__alpha__echo", { text: "a" })).toMatchObject({ output: "a" });
    const bad = await rpcError(invoke(c, a, "mcp__alpha__echo", { text: "a", extra: 1 }));
    expect(bad.code).toBe("invalid_input");
    expect(bad.message).toContain('unknown property "extra"');

    // gamma's $ref resolves nowhere (not into alpha's schema): every call refused, naming it.
    const ref = await rpcError(invoke(c, a, "mcp__gamma__echo", { text: "g" }));
    expect(ref.code).toBe("invalid_input");
    expect(ref.message).toContain(`refers outside itself ($ref "${ID}"`);
    expect(gamma.calls).toEqual([]);
  });

  it("with an $id, still checks calls in every later goal", async () => {
    const alpha = await remoteServer([echoWith(honest)]);
    const { c } = await start({ alpha: alpha.url });
    await c.call("mcp.approve", { server: "alpha" });
    for (const name of ["first", "second", "third"]) {
      // Each persistent agent is a goal of its own, with its own connection.
      const a = await spawn(c, user(name, ["alpha"]));
      expect(await invoke(c, a, "mcp__alpha__echo", { text: name })).toMatchObject({ output: name });
      const e = await rpcError(invoke(c, a, "mcp__alpha__echo", { text: 7 }));
      expect(e.message).toContain("text: must be string");
    }
  });
});

describe("a schema in the dialect it declares", () => {
  it("checks a 2020-12 schema (what newer servers emit) and a 2019-09 one, as well as draft-07", async () => {
    const schema = (dialect: string) => ({
      $schema: dialect,
      type: "object",
      properties: { text: { type: "string", maxLength: 10 } },
      required: ["text"],
    });
    const servers: Record<string, string> = {};
    const dialects = {
      new: "https://json-schema.org/draft/2020-12/schema",
      mid: "https://json-schema.org/draft/2019-09/schema",
      old: "http://json-schema.org/draft-07/schema#",
    };
    for (const [name, dialect] of Object.entries(dialects))
      servers[name] = (await remoteServer([echoWith(schema(dialect))])).url;
    const { c } = await start(servers);
    for (const s of Object.keys(dialects)) await c.call("mcp.approve", { server: s });
    const a = await spawn(c, user("dialects", Object.keys(dialects)));
    for (const s of Object.keys(dialects)) {
      expect(await invoke(c, a, `mcp__${s}__echo`, { text: s })).toMatchObject({ output: s });
      const e = await rpcError(invoke(c, a, `mcp__${s}__echo`, { text: "far too long for it" }));
      expect(e.code, s).toBe("invalid_input");
      expect(e.message, s).toContain("must NOT have more than 10 characters");
    }
  });
});

describe("an unreachable server", () => {
  it("is tried once per backoff, not on every turn's offer and every call (one mcp.unreachable)", async () => {
    const remote = await remoteServer();
    const { c } = await start({ remote: remote.url });
    await c.call("mcp.approve", { server: "remote" });
    await remote.close(); // gone after approval: every connect now fails
    suite.server.script("You are stubborn", [
      turn.toolUse("mcp__remote__echo", { text: "one" }),
      turn.toolUse("mcp__remote__echo", { text: "two" }),
      turn.toolUse("mcp__remote__echo", { text: "three" }),
      turn.text("gave up"),
    ]);
    const r = await c.call("agent.spawn_and_run", {
      manifest: user("stubborn", ["remote"], { lifecycle: "on-demand" }),
      message: "go",
    });
    expect(r.text).toBe("gave up");
    const { entries } = await c.call("audit.query", { kind: "mcp.unreachable" });
    expect(entries).toHaveLength(1);
    expect(entries[0]?.payload).toMatchObject({ server: "remote" });
    // The model was told why, each time, and that it is not retried yet.
    const last = JSON.stringify(suite.server.requests.at(-1)?.body);
    expect(last).toContain("MCP server remote cannot be reached");
    expect(last).toContain("not tried again for this goal for");
    // Each call did not run and was not refused: one tool.errored at stage needs, no other tool.* entry.
    const tools = (await c.call("audit.query", { limit: 100 })).entries.filter((e) =>
      e.kind.startsWith("tool."),
    );
    const said = (e: { kind: string; payload: object }) => {
      const p = e.payload as { stage?: string; code?: string };
      return [e.kind, p.stage, p.code];
    };
    expect(tools.map(said)).toEqual([
      ["tool.errored", "needs", "sandbox_unavailable"],
      ["tool.errored", "needs", "sandbox_unavailable"],
      ["tool.errored", "needs", "sandbox_unavailable"],
    ]);
  });
});

describe("a server that stops answering", () => {
  it("is disconnected after a call times out and a ping goes unanswered; the next call connects again", async () => {
    const slow = {
      ...echoTool(),
      def: { ...echoTool().def, name: "slow" },
      run: () => new Promise<never>(() => {}),
    };
    const remote = await remoteServer([echoTool(), slow], { sessions: true });
    const { c } = await start({ remote: remote.url }, { timeoutMs: 400 });
    await c.call("mcp.approve", { server: "remote" });
    const a = await spawn(c, user("waiter", ["remote"]));
    /** Sessions opened so far: each connection's initialize is the one request without an id. */
    const sessions = () => remote.headers.filter((h) => h["mcp-session-id"] === undefined).length;
    const disconnected = async () => (await c.call("audit.query", { kind: "mcp.disconnected" })).entries;

    expect((await invoke(c, a, "mcp__remote__echo", { text: "one" })).output).toBe("one");
    const opened = sessions();
    // A slow tool of a server that still answers: the call times out, the connection stays.
    const slowly = await rpcError(invoke(c, a, "mcp__remote__slow", { text: "x" }));
    expect(slowly.message).toMatch(/MCP server remote failed the call of slow: .*timed out/i);
    expect(await disconnected()).toEqual([]);
    expect((await invoke(c, a, "mcp__remote__echo", { text: "two" })).output).toBe("two");
    expect(sessions()).toBe(opened);

    // Now it answers nothing for 30 s: the call times out, and so does the ping after it, in
    // about 800 ms. The bound is far from both: a call or ping that waited for the answer
    // takes 30 s, while a loaded machine may stretch the two timeouts by a second or more.
    remote.hold(30_000);
    const t0 = Date.now();
    const e = await rpcError(invoke(c, a, "mcp__remote__echo", { text: "three" }));
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(e.code).toBe("tool_failed");
    expect(e.message).toContain("MCP server remote failed the call of echo: the connection ended: timed out");
    const [ended] = await disconnected();
    expect(ended?.payload).toMatchObject({ server: "remote", reconnects_left: 2 });
    expect((ended?.payload as { reason?: string } | undefined)?.reason).toMatch(
      /^timed out: it answered neither a call of echo within 400 ms nor a ping within 400 ms after/,
    );
    // Back: the next call opens a new session rather than waiting on the dead one.
    remote.hold(0);
    expect((await invoke(c, a, "mcp__remote__echo", { text: "four" })).output).toBe("four");
    expect(sessions()).toBe(opened + 1);
    expect(await disconnected()).toHaveLength(1);
  });
});

/** A tool that runs until its call is cancelled. */
function blockTool(): ReturnType<typeof echoTool> {
  return {
    ...echoTool(),
    def: { ...echoTool().def, name: "block" },
    run: (_args, { signal }) =>
      new Promise((resolve) =>
        signal.addEventListener("abort", () => resolve({ content: [{ type: "text", text: "stopped" }] })),
      ),
  };
}

/** Wait (bounded) until `check` holds. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 15));
  if (!check()) throw new Error(`timed out waiting: ${what}`);
}

describe("a call cancelled while the server runs it", () => {
  it("is cancelled at the server when the agent is stopped", async () => {
    const remote = await remoteServer([blockTool()], { sessions: true });
    const { c } = await start({ remote: remote.url });
    await c.call("mcp.approve", { server: "remote" });
    const a = await spawn(c, user("stopped", ["remote"]));
    const call = rpcError(invoke(c, a, "mcp__remote__block", { text: "x" }));
    await until(() => remote.calls.length === 1, "the call to reach the server");
    await c.call("agent.stop", { agent_id: a });
    await call;
    await until(() => remote.cancelled.length === 1, "notifications/cancelled");
    // Told that the call was cancelled, nothing of why (the daemon's reasons are its own).
    expect(remote.cancelled).toEqual([{ name: "block", reason: "the caller cancelled the call" }]);
  });

  it("is cancelled at the server when the goal is cancelled while the agent waits on it", async () => {
    const remote = await remoteServer([blockTool()], { sessions: true });
    const { c } = await start({ remote: remote.url });
    await c.call("mcp.approve", { server: "remote" });
    suite.server.script("You are waiting", [
      turn.toolUse("mcp__remote__block", { text: "x" }),
      turn.text("done"),
    ]);
    const { goal_id } = await c.call("goal.submit", {
      goal: "wait on the server",
      manifest: user("waiting", ["remote"], { lifecycle: "on-demand" }),
    });
    await until(() => remote.calls.length === 1, "the call to reach the server");
    await c.call("goal.cancel", { goal_id });
    await until(() => remote.cancelled.length === 1, "notifications/cancelled");
    expect(remote.cancelled[0]).toMatchObject({ name: "block" });
  });

  it("is cancelled at the server when it passes its timeout", async () => {
    const remote = await remoteServer([blockTool()], { sessions: true });
    const { c } = await start({ remote: remote.url }, { timeoutMs: 400 });
    await c.call("mcp.approve", { server: "remote" });
    const a = await spawn(c, user("impatient", ["remote"]));
    const e = await rpcError(invoke(c, a, "mcp__remote__block", { text: "x" }));
    expect(e.message).toMatch(/timed out/);
    await until(() => remote.cancelled.length === 1, "notifications/cancelled");
    expect(remote.cancelled[0]?.reason).toMatch(/timed out/i);
  });
});

describe("a goal that ends while a call is connecting", () => {
  it("closes the connection the call opened and makes no call", async () => {
    const remote = await remoteServer([echoTool()], { sessions: true });
    const { c } = await start({ remote: remote.url });
    await c.call("mcp.approve", { server: "remote" });
    const a = await spawn(c, user("leaver", ["remote"]));
    remote.hold(700); // the connect of the call below is slow
    const call = rpcError(invoke(c, a, "mcp__remote__echo", { text: "late" }));
    await new Promise((r) => setTimeout(r, 200));
    await c.call("agent.stop", { agent_id: a });
    const e = await call;
    expect(e.message).toContain("ended; its connection to MCP server remote is closed");
    remote.hold(0);
    // A connection left open would answer list_changed with a tools/list, and would have called.
    const seen = remote.headers.length;
    await remote.toolsChanged();
    await new Promise((r) => setTimeout(r, 500));
    expect(remote.headers.length).toBe(seen);
    expect(remote.calls).toEqual([]);
  });
});
