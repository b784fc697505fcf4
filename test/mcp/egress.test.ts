// `aido mcp serve` and the egress relay: a command an MCP call runs (exec, or a plan's exec
// step) connects, in the session's real container on its egress network, to a host under
// a confirm rule (`policy.confirm: ["network: *"]`); the relay's question to a human names
// the call (its own proxy credentials), so it reaches that call in the MCP client —
// through elicitation, or told by its approval id to a client without it — and no other
// call. A process a call left running after it ended asks with no call named (left to
// `aido approvals`). The "internet" is a Docker network on a /28 of TEST-NET-3 of its own
// with one upstream serving plain HTTP on 8080 (docker-upstream.ts).

import { describe, expect, it } from "vitest";
import { UPSTREAM_NETS } from "../egress/docker-upstream.js";
import { SESSION, useEgressSession } from "./egress-session.js";
import { textOf, until } from "./fixture.js";

const { suite, start, sessionFile, scanEnvironments } = useEgressSession(UPSTREAM_NETS.mcpEgress);

const curl = (path: string, host = "plain.test") =>
  `curl -sS --max-time 40 -o - -w ' status=%{http_code}' http://${host}:8080/${path}`;

/**
 * An exec call running `command` whose question the client is shown (elicitation) and never
 * answers, cancelled by the client once it was asked (and `thenWaitMs` more): the call ends in
 * an error. The human's client, once no question is left open (within `closedWithinMs`).
 */
async function cancelledWhileAsked(command: string, opts: { thenWaitMs?: number; closedWithinMs: number }) {
  await start();
  let asked = 0;
  const client = await suite.connect({
    args: ["--manifest", sessionFile()],
    // The human never answers in the client.
    elicit: () => {
      asked++;
      return new Promise(() => {});
    },
  });
  const abort = new AbortController();
  const call = client
    .callTool({ name: "exec", arguments: { command } }, undefined, { signal: abort.signal, timeout: 90_000 })
    .catch((e: Error) => e);
  await until(() => asked === 1, 60_000);
  if (opts.thenWaitMs) await new Promise((r) => setTimeout(r, opts.thenWaitMs));
  abort.abort();
  expect(await call).toBeInstanceOf(Error);
  const human = await suite.fx.client();
  await until(
    async () => (await human.call("approval.list", {})).approvals.length === 0,
    opts.closedWithinMs,
  );
  return human;
}

describe("a command's egress question, through the MCP face", () => {
  it("reaches the exec call that ran it through elicitation: Allow lets it through, Deny refuses it", async () => {
    await start();
    const asked: string[] = [];
    let answer: "allow_once" | "deny" = "allow_once";
    const client = await suite.connect({
      args: ["--manifest", sessionFile()],
      elicit: async (req) => {
        asked.push((req.params as { message: string }).message);
        return { action: "accept", content: { decision: answer } };
      },
    });
    const allowed = await client.callTool(
      { name: "exec", arguments: { command: curl("allowed") } },
      undefined,
      {
        timeout: 90_000,
      },
    );
    expect(textOf(allowed)).toContain("plain-ok /allowed");
    expect(asked).toHaveLength(1);
    expect(asked[0]).toContain("egress to plain.test port 8080");
    // The call's own proxy secret is never shown: not in the form, not in the result.
    const human = await suite.fx.client();
    const [decided] = (await human.call("approval.list", { status: "decided" })).approvals;
    expect(decided).toMatchObject({ tool: "egress", decision: "allow_once" });

    answer = "deny";
    const denied = await client.callTool(
      { name: "exec", arguments: { command: curl("denied") } },
      undefined,
      {
        timeout: 90_000,
      },
    );
    expect(asked).toHaveLength(2);
    expect(textOf(denied)).not.toContain("plain-ok");
    expect(textOf(denied)).toContain("status=403");
    const requested = (await human.call("audit.query", { kind: "approval.requested" })).entries;
    expect(requested).toHaveLength(2);
    for (const e of requested) expect((e.payload as { request_id?: string }).request_id).toMatch(/^req_/);
  }, 180_000);

  it("reaches the plan that ran the command in an exec step", async () => {
    await start();
    const asked: string[] = [];
    const client = await suite.connect({
      args: ["--manifest", sessionFile()],
      elicit: async (req) => {
        asked.push((req.params as { message: string }).message);
        return { action: "accept", content: { decision: "allow_once" } };
      },
    });
    const plan = JSON.parse(
      textOf(
        await client.callTool({
          name: "aido_plan",
          arguments: { title: "fetch", steps: [{ tool: "exec", input: { command: curl("planned") } }] },
        }),
      ),
    ) as { plan_id: string };
    const done = await client.callTool(
      { name: "aido_plan_execute", arguments: { plan_id: plan.plan_id } },
      undefined,
      { timeout: 90_000 },
    );
    expect(textOf(done)).toContain('"status": "succeeded"');
    expect(textOf(done)).toContain("plain-ok /planned");
    expect(asked).toHaveLength(1);
    expect(asked[0]).toContain("egress to plain.test port 8080");
  }, 180_000);

  it("two calls side by side are each told only their own question (a client without elicitation)", async () => {
    await start();
    const client = await suite.connect({ args: ["--manifest", sessionFile()] });
    // Warm: the container and its network exist, so the calls race only each other.
    await client.callTool({ name: "file_read", arguments: { path: "/workspace/README.md" } });
    const human = await suite.fx.client();
    const run = (host: string) => {
      const told: string[] = [];
      const result = client.callTool({ name: "exec", arguments: { command: curl(host, host) } }, undefined, {
        timeout: 90_000,
        onprogress: (p) => {
          const id = /answer approval (apr_[0-9a-f-]+)/.exec(p.message ?? "")?.[1];
          if (id && !told.includes(id)) told.push(id);
        },
      });
      return { host, told, result };
    };
    const calls = [run("plain.test"), run("other.test")];
    await until(() => calls.every((c) => c.told.length === 1), 60_000);
    const pending = (await human.call("approval.list", {})).approvals;
    expect(pending).toHaveLength(2);
    for (const c of calls) {
      const mine = pending.find((a) => a.id === c.told[0]);
      expect(mine?.summary, `the question told to the call to ${c.host}`).toContain(
        `egress to ${c.host} port 8080`,
      );
    }
    for (const c of calls)
      await human.call("approval.respond", { id: String(c.told[0]), decision: "allow_once" });
    for (const c of calls) {
      expect(textOf(await c.result)).toContain(`plain-ok /${c.host}`);
      expect(c.told).toHaveLength(1);
    }
  }, 180_000);

  it("a command cannot borrow another call's credentials from that exec's environment", async () => {
    await start();
    // Call B holds its own credentials in its environment while it sleeps; call A looks
    // through every process's environment for proxy credentials not its own.
    const { scan, holder } = await scanEnvironments();
    expect(scan).toMatch(/seen=[1-9]\d* foreign=0 mine=1/);
    expect(holder.isError ?? false).toBe(false);
  }, 180_000);

  it("a command that prints its call's secret on its own sees it blanked, like the whole password", async () => {
    await start();
    const client = await suite.connect({ args: ["--manifest", sessionFile()] });
    // The URL is http://<agent>:<password>.<secret>@<relay>:<port>: print each part apart.
    const r = await client.callTool({
      name: "exec",
      arguments: {
        command: `echo "whole=\${HTTP_PROXY}"; echo "secret=\${HTTP_PROXY#*.}"; x="\${HTTP_PROXY%@*}"; echo "agent=\${x%.*}"`,
      },
    });
    const text = textOf(r);
    expect(text).toMatch(/whole=http:\/\/[^:]+:\[hidden\]@/);
    expect(text).toMatch(/agent=http:\/\/[^:]+:\[hidden\]\n/);
    expect(text).toMatch(/secret=\[hidden\]@/);
  }, 180_000);

  it("no file tool or script read reaches another call's environment through /proc (the executor reads as itself)", async () => {
    await start();
    const reader = SESSION.replace(
      '  - "file_read: /workspace/**"',
      '  - "file_read: /**"\n  - "tool: grep"\n  - "tool: file_list"',
    );
    const client = await suite.connect({ args: ["--manifest", sessionFile(reader)] });
    // Call B holds its own credentials in its environment while it sleeps.
    const b = client.callTool({ name: "exec", arguments: { command: "sleep 8 # holder" } }, undefined, {
      timeout: 90_000,
    });
    await new Promise((r) => setTimeout(r, 2000));
    const ps = await client.callTool({ name: "exec", arguments: { command: "pgrep -f 'holde[r]'" } });
    const pid = /--- stdout ---\n(\d+)/.exec(textOf(ps))?.[1];
    expect(pid).toBeDefined();
    const attempts = [
      { name: "file_read", arguments: { path: `/proc/${pid}/environ` } },
      { name: "file_read", arguments: { path: "/proc/self/environ" } },
      { name: "grep", arguments: { pattern: "PROXY=", path: `/proc/${pid}` } },
      { name: "file_list", arguments: { path: `/proc/${pid}` } },
    ];
    for (const attempt of attempts) {
      const r = await client.callTool(attempt);
      const text = textOf(r);
      expect(text, JSON.stringify(attempt)).not.toMatch(/PROXY=http/);
      expect(r.isError, JSON.stringify(attempt)).toBe(true);
      expect(text, JSON.stringify(attempt)).toContain("under /proc");
    }
    // A command reads /proc in its own domain, which keeps another's environment closed.
    const own = await client.callTool({
      name: "exec",
      arguments: { command: `python3 /proc/${pid}/environ` },
    });
    expect(textOf(own)).not.toMatch(/PROXY=http/);
    expect((await b).isError ?? false).toBe(false);
    const human = await suite.fx.client();
    const denied = (await human.call("audit.query", { kind: "tool.denied" })).entries;
    expect(denied.length).toBeGreaterThanOrEqual(attempts.length);
  }, 180_000);

  it("no file tool reaches /proc by another road: a link, .., /dev/fd, a walk over / (the executor's own wall)", async () => {
    await start();
    const reader = SESSION.replace(
      '  - "file_read: /workspace/**"',
      '  - "file_read: /**"\n  - "tool: grep"\n  - "tool: file_list"',
    );
    const client = await suite.connect({ args: ["--manifest", sessionFile(reader)] });
    const b = client.callTool({ name: "exec", arguments: { command: "sleep 20 # holder" } }, undefined, {
      timeout: 90_000,
    });
    await new Promise((r) => setTimeout(r, 2000));
    const ps = await client.callTool({
      name: "exec",
      arguments: {
        command:
          "p=$(pgrep -f 'holde[r]'); ln -s /proc/$p/environ env-link; ln -s /proc/$p proc-link; echo $p",
      },
    });
    const pid = /--- stdout ---\n(\d+)/.exec(textOf(ps))?.[1];
    expect(pid).toBeDefined();
    const refused = [
      { name: "file_read", arguments: { path: "/workspace/env-link" } },
      { name: "file_read", arguments: { path: "/workspace/proc-link/environ" } },
      { name: "file_read", arguments: { path: `/workspace/../proc/${pid}/environ` } },
      { name: "file_read", arguments: { path: "/dev/fd/../environ" } },
      { name: "file_list", arguments: { path: "/dev/fd" } },
      { name: "grep", arguments: { pattern: "PROXY=", path: "/workspace/proc-link" } },
    ];
    for (const attempt of refused) {
      const r = await client.callTool(attempt);
      expect(textOf(r), JSON.stringify(attempt)).not.toMatch(/PROXY=http/);
      expect(r.isError, JSON.stringify(attempt)).toBe(true);
    }
    // A walk from / (with a glob that leads into /proc, or none) never enters /proc.
    // (A status file says "Name:": a walk that entered /proc finds the holder's.)
    for (const walk of [
      { pattern: "^Name:", path: "/", glob: `proc/${pid}/status` },
      { pattern: "PROXY=http", path: "/", glob: "**/environ" },
    ]) {
      const r = await client.callTool({ name: "grep", arguments: walk }, undefined, { timeout: 90_000 });
      expect(textOf(r), JSON.stringify(walk)).not.toMatch(/PROXY=http/);
      expect(textOf(r), JSON.stringify(walk)).not.toContain(`/proc/${pid}`);
    }
    // Listing / names /proc (a name, nothing of it is read): a guard.
    const top = await client.callTool({ name: "file_list", arguments: { path: "/" } });
    expect(top.isError ?? false).toBe(false);
    expect(textOf(top)).not.toMatch(/PROXY=http/);
    await client.callTool({ name: "exec", arguments: { command: "pkill -f 'holde[r]'; true" } });
    await b.catch(() => undefined);
  }, 240_000);

  it("a call cancelled while its command's connection waits for the human: the question is denied, nothing gets through", async () => {
    const human = await cancelledWhileAsked(curl("cancelled"), { closedWithinMs: 10_000 });
    const [closed] = (await human.call("approval.list", { status: "all" })).approvals;
    expect(closed).toMatchObject({ tool: "egress", status: "decided", decision: "deny" });
    expect((await human.call("audit.query", { kind: "egress.open" })).entries).toEqual([]);
  }, 180_000);

  it("a call cancelled while a second connection of its command waits its turn: no question ends as if the client had left", async () => {
    const human = await cancelledWhileAsked(
      `${curl("first")} & sleep 1; ${curl("second", "other.test")}; wait`,
      // The second connection waits behind the first question, in the call's line.
      { thenWaitMs: 2500, closedWithinMs: 20_000 },
    );
    await new Promise((r) => setTimeout(r, 1000));
    const closed = (await human.call("approval.list", { status: "all" })).approvals.filter(
      (a) => a.tool === "egress",
    );
    expect(closed.length).toBeGreaterThanOrEqual(1);
    for (const a of closed) {
      // Denied by the client's cancel, or closed saying the call was cancelled: never "the client left".
      if (a.status === "decided") expect(a.decision).toBe("deny");
      else
        expect(a).toMatchObject({ status: "expired", close_reason: expect.stringMatching(/was cancelled/) });
    }
    const expired = (await human.call("audit.query", { kind: "approval.expired" })).entries;
    for (const e of expired)
      expect(String((e.payload as { reason?: string }).reason)).not.toMatch(/client left/);
    expect((await human.call("audit.query", { kind: "egress.open" })).entries).toEqual([]);
  }, 180_000);

  it("a socket client acting as the session's agent outside MCP gets its own question, never the MCP call's form", async () => {
    await start();
    const asked: string[] = [];
    const client = await suite.connect({
      args: ["--manifest", sessionFile()],
      elicit: async (req) => {
        asked.push((req.params as { message: string }).message);
        return { action: "accept", content: { decision: "allow_once" } };
      },
    });
    await client.callTool({ name: "file_read", arguments: { path: "/workspace/README.md" } });
    const human = await suite.fx.client();
    const session = (await human.call("agent.list", {})).agents.find((a) => a.manifest === "mcp-egress");
    if (!session) throw new Error("no session agent");
    // An MCP call runs (and will ask its own question) while the other client's command asks.
    const mcpCall = client.callTool(
      { name: "exec", arguments: { command: `sleep 4; ${curl("mcp")}` } },
      undefined,
      {
        timeout: 90_000,
      },
    );
    const outsider = await suite.fx.client();
    let outsiderId: string | undefined;
    const outside = outsider
      .call(
        "tool.invoke",
        { agent_id: session.agent_id, tool: "exec", input: { command: curl("outside", "other.test") } },
        { onStarted: (id) => (outsiderId = id) },
      )
      .catch((e: Error) => e);
    await until(
      async () => (await human.call("approval.list", {})).approvals.some((a) => a.tool === "egress"),
      30_000,
    );
    const [theirs] = (await human.call("approval.list", {})).approvals.filter((a) => a.tool === "egress");
    expect(theirs?.summary).toContain("egress to other.test port 8080");
    expect(theirs?.request_id).toBe(outsiderId);
    expect(textOf(await mcpCall)).toContain("plain-ok /mcp");
    expect(asked.map((m) => /egress to (\S+)/.exec(m)?.[1])).toEqual(["plain.test"]);
    await human.call("approval.respond", { id: String(theirs?.id), decision: "deny" });
    const r = (await outside) as { output: string };
    expect(r.output).toContain("status=403");
  }, 180_000);
});
