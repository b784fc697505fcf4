// A call made on a goal frozen by its node's fence (cluster/fence.ts: docker pause) waits for the
// thaw (sandbox/frozen-goals.ts): on the goal's sandbox (docker-sandbox.ts), and for an MCP
// server of the goal, its start, connect and tool listing (tools/mcp/goal-connections.ts,
// connection.ts). Those waits did not take the caller's signal: a call cancelled meanwhile
// (goal.cancel, the agent stopped, a timeout) stayed pending until the thaw or the goal's removal,
// and then ran. Now the wait ends with the caller's cancel, nothing runs in the container, and
// nothing is left behind: no listener on the signal, no waiter on the frozen goal.

import { getEventListeners } from "node:events";
import { existsSync } from "node:fs";
import { join } from "node:path";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { McpServerConfig } from "../../src/config.js";
import { openDatabase } from "../../src/db/database.js";
import { isAidoError } from "../../src/errors.js";
import { goalFolders } from "../../src/sandbox/folders.js";
import type { FrozenGoals } from "../../src/sandbox/frozen-goals.js";
import { lazySandbox } from "../../src/sandbox/lazy.js";
import { mcpContainerName } from "../../src/sandbox/mcp-container.js";
import { AuditLog } from "../../src/security/audit.js";
import { RuntimeKey } from "../../src/security/keys.js";
import { GoalConnections } from "../../src/tools/mcp/goal-connections.js";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

let fx: SandboxFixture;
beforeAll(() => {
  fx = makeSandboxFixture(() => {});
});
afterAll(async () => {
  await fx?.cleanup();
});

const frozenGoals = () => (fx.backend as unknown as { frozen: FrozenGoals }).frozen;

/** Settles with what `p` settled with, or "pending" after `ms`. */
const within = <T>(p: Promise<T>, ms: number): Promise<T | "pending"> =>
  Promise.race([p, new Promise<"pending">((r) => setTimeout(() => r("pending"), ms))]);

describe("a call cancelled while its goal is frozen", () => {
  it("ends at once with the cancel error on the goal's sandbox, and never runs", async () => {
    const goalId = "frozen-cancel-exec";
    const sb = await fx.backend.acquire(goalId);
    await sb.exec({ confinement: "unconfined", command: "true" }); // its executor is up
    await fx.backend.pause(goalId);
    try {
      const caller = new AbortController();
      const calling = sb
        .exec({ confinement: "unconfined", command: "touch /workspace/ran", signal: caller.signal })
        .then(
          () => "ran",
          (e: unknown) => e,
        );
      await new Promise((r) => setTimeout(r, 300));
      caller.abort(new Error("the goal was cancelled"));
      const settled = await within(calling, 1_000);
      expect(isAidoError(settled, "cancelled")).toBe(true);
      expect((settled as Error).message).toBe("sandbox call exec was cancelled");
      expect(getEventListeners(caller.signal, "abort")).toHaveLength(0);
      expect(frozenGoals().waiting(goalId)).toBe(0);
    } finally {
      await fx.backend.unpause(goalId);
    }
    await new Promise((r) => setTimeout(r, 500));
    expect(existsSync(join(goalFolders(fx.config.goalsDir, goalId).workspace, "ran"))).toBe(false);
    await fx.backend.remove(goalId);
  }, 120_000);

  it("leaves no waiter behind over many cancels, and no listener on a signal its calls thawed with", async () => {
    const goalId = "frozen-cancel-many";
    const sb = await fx.backend.acquire(goalId);
    await sb.exec({ confinement: "unconfined", command: "true" });
    await fx.backend.pause(goalId);
    const agent = new AbortController(); // never aborted: the agent's own signal, shared by its calls
    try {
      const cancelled: Promise<unknown>[] = [];
      for (let i = 0; i < 200; i++) {
        const caller = new AbortController();
        cancelled.push(
          sb.exec({ confinement: "unconfined", command: "true", signal: caller.signal }).catch((e) => e),
        );
        caller.abort();
      }
      const ended = await within(Promise.all(cancelled), 1_000);
      expect(ended).not.toBe("pending");
      expect((ended as unknown[]).every((e) => isAidoError(e, "cancelled"))).toBe(true);
      expect(frozenGoals().waiting(goalId)).toBe(0);
      const thawing = [1, 2, 3].map(() =>
        sb.exec({ confinement: "unconfined", command: "echo on", signal: agent.signal }),
      );
      await new Promise((r) => setTimeout(r, 200));
      expect(frozenGoals().waiting(goalId)).toBe(3);
      await fx.backend.unpause(goalId);
      for (const r of await Promise.all(thawing)) expect(r.stdout.trim()).toBe("on");
      expect(getEventListeners(agent.signal, "abort")).toHaveLength(0);
    } finally {
      await fx.backend.unpause(goalId);
      await fx.backend.remove(goalId);
    }
  }, 120_000);

  it("ends at once when it is the goal's first, its container not acquired yet, and never runs", async () => {
    // The kernel's handle (kernel/goal-sandboxes.ts): the container acquired on the first call,
    // which waits for the thaw in acquire; one that passed the gate's hold as the fence fell.
    const goalId = "frozen-cancel-first";
    await fx.backend.pause(goalId);
    const sb = lazySandbox(goalId, () => fx.backend.acquire(goalId));
    try {
      const caller = new AbortController();
      const calling = sb
        .exec({ confinement: "unconfined", command: "touch /workspace/ran", signal: caller.signal })
        .then(
          () => "ran",
          (e: unknown) => e,
        );
      await new Promise((r) => setTimeout(r, 300));
      caller.abort(new Error("the goal was cancelled"));
      const settled = await within(calling, 1_000);
      expect(isAidoError(settled, "cancelled")).toBe(true);
      expect(getEventListeners(caller.signal, "abort")).toHaveLength(0);
      await fx.backend.unpause(goalId);
      // The next call, after the thaw, runs in the goal's container.
      const r = await sb.exec({ confinement: "unconfined", command: "echo on", timeoutMs: 30_000 });
      expect(r.stdout.trim()).toBe("on");
      expect(existsSync(join(goalFolders(fx.config.goalsDir, goalId).workspace, "ran"))).toBe(false);
    } finally {
      await fx.backend.unpause(goalId);
      await fx.backend.remove(goalId);
    }
  }, 120_000);

  it("ends a file call at once too when it is the goal's first, and its write never lands", async () => {
    // The file tools' first call (realpath of its path, then the write) waited in acquire for
    // the thaw whatever its caller did: only exec took its cancel there.
    const goalId = "frozen-cancel-first-file";
    await fx.backend.pause(goalId);
    const sb = lazySandbox(goalId, () => fx.backend.acquire(goalId));
    try {
      const caller = new AbortController();
      const settle = (p: Promise<unknown>) =>
        p.then(
          () => "ran",
          (e: unknown) => e,
        );
      const resolving = settle(sb.realpath("/workspace/new.txt", { signal: caller.signal }));
      const writing = settle(sb.writeFile("/workspace/new.txt", "x", { signal: caller.signal }));
      const reading = settle(sb.readFile("/workspace/new.txt", { signal: caller.signal }));
      await new Promise((r) => setTimeout(r, 300));
      caller.abort(new Error("the agent stopped"));
      for (const call of [resolving, writing, reading])
        expect(isAidoError(await within(call, 1_000), "cancelled")).toBe(true);
      expect(getEventListeners(caller.signal, "abort")).toHaveLength(0);
      await fx.backend.unpause(goalId);
      expect(await sb.stat("/workspace/new.txt")).toBeNull();
      expect(existsSync(join(goalFolders(fx.config.goalsDir, goalId).workspace, "new.txt"))).toBe(false);
    } finally {
      await fx.backend.unpause(goalId);
      await fx.backend.remove(goalId);
    }
  }, 120_000);

  it("gives the goal's acquire up once every call waiting for it cancelled: no container is made for nobody", async () => {
    // The acquire took no signal: past every caller's cancel it waited for the thaw, then made the
    // goal a container nobody waited for. One caller leaving does not end it for another.
    const goalId = "frozen-cancel-acquire";
    const name = fx.backend.containerName(goalId);
    const docker = new Docker();
    const exists = () =>
      docker
        .getContainer(name)
        .inspect()
        .then(
          () => true,
          () => false,
        );
    await fx.backend.pause(goalId);
    const sb = lazySandbox(goalId, (signal) => fx.backend.acquire(goalId, { signal }));
    try {
      const first = new AbortController();
      const second = new AbortController();
      const one = sb.realpath("/workspace", { signal: first.signal }).catch((e: unknown) => e);
      const two = sb.stat("/workspace", { signal: second.signal }).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 300));
      expect(frozenGoals().waiting(goalId)).toBe(1); // the one acquire, for both
      first.abort(new Error("the agent stopped"));
      expect(isAidoError(await within(one, 1_000), "cancelled")).toBe(true);
      expect(frozenGoals().waiting(goalId)).toBe(1); // still the second's
      second.abort(new Error("the goal was cancelled"));
      expect(isAidoError(await within(two, 1_000), "cancelled")).toBe(true);
      expect(frozenGoals().waiting(goalId)).toBe(0);
      await fx.backend.unpause(goalId);
      await new Promise((r) => setTimeout(r, 3_000));
      expect(await exists()).toBe(false);
      // The next call acquires afresh, after the thaw.
      expect(await sb.realpath("/workspace/../workspace")).toBe("/workspace");
      expect(await exists()).toBe(true);
    } finally {
      await fx.backend.unpause(goalId);
      await fx.backend.remove(goalId);
    }
  }, 120_000);
});

/** A stdio MCP server with one tool. */
const server = (name: string): McpServerConfig => ({
  name,
  transport: "stdio",
  command: [
    "node",
    "-e",
    `let b = "";
process.stdin.on("data", (d) => {
  b += d;
  let i;
  while ((i = b.indexOf("\\n")) >= 0) {
    const m = JSON.parse(b.slice(0, i)); b = b.slice(i + 1);
    const send = (result) => process.stdout.write(JSON.stringify({ jsonrpc: "2.0", id: m.id, result }) + "\\n");
    if (m.method === "initialize") send({ protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: "one", version: "1" } });
    else if (m.method === "tools/list") send({ tools: [{ name: "one", inputSchema: { type: "object" } }] });
    else if (m.id !== undefined) send({});
  }
});`,
  ],
  env: {},
  workspace: "none",
  mounts: [],
  readOnlyTools: [],
  timeoutMs: 10_000,
});

describe("a call waiting for its frozen goal's MCP server to be started and connected", () => {
  const docker = new Docker();
  const exists = (name: string) =>
    docker
      .getContainer(name)
      .inspect()
      .then(
        () => true,
        () => false,
      );

  it("ends at once when its caller cancels it; the server is not started, and no failure is counted", async () => {
    const goalId = "frozen-cancel-mcp";
    await fx.backend.acquire(goalId);
    const db = openDatabase(fx.config.dbPath);
    const audit = new AuditLog({ db, signer: RuntimeKey.load(fx.config.keysDir) });
    const goal = new GoalConnections(goalId, {
      audit,
      connectDeps: () => ({
        headerValue: () => undefined,
        startStdio: (s, signal) =>
          fx.backend.startMcpServer(
            { goalId, server: s.name, command: s.command, env: {}, workspace: "none", mounts: [] },
            signal,
          ),
      }),
    });
    const one = server("one");
    await fx.backend.pause(goalId);
    try {
      // Two calls wait for the connection: the first cancelled, the open goes on for the other.
      const first = new AbortController();
      const second = new AbortController();
      const firstCall = goal.connection(one, first.signal).catch((e: unknown) => e);
      const secondCall = goal.connection(one, second.signal).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 300));
      first.abort(new Error("the agent stopped"));
      expect(((await within(firstCall, 1_000)) as Error).message).toBe("the agent stopped");
      expect(goal.waiting("one")).toBe(1);
      // The second cancelled too: the open is given up, the server never started.
      second.abort(new Error("the goal was cancelled"));
      expect(((await within(secondCall, 1_000)) as Error).message).toBe("the goal was cancelled");
      expect(getEventListeners(first.signal, "abort")).toHaveLength(0);
      expect(getEventListeners(second.signal, "abort")).toHaveLength(0);
      expect(frozenGoals().waiting(goalId)).toBe(0);
      await fx.backend.unpause(goalId);
      await new Promise((r) => setTimeout(r, 1_000));
      expect(await exists(mcpContainerName(goalId, "one"))).toBe(false);
      expect(audit.query({ goal_id: goalId }).filter((e) => e.kind === "mcp.unreachable")).toEqual([]);
      // Not counted against the server: the next call connects at once.
      const conn = await goal.connection(one, new AbortController().signal);
      expect([...conn.tools.keys()]).toEqual(["one"]);
    } finally {
      await fx.backend.unpause(goalId);
      await goal.close();
      await fx.backend.remove(goalId);
      db.close();
    }
  }, 120_000);
});
