// A goal's call waiting on its frozen container (cluster/fence.ts: the node's fence paused
// it) goes on only once the engine has unpaused it. The backend let waiting acquires go as it
// sent the unpause, and a call that went on at once had its exec refused by an engine still
// holding the container paused ("is paused, unpause the container before exec"). The engine
// here is the real one, behind a socket that holds every unpause request a while (an engine
// slow to unfreeze: cgroup freezer under load). A call made on a handle of the goal while it is
// frozen is sent only once it is unfrozen: before, it went to the frozen executor, and a freeze
// longer than its answer time (10 s for a path resolution) failed it. An MCP server started for
// the goal across a freeze and its lift (its create held here, the lift's unpause under way as
// it came) runs once the goal is unfrozen: it was frozen as it came, after the unpause had
// listed the goal's servers without it, and stayed frozen for good under a goal its node kept.
// A goal frozen again while its unpause is under way is frozen once that unpause has landed:
// the pause found its container still paused and left it, and the unpause let it run. A server
// started while its goal is frozen whose own freeze the engine refuses is stopped: it ran on
// unfrozen through the fence, held by no client, and the goal could never start it again. A
// freeze that fails for one of the goal's containers is answered once all its pauses are: it
// was answered at the first refusal, the lift's unpause then came before a pause still under
// way, and that pause froze the kept goal's container for good. The goal's own container made
// across a freeze whose late freeze the engine refuses is removed: it ran on unfrozen through the
// fence (only the calls on it waited), and the acquire failed; its calls now run, once the goal is
// unfrozen, in a fresh container. A call made on a frozen goal's MCP server is sent once the goal
// is unfrozen, its timeout not running meanwhile: it timed out against the frozen server. A
// container made in place of the goal's dead one across a freeze is frozen as it comes: it ran
// through the fence.

import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { McpServerSpec } from "../../src/sandbox/mcp-container.js";
import { McpConnection } from "../../src/tools/mcp/connection.js";
import { type EngineProxy, engineProxy } from "../support/engine-proxy.js";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

const HOLD_MS = 800;
/** How long the create of a container named with `holdCreateOf` is held. */
const CREATE_HOLD_MS = 1_500;
/** How long an unpause is held (the cases of a container made across a freeze hold it longer). */
let unpauseHoldMs = HOLD_MS;
let holdCreateOf: string | undefined;
/** Refuse the pause of a container named by its id (an MCP server's: the goal's is paused by name). */
let refuseIdPause = false;
/** Refuse the pause of the goal's own container (named after the goal). */
let refuseGoalPauseOf: string | undefined;
/** Hold the pause of the goal's own container (named after the goal) this long. */
let holdGoalPause: { goalId: string; ms: number } | undefined;

let engine: EngineProxy;
let fx: SandboxFixture;
beforeAll(async () => {
  engine = await engineProxy((line) => {
    if (/^POST \S+\/unpause$/.test(line)) return unpauseHoldMs;
    if (refuseIdPause && /^POST (\/v[\d.]+)?\/containers\/[0-9a-f]{64}\/pause$/.test(line)) return "refuse";
    if (holdGoalPause && line.endsWith(`_goal_${holdGoalPause.goalId}/pause`)) return holdGoalPause.ms;
    if (refuseGoalPauseOf && line.endsWith(`_goal_${refuseGoalPauseOf}/pause`)) return "refuse";
    if (holdCreateOf && /^POST (\/v[\d.]+)?\/containers\/create\?/.test(line) && line.includes(holdCreateOf))
      return CREATE_HOLD_MS;
    return undefined;
  });
  fx = makeSandboxFixture(() => {}, { docker: engine.docker });
});
afterAll(async () => {
  await fx?.cleanup();
  await engine?.close();
});

describe("a call waiting on its goal's frozen container", () => {
  it("runs once the engine has unpaused it, not as the unpause is sent", async () => {
    const goalId = "unpause-order";
    await fx.backend.acquire(goalId);
    await fx.backend.pause(goalId);
    const waiting = fx.backend
      .acquire(goalId)
      .then((sb) => sb.exec({ confinement: "unconfined", command: "echo went-on" }));
    await fx.backend.unpause(goalId);
    const r = await waiting;
    expect(r.stdout.trim()).toBe("went-on");
  }, 120_000);

  it("sends a call made on a frozen goal's handle only once it is unfrozen: the freeze does not use up its answer time", async () => {
    const goalId = "unpause-handle";
    const sb = await fx.backend.acquire(goalId);
    await fx.backend.pause(goalId);
    let settled = false;
    const resolving = sb.realpath("/workspace").finally(() => {
      settled = true;
    });
    // Longer than a path resolution's answer time (10 s, docker-sandbox.ts).
    await new Promise((r) => setTimeout(r, 11_000));
    expect(settled).toBe(false);
    await fx.backend.unpause(goalId);
    expect(await resolving).toBe("/workspace");
  }, 120_000);

  it("holds its waiting calls, and its container frozen, when it is frozen again while an unpause is under way", async () => {
    const goalId = "unpause-again";
    const sb = await fx.backend.acquire(goalId);
    await fx.backend.pause(goalId);
    let went = false;
    const waiting = fx.backend.acquire(goalId).then(() => {
      went = true;
    });
    const unpausing = fx.backend.unpause(goalId);
    await fx.backend.pause(goalId); // the fence falls again while the engine unfreezes
    await unpausing;
    await new Promise((r) => setTimeout(r, 200));
    expect(went).toBe(false);
    // Frozen, not let run by the unpause that landed after the pause had found it still paused.
    expect(await stateOf(sb.containerId)).toBe("paused");
    await fx.backend.unpause(goalId);
    await waiting;
    expect(went).toBe(true);
  }, 120_000);
});

const docker = new Docker();
const stateOf = (id: string) =>
  docker
    .getContainer(id)
    .inspect()
    .then(
      (c) => (c.State.Paused ? "paused" : c.State.Status),
      () => "gone",
    );

/** A stdio MCP server that reads its stdin and answers nothing: a container that runs. */
const idleServer = (goalId: string): McpServerSpec => ({
  goalId,
  server: "idle",
  command: ["node", "-e", "process.stdin.resume()"],
  workspace: "none",
  mounts: [],
});

describe("an MCP server started for a goal across its freeze and the lift", () => {
  /** Its create held, the goal frozen and its unpause sent meanwhile (a stall's fence, lifted at once). */
  async function acrossFreeze<T>(goalId: string, holdName: string, make: () => Promise<T>): Promise<T> {
    holdCreateOf = holdName;
    unpauseHoldMs = 2 * CREATE_HOLD_MS + 1_000;
    try {
      const making = make();
      await fx.backend.pause(goalId); // it is not the goal's yet: its create is held
      await fx.backend.unpause(goalId); // it comes while the engine unfreezes the goal
      return await making;
    } finally {
      holdCreateOf = undefined;
      unpauseHoldMs = HOLD_MS;
    }
  }

  it("runs once the goal is unfrozen: the unpause under way did not list it", async () => {
    const goalId = "unpause-late-server";
    await fx.backend.acquire(goalId);
    const spec = idleServer(goalId);
    const server = await acrossFreeze(goalId, `aido-mcp-${goalId}-`, () => fx.backend.startMcpServer(spec));
    expect(await stateOf(server.containerId)).toBe("running");
    await fx.backend.remove(goalId);
  }, 120_000);

  it("stops a server started meanwhile whose freeze the engine refused: the goal can start it again", async () => {
    const goalId = "unpause-late-refused";
    await fx.backend.acquire(goalId);
    const spec = idleServer(goalId);
    holdCreateOf = `aido-mcp-${goalId}-`;
    refuseIdPause = true;
    let refused: unknown;
    try {
      const starting = fx.backend.startMcpServer(spec).catch((e: unknown) => {
        refused = e;
      });
      await fx.backend.pause(goalId); // its create is held: it comes while the goal is frozen
      await starting;
    } finally {
      holdCreateOf = undefined;
      refuseIdPause = false;
    }
    expect(String(refused)).toMatch(/pausing container/);
    const left = await docker.listContainers({ all: true, filters: { name: [`aido-mcp-${goalId}-`] } });
    expect(left.map((c) => c.State)).toEqual([]);
    await fx.backend.unpause(goalId);
    const again = await fx.backend.startMcpServer(spec);
    expect(await stateOf(again.containerId)).toBe("running");
    await fx.backend.remove(goalId);
  }, 120_000);

  it("answers a freeze one of whose pauses the engine refused once all are answered: the lift's unpause comes after", async () => {
    const goalId = "unpause-partial";
    const sb = await fx.backend.acquire(goalId);
    await fx.backend.startMcpServer(idleServer(goalId));
    refuseIdPause = true;
    holdGoalPause = { goalId, ms: 1_500 };
    try {
      await expect(fx.backend.pause(goalId)).rejects.toThrow(/pausing container/);
    } finally {
      refuseIdPause = false;
    }
    await fx.backend.unpause(goalId); // the lift: the goal is still the node's
    await new Promise((r) => setTimeout(r, 2_000)); // past the held pause
    holdGoalPause = undefined;
    expect(await stateOf(sb.containerId)).toBe("running");
    await fx.backend.remove(goalId);
  }, 120_000);
});

describe("the goal's own container made across its freeze", () => {
  it("is removed when the engine refuses to freeze it, and its calls run in a fresh one once the goal is unfrozen", async () => {
    const goalId = "unpause-own-refused";
    const name = fx.backend.containerName(goalId);
    holdCreateOf = `_goal_${goalId}`;
    refuseGoalPauseOf = goalId;
    let acquired: Awaited<ReturnType<typeof fx.backend.acquire>>;
    try {
      const acquiring = fx.backend.acquire(goalId);
      await fx.backend.pause(goalId); // its create is held: it comes while the goal is frozen
      acquired = await acquiring;
    } finally {
      holdCreateOf = undefined;
      refuseGoalPauseOf = undefined;
    }
    // Not left running through the fence.
    expect(await stateOf(name)).toBe("gone");
    let went = false;
    const echo = acquired.exec({ confinement: "unconfined", command: "echo fresh" }).finally(() => {
      went = true;
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(went).toBe(false);
    await fx.backend.unpause(goalId);
    expect((await echo).stdout.trim()).toBe("fresh");
    expect(await stateOf(name)).toBe("running");
    await fx.backend.remove(goalId);
  }, 120_000);
});

/** A stdio MCP server that answers: `echo` returns its text. */
const echoServer = (goalId: string): McpServerSpec => ({
  goalId,
  server: "echo",
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
    if (m.method === "initialize") send({ protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: "echo", version: "1" } });
    else if (m.method === "tools/list") send({ tools: [{ name: "echo", inputSchema: { type: "object" } }] });
    else if (m.method === "tools/call") send({ content: [{ type: "text", text: m.params.arguments.text }] });
    else if (m.id !== undefined) send({});
  }
});`,
  ],
  workspace: "none",
  mounts: [],
});

describe("a call made on a frozen goal's MCP server", () => {
  it("is sent once the goal is unfrozen: the freeze does not use up its timeout", async () => {
    const goalId = "unpause-mcp-call";
    await fx.backend.acquire(goalId);
    const config = {
      name: "echo",
      transport: "stdio" as const,
      command: [],
      env: {},
      workspace: "none" as const,
      mounts: [],
      readOnlyTools: [],
      timeoutMs: 3_000,
    };
    const conn = await McpConnection.open(config, {
      headerValue: () => undefined,
      startStdio: () => fx.backend.startMcpServer(echoServer(goalId)),
    });
    try {
      await fx.backend.pause(goalId);
      let settled = false;
      const calling = conn.call("echo", { text: "thawed" }).finally(() => {
        settled = true;
      });
      await new Promise((r) => setTimeout(r, 4_000)); // past its timeout
      expect(settled).toBe(false);
      await fx.backend.unpause(goalId);
      expect((await calling).content).toEqual([{ type: "text", text: "thawed" }]);
    } finally {
      await conn.close();
      await fx.backend.remove(goalId);
    }
  }, 120_000);
});

describe("a goal's container replaced across its freeze", () => {
  it("is frozen as it comes, and its call runs once the goal is unfrozen", async () => {
    const goalId = "unpause-replaced";
    const name = fx.backend.containerName(goalId);
    const sb = await fx.backend.acquire(goalId);
    await sb.exec({ confinement: "unconfined", command: "true" });
    await docker.getContainer(name).kill();
    // The call that finds it dead fails; the next one replaces it.
    await expect(sb.exec({ confinement: "unconfined", command: "true" })).rejects.toThrow(/exited|removed/);
    holdCreateOf = `_goal_${goalId}`;
    let went = false;
    let echo: Promise<unknown> | undefined;
    try {
      echo = sb.exec({ confinement: "unconfined", command: "echo replaced" }).finally(() => {
        went = true;
      });
      await new Promise((r) => setTimeout(r, 300)); // its create is held
      await fx.backend.pause(goalId);
      await until(async () => ((await stateOf(name)) === "paused" ? true : undefined));
    } finally {
      holdCreateOf = undefined;
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(went).toBe(false);
    await fx.backend.unpause(goalId);
    expect(((await echo) as { stdout: string }).stdout.trim()).toBe("replaced");
    await fx.backend.remove(goalId);
  }, 120_000);
});

/** Resolves once `probe` gives a value (polled every 50 ms, at most 10 s). */
async function until<T>(probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("condition not met in time");
}
