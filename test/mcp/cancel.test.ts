// Cancelling calls of `aido mcp serve`, driven by the SDK's own Client through the real
// CLI, in front of a real daemon and containers: a plan whose step runs when the client
// cancels it stops there (what the step would have done after the cancel, and the later
// steps, do not land in the project; the plan is recorded failed, audited); an intent's
// check the client cancels is stopped; and a client that fires a thousand calls and
// cancels each holds a bounded number of daemon connections, all closed afterwards, each
// call that ran on record once, the session still usable. An adoption the client cancels
// once it runs is never left half-applied. Worlds the client cancels while they run are
// stopped and discarded, and the session may spawn worlds again.

import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { beforeAll, describe, expect, it } from "vitest";
import { MAX_CALL_CONNECTIONS } from "../../src/mcp/call-connections.js";
import { MODEL } from "../agent/harness.js";
import { requireDocker } from "../support/docker.js";
import { turn } from "../support/provider-server.js";
import { textOf, until, useMcpSuite } from "./fixture.js";

beforeAll(() => requireDocker());
const suite = useMcpSuite();

const allowOnce = async () => ({ action: "accept" as const, content: { decision: "allow_once" } });
/** Sleeps 4 s, then writes `file` in the project: present only if the command ran past a cancel. */
const late = (file: string) =>
  `python3 -c "import time; time.sleep(4); open('/workspace/${file}', 'w').write('x')"`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The audit entries of `kind` the daemon holds. */
async function entries(kind: string) {
  const c = await suite.fx.client();
  return (await c.call("audit.query", { kind, limit: 10_000 })).entries;
}

describe("a plan the client cancels while a step runs", () => {
  it("stops at that step: its late effect and the later steps do not land, the plan is recorded failed", async () => {
    await suite.start();
    const client = await suite.connect({ elicit: allowOnce });
    const plan = JSON.parse(
      textOf(
        await client.callTool({
          name: "aido_plan",
          arguments: {
            title: "slow then write",
            steps: [
              { tool: "exec", input: { command: late("late.txt") } },
              { tool: "file_write", input: { path: "/workspace/after.txt", content: "after\n" } },
            ],
          },
        }),
      ),
    ) as { plan_id: string };
    const abort = new AbortController();
    const call = client
      .callTool({ name: "aido_plan_execute", arguments: { plan_id: plan.plan_id } }, undefined, {
        signal: abort.signal,
      })
      .catch((e: Error) => e);
    await until(async () => (await entries("tool.invoked")).length === 1, 30_000);
    await sleep(1500);
    abort.abort();
    expect(await call).toBeInstanceOf(Error);
    await until(async () => (await entries("plan.executed")).length === 1, 15_000);
    await sleep(5000);
    expect(existsSync(join(suite.project, "late.txt")), "the cancelled step ran on").toBe(false);
    expect(existsSync(join(suite.project, "after.txt")), "a step after the cancel ran").toBe(false);
    expect((await entries("tool.failed")).map((e) => e.payload)).toEqual([
      expect.objectContaining({ tool: "exec", code: "cancelled" }),
    ]);
    expect((await entries("plan.executed")).map((e) => e.payload)).toEqual([
      expect.objectContaining({ plan_id: plan.plan_id, status: "failed", steps_run: 1, failed_step: 0 }),
    ]);
    const c = await suite.fx.client();
    const listed = (await c.call("plan.list", {})).plans.find((p) => p.plan_id === plan.plan_id);
    expect(listed?.status).toBe("failed");
    // The session lives on.
    const r = await client.callTool({ name: "file_read", arguments: { path: "/workspace/README.md" } });
    expect(r.isError ?? false).toBe(false);
  }, 90_000);
});

describe("a plan the client cancels just before its running step ends", () => {
  it("runs no later step: the call's connection closes at once, with no approval left to deny", async () => {
    await suite.start();
    const client = await suite.connect({ elicit: allowOnce });
    // The first step ends when the test says so (a file it makes in the project).
    const waitForGo =
      "python3 -c \"import os, time; [time.sleep(0.02) for _ in iter(lambda: os.path.exists('/workspace/go'), True)]\"";
    const plan = JSON.parse(
      textOf(
        await client.callTool({
          name: "aido_plan",
          arguments: {
            title: "wait then write",
            steps: [
              { tool: "exec", input: { command: waitForGo } },
              { tool: "file_write", input: { path: "/workspace/after.txt", content: "after\n" } },
            ],
          },
        }),
      ),
    ) as { plan_id: string };
    const abort = new AbortController();
    const call = client
      .callTool({ name: "aido_plan_execute", arguments: { plan_id: plan.plan_id } }, undefined, {
        signal: abort.signal,
      })
      .catch((e: Error) => e);
    await until(async () => (await entries("tool.invoked")).length === 1, 30_000);
    abort.abort();
    // The step would end well within the half second a pending approval's denial may take.
    await sleep(250);
    writeFileSync(join(suite.project, "go"), "");
    expect(await call).toBeInstanceOf(Error);
    await until(async () => (await entries("plan.executed")).length === 1, 15_000);
    expect(existsSync(join(suite.project, "after.txt")), "a step after the cancel ran").toBe(false);
    expect((await entries("plan.executed")).map((e) => e.payload)).toEqual([
      expect.objectContaining({ plan_id: plan.plan_id, status: "failed", steps_run: 1, failed_step: 0 }),
    ]);
  }, 90_000);
});

describe("an intent's check the client cancels while it runs", () => {
  it("is stopped: its command's late effect does not land, audited as cancelled", async () => {
    await suite.start();
    const client = await suite.connect({ elicit: allowOnce });
    const set = await client.callTool({
      name: "aido_goal_set",
      arguments: { objective: "slow check", check: late("checked.txt") },
    });
    expect(set.isError ?? false, textOf(set)).toBe(false);
    const abort = new AbortController();
    const call = client
      .callTool({ name: "aido_goal_status", arguments: { check: true } }, undefined, { signal: abort.signal })
      .catch((e: Error) => e);
    await until(async () => (await entries("tool.invoked")).length === 1, 30_000);
    await sleep(1500);
    abort.abort();
    expect(await call).toBeInstanceOf(Error);
    await sleep(6000);
    expect(existsSync(join(suite.project, "checked.txt")), "the cancelled check ran on").toBe(false);
    expect((await entries("tool.failed")).map((e) => e.payload)).toEqual([
      expect.objectContaining({ tool: "exec", code: "cancelled" }),
    ]);
    const r = await client.callTool({ name: "aido_goal_status", arguments: {} });
    expect(r.isError ?? false, textOf(r)).toBe(false);
  }, 90_000);
});

describe("a client that fires a thousand calls and cancels each", () => {
  it("holds a bounded number of daemon connections, closes every one, and each call that ran is on record once", async () => {
    const fx = await suite.start();
    const client = await suite.connect({ elicit: allowOnce });
    const pid = (client.transport as StdioClientTransport).pid;
    if (pid === null) throw new Error("no server process");
    const fds = () => readdirSync(`/proc/${pid}/fd`).length;
    // Warm: the container exists and a call's connection came and went.
    await client.callTool({ name: "file_read", arguments: { path: "/workspace/README.md" } });
    const q = await fx.client(); // the test's own connection, opened before the baseline
    const baseConnections = fx.daemon.connectionCount;
    const baseFds = fds();
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, fx.daemon.connectionCount - baseConnections);
    }, 2);
    try {
      const calls: Promise<unknown>[] = [];
      const execAborts: AbortController[] = [];
      // Commands that run until cancelled, more than a session's connections...
      for (let i = 0; i < 2 * MAX_CALL_CONNECTIONS; i++) {
        const abort = new AbortController();
        execAborts.push(abort);
        calls.push(
          client
            .callTool(
              { name: "exec", arguments: { command: `python3 -c "import time; time.sleep(${30 + i})"` } },
              undefined,
              {
                signal: abort.signal,
              },
            )
            .catch((e: Error) => e),
        );
      }
      const running = async () =>
        (await q.call("audit.query", { kind: "tool.invoked", limit: 10_000 })).entries.filter(
          (e) => (e.payload as { tool: string }).tool === "exec",
        ).length;
      await until(async () => (await running()) >= 4, 60_000);
      // ...and a thousand quick reads cancelled at once or a moment later.
      for (let i = 0; i < 1000; i++) {
        const abort = new AbortController();
        calls.push(
          client
            .callTool({ name: "file_read", arguments: { path: "/workspace/README.md" } }, undefined, {
              signal: abort.signal,
            })
            .catch((e: Error) => e),
        );
        setTimeout(() => abort.abort(), i % 50);
      }
      await sleep(500);
      for (const a of execAborts) a.abort();
      await Promise.all(calls);
      await until(() => fx.daemon.connectionCount === baseConnections, 30_000);
    } finally {
      clearInterval(sampler);
    }
    expect(peak, "daemon connections held at once beyond the session's own").toBeLessThanOrEqual(
      MAX_CALL_CONNECTIONS,
    );
    await until(() => fds() <= baseFds, 10_000).catch(() => {});
    expect(fds(), "descriptors the server holds after the flood").toBeLessThanOrEqual(baseFds);
    // Every call that reached the gate's run ended on record exactly once; a command that was
    // running ended as cancelled.
    // A call's end is written when the daemon has stopped it (a command killed: SIGTERM, then
    // SIGKILL after 1 s), which on a loaded machine comes after its connection closed.
    const ends = async () => [...(await entries("tool.completed")), ...(await entries("tool.failed"))];
    await until(async () => (await ends()).length >= (await entries("tool.invoked")).length, 30_000).catch(
      () => {},
    );
    const invoked = await entries("tool.invoked");
    const ended = await ends();
    const endedSeqs = ended
      .map((e) => (e.payload as { invoked_seq: number }).invoked_seq)
      .sort((a, b) => a - b);
    expect(endedSeqs).toEqual(invoked.map((e) => e.seq).sort((a, b) => a - b));
    const execs = invoked.filter((e) => (e.payload as { tool: string }).tool === "exec");
    expect(execs.length).toBeGreaterThan(0);
    expect(execs.length).toBeLessThanOrEqual(MAX_CALL_CONNECTIONS);
    const execEnds = ended.filter((e) => (e.payload as { tool: string }).tool === "exec");
    expect(execEnds.map((e) => (e.payload as { code?: string }).code)).toEqual(execs.map(() => "cancelled"));
    // The session lives on.
    const r = await client.callTool({ name: "file_read", arguments: { path: "/workspace/README.md" } });
    expect(r.isError ?? false, textOf(r)).toBe(false);
  }, 240_000);
});

const WORLDS_SESSION = `name: worlds-session
system_prompt: You are the principal of an MCP session.
capabilities:
  - "tool: file_read"
  - "tool: file_write"
  - "tool: spawn_worlds"
  - "tool: adopt_world"
  - "file_read: /workspace/**"
  - "file_write: /workspace/**"
  - "spawn_child: coder"
limits: { max_iterations: 40, max_children: 4, max_depth: 2 }
budget: { max_tokens: 200000 }
`;

describe("an adoption the client cancels once it runs", () => {
  it("runs to its end: every path of the world's diff lands, on record as adopted, nothing failed (guard)", async () => {
    await suite.start();
    const file = join(dirname(suite.project), "worlds-session.yaml");
    writeFileSync(file, WORLDS_SESSION);
    const client = await suite.connect({ args: ["--manifest", file] });
    const files = Array.from({ length: 40 }, (_, i) => ({
      path: `/workspace/idea-${i}.md`,
      content: `idea ${i}\n`,
    }));
    // One call per file: the child writes 40 files in its world.
    let k = 0;
    suite.server.script(
      'manifest "coder"',
      [() => (k < files.length ? turn.toolUse("file_write", files[k++]!) : turn.text("wrote them"))],
      { repeatLast: true },
    );
    const spawned = await client.callTool({
      name: "aido_spawn_worlds",
      arguments: {
        task: "Write the ideas.",
        worlds: 2,
        manifest: {
          name: "coder",
          model: MODEL,
          system_prompt: "You explore.",
          capabilities: ["tool: file_write", "file_write: /workspace/**"],
          limits: { max_iterations: 40 },
        },
      },
    });
    expect(spawned.isError ?? false, textOf(spawned)).toBe(false);
    const { worlds } = JSON.parse(textOf(spawned)) as {
      worlds: { world_id: string; diff: { counts: { added: number } } }[];
    };
    const chosen = worlds.find((w) => w.diff.counts.added > 0);
    if (!chosen) throw new Error(`no world wrote anything: ${textOf(spawned)}`);
    const abort = new AbortController();
    const call = client
      .callTool({ name: "aido_adopt_world", arguments: { world_id: chosen.world_id } }, undefined, {
        signal: abort.signal,
      })
      .catch((e: Error) => e);
    // Once it runs: its first path has landed in the project. Not at tool.invoked: the gate's
    // snapshot comes after that, and a cancel during it ends the call before the tool runs.
    await until(async () => readdirSync(suite.project).some((f) => f.startsWith("idea-")), 30_000);
    abort.abort();
    await call;
    await until(async () => (await entries("world.adopted")).length === 1, 30_000);
    const [adopted] = await entries("world.adopted");
    expect(adopted?.payload).toMatchObject({
      world_id: chosen.world_id,
      paths_applied: chosen.diff.counts.added,
      paths_failed: 0,
    });
    const landed = readdirSync(suite.project).filter((f) => f.startsWith("idea-"));
    expect(landed).toHaveLength(chosen.diff.counts.added);
    expect((await entries("tool.failed")).map((e) => (e.payload as { tool: string }).tool)).not.toContain(
      "adopt_world",
    );
  }, 120_000);
});

describe("worlds the client cancels while they run", () => {
  it("are stopped and discarded (children stopped, containers removed, budget back but for the calls in flight), and the session spawns worlds again", async () => {
    const fx = await suite.start();
    const file = join(dirname(suite.project), "worlds-session.yaml");
    writeFileSync(file, WORLDS_SESSION);
    const client = await suite.connect({ args: ["--manifest", file] });
    const coder = {
      name: "coder",
      model: MODEL,
      system_prompt: "You explore.",
      capabilities: ["tool: file_write", "file_write: /workspace/**"],
      limits: { max_iterations: 40 },
    };
    // Each child writes a file in its world (its container starts), then thinks for ever,
    // until the test lets the children of a later call answer at once.
    let hang = true;
    suite.server.script(
      'manifest "coder"',
      [
        (req) =>
          req.body.messages.length === 1
            ? turn.toolUse("file_write", { path: "/workspace/idea.md", content: "idea\n" })
            : hang
              ? turn.hang()
              : turn.text("done"),
      ],
      { repeatLast: true },
    );
    const q = await fx.client();
    const { agents } = await q.call("agent.list", {});
    const session = agents.find((a) => a.manifest === "worlds-session");
    if (!session) throw new Error("no session agent");
    const budgetBefore = (await q.call("agent.status", { agent_id: session.agent_id })).budget;

    const abort = new AbortController();
    const call = client
      .callTool(
        { name: "aido_spawn_worlds", arguments: { task: "Write an idea.", worlds: 3, manifest: coder } },
        undefined,
        { signal: abort.signal },
      )
      .catch((e: Error) => e);
    // Every world's child wrote its file (its world's container runs) and waits on its model.
    await until(async () => (await entries("tool.completed")).length === 3, 60_000);
    const worldIds = (await entries("world.spawned")).map(
      (e) => (e.payload as { world_id: string }).world_id,
    );
    expect(worldIds).toHaveLength(3);
    expect(suite.containers().filter((n) => worldIds.some((w) => n.includes(w)))).toHaveLength(3);
    abort.abort();
    expect(await call).toBeInstanceOf(Error);

    // Stopped and discarded, on record once each; the call itself ended as cancelled.
    await until(async () => (await entries("world.discarded")).length === 3, 30_000);
    expect((await entries("world.discarded")).map((e) => e.payload)).toEqual(
      worldIds.map(() => expect.objectContaining({ reason: "the spawn_worlds call was cancelled" })),
    );
    expect((await entries("world.finished")).length, "a world of the cancelled call finished").toBe(0);
    const children = (await q.call("agent.list", { include_stopped: true })).agents.filter(
      (a) => a.manifest === "coder",
    );
    expect(children.map((a) => a.state)).toEqual(["stopped", "stopped", "stopped"]);
    await until(async () => (await entries("tool.failed")).length === 1, 10_000);
    expect((await entries("tool.failed")).map((e) => e.payload)).toEqual([
      expect.objectContaining({ tool: "spawn_worlds", code: "cancelled" }),
    ]);
    await until(() => !suite.containers().some((n) => worldIds.some((w) => n.includes(w))), 30_000);
    const budgetAfter = (await q.call("agent.status", { agent_id: session.agent_id })).budget;
    // Spent: what the children's tallies show, which counts their answered calls and each
    // one's model call in flight when it was stopped, charged its reservation (its request
    // was sent: budget.charged_aborted); nothing else: the rest of each child's carve-out is
    // back with the session.
    const used = children.reduce((n, a) => n + a.usage.input_tokens + a.usage.output_tokens, 0);
    const aborted = (await entries("budget.charged_aborted")).map(
      (e) => (e.payload as { charged: number }).charged,
    );
    expect(aborted, "each child's call in flight is charged once").toHaveLength(3);
    expect(used - aborted.reduce((a, b) => a + b, 0), "the answered calls' part").toBeGreaterThan(0);
    expect(budgetAfter, "the stopped children's budget is back with the session").toEqual({
      ...budgetBefore,
      spent: used,
    });

    // The session may spawn worlds again at once: nothing held against its max_children (4).
    hang = false;
    const again = await client.callTool({
      name: "aido_spawn_worlds",
      arguments: { task: "Write an idea.", worlds: 2, manifest: coder },
    });
    expect(again.isError ?? false, textOf(again)).toBe(false);
    expect((JSON.parse(textOf(again)) as { worlds: unknown[] }).worlds).toHaveLength(2);
  }, 150_000);
});

describe("calls beyond the session's connections and its queue", () => {
  it("are refused at once naming daemon.mcp_max_queued_calls, on record, never left to wait", async () => {
    const fx = await suite.start();
    writeFileSync(join(fx.home.config.home, "config.yaml"), "daemon:\n  mcp_max_queued_calls: 2\n");
    const client = await suite.connect();
    await client.callTool({ name: "file_read", arguments: { path: "/workspace/README.md" } });
    const aborts: AbortController[] = [];
    const calls: Promise<unknown>[] = [];
    const exec = () => {
      const abort = new AbortController();
      aborts.push(abort);
      const p = client
        .callTool({ name: "exec", arguments: { command: "echo waits" } }, undefined, { signal: abort.signal })
        .catch((e: Error) => e);
      calls.push(p);
      return p;
    };
    // Each holds a connection while it waits for a human (nobody answers), two more wait for one.
    for (let i = 0; i < MAX_CALL_CONNECTIONS; i++) exec();
    const human = await fx.client();
    await until(
      async () => (await human.call("approval.list", {})).approvals.length === MAX_CALL_CONNECTIONS,
      30_000,
    );
    exec();
    exec();
    await sleep(300);
    const over = await Promise.race([exec(), sleep(10_000).then(() => "hung" as const)]);
    expect(over).not.toBe("hung");
    expect((over as { isError?: boolean }).isError).toBe(true);
    expect(textOf(over)).toContain("(daemon.mcp_max_queued_calls 2)");
    await until(async () => (await entries("session.call_refused")).length === 1);
    expect((await entries("session.call_refused"))[0]).toMatchObject({ payload: { tool: "(call queue)" } });
    // A flood past the queue: every call refused, on record as a count, not an entry each.
    const flood = await Promise.all(Array.from({ length: 100 }, () => exec()));
    for (const r of flood) expect(textOf(r)).toContain("(daemon.mcp_max_queued_calls 2)");
    await sleep(2_500);
    const refused = (await entries("session.call_refused")).map((e) =>
      String((e.payload as { reason?: unknown }).reason),
    );
    expect(refused.length).toBeLessThanOrEqual(4);
    const told = refused.reduce((n, r) => n + Number(/^(\d+) more call\(s\) refused/.exec(r)?.[1] ?? 1), 0);
    expect(told).toBe(101);
    for (const a of aborts) a.abort();
    await Promise.all(calls);
  }, 90_000);
});
