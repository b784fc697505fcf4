// A call whose caller has gone does not run (gate/cancel.ts). Its signal aborts when its agent
// stops or the socket client that made a tool.invoke leaves. Before, only the approval wait and
// the cluster hold looked at it: a file_write that needed no approval was audited as
// tool.invoked and wrote its file after its agent had stopped. Now it is refused before
// tool.invoked (tool.denied, code cancelled, the stage it was at), once, and nothing is written.
// The real agent loop (scripted provider, real SDK) and the runtime's tool.invoke entry, on the
// real engine behind a socket that holds the goal container's start until the test has aborted
// (test/support/engine-proxy.ts): the abort lands while the gate awaits the container.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import type { AidoError } from "../../src/errors.js";
import { GateDenied } from "../../src/gate/invoke.js";
import type { RuntimeEvent } from "../../src/kernel/events.js";
import { DockerBackend } from "../../src/sandbox/docker.js";
import { goalFolders } from "../../src/sandbox/folders.js";
import type { SandboxHandle } from "../../src/sandbox/types.js";
import type { AuditEntry } from "../../src/security/audit-events.js";
import { type Harness, openHarness, useHarnessSuite } from "../agent/harness.js";
import { until } from "../daemon/process.js";
import { requireDocker } from "../support/docker.js";
import { type EngineProxy, engineProxy } from "../support/engine-proxy.js";
import { latch, type ProviderServer, turn } from "../support/provider-server.js";

let server: ProviderServer;
let h: Harness | undefined;
let engine: EngineProxy | undefined;
let backend: DockerBackend | undefined;
/** What the engine proxy does with a request (see engineProxy): hold the goal's start while set. */
let answer: (line: string) => { holdUntil: Promise<unknown> } | undefined = () => undefined;

useHarnessSuite(
  (s) => (server = s),
  () => h,
);
afterEach(async () => {
  await backend?.removeAll();
  await engine?.close();
  h = undefined;
  backend = undefined;
  engine = undefined;
  answer = () => undefined;
});

const writer = (name: string) => ({
  name,
  system_prompt: "writes",
  capabilities: [
    "tool: file_write",
    "tool: exec",
    "file_write: /workspace/**",
    "file_read: /workspace/**",
    "exec: sh *",
    "exec: touch *",
  ],
  budget: { max_tokens: 100_000 },
  memory: { episodic: false },
});

async function open(): Promise<Harness> {
  requireDocker();
  engine = await engineProxy((line) => answer(line));
  const docker = engine.docker;
  h = await openHarness(server, {
    config: (c) => {
      c.policy.snapshotBeforeMutation = false;
      c.sandbox.warmPool = 0; // each goal's container is made for it, through the proxy
    },
    backendOf: (c) => {
      backend = new DockerBackend(c, { labels: { "aido.test": "sandbox" }, docker });
      return backend;
    },
  });
  return h;
}

/** Hold the next container start until the returned latch opens; `held` resolves once one is held. */
function holdStart(): { held: Promise<void>; release: () => void } {
  const gate = latch();
  let seen!: () => void;
  const held = new Promise<void>((r) => (seen = r));
  answer = (line) => {
    if (!/^POST \S*\/containers\/[0-9a-f]{64}\/start/.test(line)) return undefined;
    seen();
    return { holdUntil: gate.promise };
  };
  return { held, release: () => gate.open() };
}

const toolEntries = (rt: Harness["rt"], agentId: string): AuditEntry[] =>
  rt.audit.query({ agent_id: agentId }).filter((e) => e.kind.startsWith("tool."));

async function auditVerifies(env: Harness["home"]["env"]): Promise<number> {
  const io = { out: () => {}, err: () => {}, interactive: false };
  return runCli(["audit", "verify"], io, env);
}

describe("a call whose caller has gone", () => {
  it("is refused, not written, when its agent stops while the gate waits for the goal's container (the agent loop)", async () => {
    const hh = await open();
    const start = holdStart();
    const events: RuntimeEvent[] = [];
    hh.rt.events.subscribe({}, (e) => events.push(e));
    server.script('manifest "loop-writer"', [
      turn.toolUse("file_write", { path: "/workspace/late.txt", content: "written after the stop" }),
      turn.text("done"),
    ]);
    const run = hh.rt.spawnAndRun(writer("loop-writer"), "Write it.").catch((e: unknown) => e);
    await start.held;
    const called = events.find((e) => e.type === "tool.called") as
      | (RuntimeEvent & { agentId: string; goalId: string })
      | undefined;
    expect(called).toBeDefined();
    const agentId = called!.agentId;
    const goalId = hh.rt.registry.require(agentId).goalId;
    hh.rt.stopAgent(agentId, "stopped while its call waited for the container");
    start.release();
    await run;
    await until(() => (toolEntries(hh.rt, agentId).length > 0 ? true : undefined), 30_000);
    // Let a run that slipped through land before looking.
    await new Promise((r) => setTimeout(r, 1_000));
    const entries = toolEntries(hh.rt, agentId);
    expect(entries.map((e) => [e.kind, e.payload])).toEqual([
      ["tool.denied", expect.objectContaining({ tool: "file_write", stage: "needs", code: "cancelled" })],
    ]);
    expect(String((entries[0]?.payload as { reason?: string } | undefined)?.reason)).toMatch(
      /cancelled before it ran/,
    );
    expect(existsSync(join(goalFolders(hh.home.config.goalsDir, goalId).workspace, "late.txt"))).toBe(false);
    expect(events.filter((e) => e.type === "tool.denied")).toHaveLength(1);
    expect(await auditVerifies(hh.home.env)).toBe(0);
  }, 180_000);

  it("is refused, not written, when the tool.invoke client leaves while the gate waits for the container", async () => {
    const hh = await open();
    const s = hh.rt.spawnAgent(writer("socket-writer"));
    const goalId = hh.rt.registry.require(s.agent_id).goalId;
    const start = holdStart();
    const client = new AbortController();
    const call = hh.rt
      .invokeTool(s.agent_id, "file_write", { path: "/workspace/late.txt", content: "x" }, client.signal)
      .then(
        () => undefined,
        (e: unknown) => e as AidoError,
      );
    await start.held;
    client.abort(new Error("the client that made the call disconnected"));
    start.release();
    const e = await call;
    expect(e).toBeInstanceOf(GateDenied);
    expect(e).toMatchObject({ code: "cancelled", stage: "needs" });
    await new Promise((r) => setTimeout(r, 1_000));
    expect(toolEntries(hh.rt, s.agent_id).map((x) => [x.kind, x.payload])).toEqual([
      ["tool.denied", expect.objectContaining({ tool: "file_write", stage: "needs", code: "cancelled" })],
    ]);
    expect(existsSync(join(goalFolders(hh.home.config.goalsDir, goalId).workspace, "late.txt"))).toBe(false);
  }, 180_000);

  it("is refused before anything when its signal is already aborted: file_write and exec in a running container", async () => {
    const hh = await open();
    const s = hh.rt.spawnAgent(writer("aborted-writer"));
    const goalId = hh.rt.registry.require(s.agent_id).goalId;
    const workspace = goalFolders(hh.home.config.goalsDir, goalId).workspace;
    // The goal's container is up (a call that ran): what follows would run at once.
    await hh.rt.invokeTool(s.agent_id, "file_write", { path: "/workspace/first.txt", content: "1" });
    const gone = AbortSignal.abort(new Error("the client that made the call disconnected"));
    const refused = (tool: string, input: unknown) =>
      hh.rt.invokeTool(s.agent_id, tool, input, gone).then(
        () => undefined,
        (e: unknown) => e as AidoError,
      );
    expect(await refused("file_write", { path: "/workspace/late.txt", content: "x" })).toMatchObject({
      code: "cancelled",
      stage: "schema",
    });
    expect(await refused("exec", { command: "touch /workspace/late-exec.txt" })).toMatchObject({
      code: "cancelled",
      stage: "schema",
    });
    expect(existsSync(join(workspace, "late.txt"))).toBe(false);
    expect(existsSync(join(workspace, "late-exec.txt"))).toBe(false);
    // Newest first: the two refusals, then the first call's run.
    expect(toolEntries(hh.rt, s.agent_id).map((x) => [x.kind, (x.payload as { tool: string }).tool])).toEqual(
      [
        ["tool.denied", "exec"],
        ["tool.denied", "file_write"],
        ["tool.completed", "file_write"],
        ["tool.invoked", "file_write"],
      ],
    );
    expect(await auditVerifies(hh.home.env)).toBe(0);
  }, 180_000);

  // File tools honour the call's cancel where they wait (tools/files.ts): a goal frozen by its
  // node's fence (DockerBackend.pause, what cluster/fence.ts calls) makes each sandbox call wait
  // for the thaw. Before, the file tools passed no signal: the call waited for the thaw and ran.
  it("is refused at stage needs when it is cancelled while its path waits on the frozen container", async () => {
    const hh = await open();
    const s = hh.rt.spawnAgent(writer("frozen-needs"));
    const goalId = hh.rt.registry.require(s.agent_id).goalId;
    await hh.rt.invokeTool(s.agent_id, "file_write", { path: "/workspace/first.txt", content: "1" });
    await backend!.pause(goalId);
    const client = new AbortController();
    const call = hh.rt
      .invokeTool(s.agent_id, "file_write", { path: "/workspace/late.txt", content: "x" }, client.signal)
      .then(
        () => undefined,
        (e: unknown) => e as AidoError,
      );
    await new Promise((r) => setTimeout(r, 1_000));
    client.abort(new Error("the client that made the call disconnected"));
    const e = await Promise.race([call, new Promise((r) => setTimeout(() => r("still waiting"), 5_000))]);
    await backend!.unpause(goalId);
    expect(e).toMatchObject({ code: "cancelled", stage: "needs" });
    await call;
    await new Promise((r) => setTimeout(r, 1_000));
    expect(existsSync(join(goalFolders(hh.home.config.goalsDir, goalId).workspace, "late.txt"))).toBe(false);
    expect(toolEntries(hh.rt, s.agent_id)[0]).toMatchObject({
      kind: "tool.denied",
      payload: { tool: "file_write", stage: "needs", code: "cancelled" },
    });
  }, 180_000);

  // exec's needs (its cwd, the paths its command names, the scripts it runs) are looked up in the
  // container too; none of those looks took the call's signal: a cancelled exec on a frozen goal
  // kept its caller waiting for the thaw (the gate then refused it).
  it("is refused at once at stage needs when an exec is cancelled while its paths wait on the frozen container", async () => {
    const hh = await open();
    const s = hh.rt.spawnAgent(writer("frozen-exec-needs"));
    const goalId = hh.rt.registry.require(s.agent_id).goalId;
    await hh.rt.invokeTool(s.agent_id, "file_write", { path: "/workspace/first.txt", content: "1" });
    await backend!.pause(goalId);
    const client = new AbortController();
    const call = hh.rt
      .invokeTool(s.agent_id, "exec", { command: "touch /workspace/late-exec.txt" }, client.signal)
      .then(
        () => undefined,
        (e: unknown) => e as AidoError,
      );
    await new Promise((r) => setTimeout(r, 1_000));
    client.abort(new Error("the client that made the call disconnected"));
    const e = await Promise.race([call, new Promise((r) => setTimeout(() => r("still waiting"), 5_000))]);
    await backend!.unpause(goalId);
    expect(e).toMatchObject({ code: "cancelled", stage: "needs" });
    await call;
    await new Promise((r) => setTimeout(r, 1_000));
    expect(existsSync(join(goalFolders(hh.home.config.goalsDir, goalId).workspace, "late-exec.txt"))).toBe(
      false,
    );
    expect(toolEntries(hh.rt, s.agent_id)[0]).toMatchObject({
      kind: "tool.denied",
      payload: { tool: "exec", stage: "needs", code: "cancelled" },
    });
  }, 180_000);

  // The workspace quota (sandbox/quota-sandbox.ts) looks at the file's size before a write is sent;
  // that look took no signal: a write cancelled while it waited there on a frozen goal kept its
  // caller waiting for the thaw. Through the goal's sandbox as the runtime holds it (quota, lazy).
  it("ends a write at once, not written, when it is cancelled while the quota's look waits on the frozen container", async () => {
    const hh = await open();
    const s = hh.rt.spawnAgent(writer("frozen-quota"));
    const goalId = hh.rt.registry.require(s.agent_id).goalId;
    await hh.rt.invokeTool(s.agent_id, "file_write", { path: "/workspace/first.txt", content: "1" });
    const sandbox = (
      hh.rt as unknown as { sandboxes: { handle(g: string): SandboxHandle } }
    ).sandboxes.handle(goalId);
    await backend!.pause(goalId);
    const caller = new AbortController();
    const writing = sandbox
      .writeFile("/workspace/late.txt", "x", { expect: "/workspace/late.txt", signal: caller.signal })
      .then(
        () => "written",
        (e: unknown) => e,
      );
    await new Promise((r) => setTimeout(r, 1_000));
    caller.abort(new Error("the agent stopped"));
    const e = await Promise.race([writing, new Promise((r) => setTimeout(() => r("still waiting"), 5_000))]);
    await backend!.unpause(goalId);
    expect(e).toMatchObject({ code: "cancelled" });
    await writing;
    await new Promise((r) => setTimeout(r, 1_000));
    expect(existsSync(join(goalFolders(hh.home.config.goalsDir, goalId).workspace, "late.txt"))).toBe(false);
  }, 180_000);

  it("ends as tool.failed, cancelled, not written, when cancelled while its run waits on the frozen container", async () => {
    const hh = await open();
    const s = hh.rt.spawnAgent({ ...writer("frozen-run"), approval_required: ["file_write"] });
    const goalId = hh.rt.registry.require(s.agent_id).goalId;
    const workspace = goalFolders(hh.home.config.goalsDir, goalId).workspace;
    const asked: string[] = [];
    hh.rt.events.subscribe({}, (e) => {
      if (e.type === "approval.requested") asked.push(e.approvalId);
    });
    const client = new AbortController();
    const call = hh.rt
      .invokeTool(s.agent_id, "file_write", { path: "/workspace/late.txt", content: "x" }, client.signal)
      .then(
        () => undefined,
        (e: unknown) => e as AidoError,
      );
    // Judged (its path resolved in the running container), waiting for a human: now frozen.
    const id = await until(() => asked[0], 60_000);
    await backend!.pause(goalId);
    hh.rt.approvals.respond(id, "allow_once");
    await until(
      () => (toolEntries(hh.rt, s.agent_id).some((x) => x.kind === "tool.invoked") ? true : undefined),
      30_000,
    );
    await new Promise((r) => setTimeout(r, 1_000));
    client.abort(new Error("the client that made the call disconnected"));
    const e = await Promise.race([call, new Promise((r) => setTimeout(() => r("still waiting"), 5_000))]);
    await backend!.unpause(goalId);
    expect(e).toMatchObject({ code: "cancelled" });
    await call;
    await new Promise((r) => setTimeout(r, 1_000));
    expect(existsSync(join(workspace, "late.txt"))).toBe(false);
    expect(toolEntries(hh.rt, s.agent_id).map((x) => [x.kind, x.payload])).toEqual([
      ["tool.failed", expect.objectContaining({ tool: "file_write", code: "cancelled" })],
      ["tool.invoked", expect.objectContaining({ tool: "file_write" })],
    ]);
  }, 180_000);
});
