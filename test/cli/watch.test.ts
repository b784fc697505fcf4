import { describe, expect, it } from "vitest";
import { withClusterStatus, withClusterUnseeded } from "../../src/cli/watch/cluster.js";
import { newActivityLines, renderFrame, summaryLines } from "../../src/cli/watch/render.js";
import { WatchScreen } from "../../src/cli/watch/screen.js";
import {
  initialWatchState,
  withGoalStatus,
  withGoalStatuses,
  withPendingApprovals,
} from "../../src/cli/watch/seed.js";
import { ENDED_GOALS_KEPT, exitCodeOf, reduceWatch, type WatchState } from "../../src/cli/watch/state.js";
import { fromWireEvent } from "../../src/cli/watch/wire.js";
import type { ClusterStatusResult } from "../../src/client/types.js";
import { toWireEvent } from "../../src/daemon/events.js";
import type { EventPayloads, EventType, RuntimeEvent } from "../../src/kernel/events.js";

let clock = 0;
function ev<T extends EventType>(
  type: T,
  payload: EventPayloads[T],
  goalId: string | null = "g1",
): RuntimeEvent {
  clock++;
  const time = `2025-01-01T10:00:${String(clock % 60).padStart(2, "0")}.000Z`;
  return { type, time, goalId, ...payload } as RuntimeEvent;
}

/** When a cluster.status was read, and a later one. */
const AT = "2025-01-01T10:00:06.000Z";
const LATER = "2025-01-01T10:00:12.000Z";

/** A node as cluster.status lists it. */
const clusterNode = {
  node_id: "n1",
  alive: true,
  last_heartbeat: "2025-01-01T10:00:05.000Z",
  key_id: "k1",
  host: "h",
  pid: 1,
  running: 1,
  capacity: 4,
  goals: ["g1"],
};

/** cluster.status on n1 with Redis read: n1 and n2 (`onRedisLoss` its fence's setting). */
function clusterRead(onRedisLoss: "hold" | "finish"): ClusterStatusResult {
  return {
    enabled: true,
    node_id: "n1",
    fence: { on_redis_loss: onRedisLoss, fenced: false },
    nodes: [clusterNode, { ...clusterNode, node_id: "n2", running: 0 }],
    redis: { persistence: "aof" },
  } as ClusterStatusResult;
}

const run = (events: RuntimeEvent[], s: WatchState = initialWatchState({ goalId: "g1" })) =>
  events.reduce(reduceWatch, s);

const spawn = (agentId: string, manifest: string, parentId?: string, depth = 0) =>
  ev("agent.spawned", {
    agentId,
    manifest,
    depth,
    model: "anthropic/claude-test",
    ...(parentId ? { parentId } : {}),
  });

describe("watch reducer", () => {
  it("builds the agent tree from spawn events, with states", () => {
    const s = run([
      ev("goal.started", { agentId: "a1" }),
      spawn("a1", "bootstrap"),
      ev("agent.state", { agentId: "a1", state: "running" }),
      spawn("a2", "researcher", "a1", 1),
      spawn("a3", "writer", "a1", 1),
      ev("agent.stopped", { agentId: "a2", reason: "finished", state: "stopped" }),
    ]);
    expect(s.agentOrder).toEqual(["a1", "a2", "a3"]);
    expect(s.agents.a1?.state).toBe("running");
    expect(s.agents.a2?.state).toBe("stopped");
    expect(s.agents.a3?.parentId).toBe("a1");
    const frame = renderFrame(s, 200).join("\n");
    expect(frame).toMatch(/● bootstrap/);
    expect(frame).toMatch(/├─ ✓ researcher .*stopped \(finished\)/);
    expect(frame).toMatch(/└─ ○ writer/);
  });

  it("shows each agent's description in its tree line, from spawn events and from agent.list", () => {
    const s = run(
      [
        ev("agent.spawned", {
          agentId: "a2",
          manifest: "writer",
          description: "Turns notes\ninto documents.",
          parentId: "a1",
          depth: 1,
          model: "m",
        }),
      ],
      initialWatchState({
        goalId: "g1",
        agents: [
          {
            agent_id: "a1",
            goal_id: "g1",
            parent_id: null,
            manifest: "bootstrap",
            description: "Decomposes the goal.",
            model: "m",
            state: "running",
            depth: 0,
          },
        ],
      }),
    );
    const frame = renderFrame(s, 200).join("\n");
    expect(frame).toMatch(/● bootstrap .*— Decomposes the goal\./);
    expect(frame).toMatch(/└─ ○ writer .*— Turns notes into documents\./);
    expect(newActivityLines(s, 0).join("\n")).toContain("spawned writer (m): Turns notes into documents.");
  });

  it("adds token usage to the agent and the goal, and shows it against the budget", () => {
    const s = run(
      [
        spawn("a1", "bootstrap"),
        ev("usage", { agentId: "a1", input_tokens: 1000, output_tokens: 200 }),
        ev("usage", { agentId: "a1", input_tokens: 500, output_tokens: 300 }),
      ],
      initialWatchState({ goalId: "g1", budgetTokens: 20_000 }),
    );
    expect(s.agents.a1).toMatchObject({ inputTokens: 1500, outputTokens: 500 });
    expect(s.goals.g1).toMatchObject({ inputTokens: 1500, outputTokens: 500 });
    expect(renderFrame(s).join("\n")).toContain("tokens 2,000 (in 1,500, out 500) of 20,000 budget (10.0%)");
  });

  it("tracks the inference queue per provider: waiting, then in flight, then done", () => {
    const q = (agentId: string) =>
      ev("inference.queued", { agentId, provider: "anthropic", model: "m", queued: 1 });
    const start = (agentId: string) =>
      ev("inference.started", { agentId, provider: "anthropic", model: "m", waitMs: 1, inFlight: 1 });
    const done = (agentId: string, ok = true) =>
      ev("inference.finished", {
        agentId,
        provider: "anthropic",
        model: "m",
        waitMs: 1,
        runMs: 5,
        ok,
        ...(ok ? {} : { error: "HTTP 529 overloaded" }),
      });
    let s = run([q("a1"), q("a2"), q("a3"), start("a1"), start("a2")]);
    expect(s.inference.anthropic).toEqual({ waiting: ["a3"], inFlight: ["a1", "a2"] });
    expect(renderFrame(s).join("\n")).toContain("anthropic: 2 in flight, 1 waiting");
    s = run([done("a1"), start("a3"), done("a2", false), done("a3")], s);
    expect(s.inference.anthropic).toEqual({ waiting: [], inFlight: [] });
    expect(renderFrame(s).join("\n")).toContain("inference  idle");
    expect(s.activity.map((a) => a.text)).toContain("model call failed: HTTP 529 overloaded");
  });

  it("shows tool calls as they run and denials with their stage and reason", () => {
    let s = run([spawn("a1", "writer"), ev("tool.called", { agentId: "a1", tool: "exec", callId: "c1" })]);
    expect(renderFrame(s, 200).join("\n")).toContain("running: exec");
    s = run(
      [
        ev("tool.completed", { agentId: "a1", tool: "exec", callId: "c1", isError: false, ms: 12 }),
        ev("tool.called", { agentId: "a1", tool: "file_write", callId: "c2" }),
        ev("tool.denied", {
          agentId: "a1",
          tool: "file_write",
          callId: "c2",
          code: "capability_denied",
          stage: "capability",
          reason: "no grant covers file_write: /etc/passwd",
        }),
      ],
      s,
    );
    expect(s.agents.a1).toMatchObject({ toolCalls: 2, denials: 1, toolsRunning: {} });
    expect(s.activity.map((a) => a.text)).toEqual([
      "spawned writer (anthropic/claude-test)",
      "writer → exec",
      "writer → file_write",
      "writer ✗ file_write DENIED (capability: no grant covers file_write: /etc/passwd)",
    ]);
  });

  it("shows a call whose gate stage failed as failed at its stage, did not run, its text inert", () => {
    const s = run([
      spawn("a1", "writer"),
      ev("tool.called", { agentId: "a1", tool: "file_read", callId: "c1" }),
      ev("tool.errored", {
        agentId: "a1",
        tool: "file_read",
        callId: "c1",
        stage: "needs",
        code: "sandbox_failed",
        error: "the engine said \x1b]8;;https://evil.example\x07click\x1b]8;;\x07\r\x1b[2Kall fine\u202e",
      }),
    ]);
    expect(s.agents.a1).toMatchObject({ toolCalls: 1, denials: 0, toolsRunning: {} });
    const last = s.activity.at(-1)?.text ?? "";
    expect(last).toMatch(
      /^writer ✗ file_read failed at needs, did not run \(sandbox_failed: the engine said /,
    );
    expect(last).not.toMatch(/[\x00-\x1f\x7f-\x9f\u202e]/);
    expect(renderFrame(s, 200).join("\n")).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]/);
  });

  it("shows a tool name a model made up as inert text: its terminal controls never reach the screen", () => {
    const tool = "\x1b]52;c;ZWNobyBwd25lZA==\x07\x1b[2Jrm\u202e";
    const s = run([
      spawn("a1", "writer"),
      ev("tool.called", { agentId: "a1", tool, callId: "c1" }),
      ev("tool.called", { agentId: "a1", tool, callId: "c2" }),
      ev("tool.completed", { agentId: "a1", tool, callId: "c1", isError: true, ms: 3 }),
    ]);
    const running = renderFrame(s, 200);
    const denied = run(
      [
        ev("tool.denied", {
          agentId: "a1",
          tool,
          callId: "c2",
          code: "unknown_tool",
          stage: "schema",
          reason: "unknown tool",
        }),
      ],
      s,
    );
    expect(running.join(" ")).toContain("running: \\x1b]52;c;");
    for (const text of [...running, ...denied.activity.map((a) => a.text)]) {
      expect(text).not.toMatch(/[\x00-\x1f\x7f-\x9f\u202e]/);
    }
    expect(denied.activity.at(-1)?.text).toBe(
      "writer ✗ \\x1b]52;c;ZWNobyBwd25lZA==\\x07\\x1b[2Jrm\\u202e DENIED (schema: unknown tool)",
    );
  });

  it("lists approvals while they wait, with what each standing answer covers, and drops them once decided", () => {
    let s = run([
      spawn("a1", "writer"),
      ev("approval.requested", {
        approvalId: "ap1",
        agentId: "a1",
        askedBy: { source: "approval_required", text: "file_write" },
        tool: "file_write",
        summary: "write /output/x.md",
        target: "file_write on /output/x.md",
        covers: {
          allow_once: "this call only: file_write on /output/x.md",
          allow_session: "file_write on /output/x.md by agent a1 until it stops",
          allow_always: "file_write on /output/x.md by agents of identity `writer` for 1 h",
        },
      }),
    ]);
    const frame = renderFrame(s, 200).join("\n");
    expect(frame).toContain("approvals waiting (1) — answer with: aido approvals");
    // A demo on a home of its own names that home, so the command works as printed.
    expect(renderFrame(s, 200, "AIDO_HOME=/tmp/d aido approvals").join("\n")).toContain(
      "answer with: AIDO_HOME=/tmp/d aido approvals",
    );
    expect(frame).toContain("ap1  writer wants file_write: write /output/x.md");
    expect(frame).toContain("Allow Session: file_write on /output/x.md by agent a1 until it stops");
    expect(frame).toContain(
      "Allow Always:  file_write on /output/x.md by agents of identity `writer` for 1 h",
    );
    s = run(
      [
        ev("approval.decided", {
          approvalId: "ap1",
          agentId: "a1",
          tool: "file_write",
          decision: "allow_once",
        }),
      ],
      s,
    );
    expect(s.approvals).toEqual({});
    expect(renderFrame(s, 200).join("\n")).not.toContain("approvals waiting");
  });

  it("says why an approval closed unanswered", () => {
    const s = run([
      spawn("a1", "writer"),
      ev("approval.requested", {
        approvalId: "ap2",
        agentId: "a1",
        askedBy: { source: "policy.confirm", rule: "policy.confirm[0]", text: "exec: rm *" },
        tool: "exec",
        summary: "exec rm",
        target: "exec of `rm a` in /workspace",
        covers: { allow_once: "-", allow_session: "-", allow_always: "-" },
      }),
      ev("approval.decided", {
        approvalId: "ap2",
        agentId: "a1",
        tool: "exec",
        decision: "expired",
        reason: "agent a1 stopped: goal cancelled",
      }),
    ]);
    expect(s.approvals).toEqual({});
    expect(s.activity.at(-1)?.text).toBe("approval ap2: expired: agent a1 stopped: goal cancelled (exec)");
  });

  it("ends with the goal's outcome as the exit code: 0 succeeded, 1 failed or cancelled", () => {
    const usage = { input_tokens: 10, output_tokens: 5 };
    const ok = run([ev("goal.finished", { state: "succeeded", usage })]);
    expect(exitCodeOf(ok)).toBe(0);
    const failed = run([ev("goal.finished", { state: "failed", error: "budget exceeded", usage })]);
    expect(exitCodeOf(failed)).toBe(1);
    expect(summaryLines(failed)).toEqual([
      "goal g1 failed; tokens 15 (in 10, out 5)",
      "error: budget exceeded",
    ]);
    expect(exitCodeOf(run([ev("goal.finished", { state: "cancelled", usage })]))).toBe(1);
    expect(exitCodeOf(run([spawn("a1", "x")]))).toBeUndefined();
  });

  it("knows a goal that had already ended before the stream started", () => {
    const s = initialWatchState({
      goalId: "g1",
      goal: { goal_id: "g1", state: "succeeded", usage: { input_tokens: 1, output_tokens: 2 } },
    });
    expect(exitCodeOf(s)).toBe(0);
  });

  it("ignores other goals' events when watching one goal, and shows every goal otherwise", () => {
    const other = ev("agent.spawned", { agentId: "x1", manifest: "intruder", depth: 0, model: "m" }, "g2");
    const one = run([spawn("a1", "bootstrap"), other]);
    expect(Object.keys(one.agents)).toEqual(["a1"]);
    const all = run(
      [ev("goal.queued", { goal: "first" }), spawn("a1", "bootstrap"), other],
      initialWatchState(),
    );
    expect(Object.keys(all.agents)).toEqual(["a1", "x1"]);
    expect(Object.keys(all.goals)).toEqual(["g1", "g2"]);
    expect(newActivityLines(all, 0)[2]).toMatch(/\[g2\] spawned intruder/);
    expect(
      exitCodeOf(
        run(
          [ev("goal.finished", { state: "succeeded", usage: { input_tokens: 0, output_tokens: 0 } })],
          initialWatchState(),
        ),
      ),
    ).toBeUndefined();
  });

  it("counts events of kinds it does not know without failing", () => {
    const s = run([{ type: "brand.new", time: "t", goalId: "g1" } as unknown as RuntimeEvent]);
    expect(s.events).toBe(1);
  });

  it("keeps only the newest activity lines, numbered so a printer never repeats one", () => {
    let s = initialWatchState({ goalId: "g1", activityLimit: 3 });
    s = run(
      [
        spawn("a1", "w"),
        ...[1, 2, 3, 4].map((i) => ev("tool.called", { agentId: "a1", tool: `t${i}`, callId: `c${i}` })),
      ],
      s,
    );
    expect(s.activity.map((a) => a.text)).toEqual(["w → t2", "w → t3", "w → t4"]);
    expect(newActivityLines(s, 4).map((l) => l.slice(9))).toEqual(["w → t4"]);
  });

  it("never changes the state it was given", () => {
    const s0 = run([spawn("a1", "bootstrap")]);
    const copy = structuredClone(s0);
    reduceWatch(s0, ev("usage", { agentId: "a1", input_tokens: 5, output_tokens: 5 }));
    expect(s0).toEqual(copy);
  });
});

describe("watch screen", () => {
  it("appends plain lines when the output is not a terminal", () => {
    const written: string[] = [];
    const screen = new WatchScreen({ write: (t) => written.push(t), isTTY: false });
    let s = run([spawn("a1", "bootstrap")]);
    screen.update(s);
    s = run([ev("tool.called", { agentId: "a1", tool: "exec", callId: "c" })], s);
    screen.update(s);
    screen.close(
      run([ev("goal.finished", { state: "succeeded", usage: { input_tokens: 1, output_tokens: 1 } })], s),
    );
    const text = written.join("");
    expect(text).not.toContain("\x1b[");
    const lines = text.trim().split("\n");
    expect(lines.slice(0, 3).map((l) => l.slice(9))).toEqual([
      "spawned bootstrap (anthropic/claude-test)",
      "bootstrap → exec",
      "goal succeeded",
    ]);
    expect(lines[3]).toBe("goal g1 succeeded; tokens 2 (in 1, out 1)");
  });

  it("redraws in place on a terminal: moves up over the last frame and clears it", () => {
    const written: string[] = [];
    const screen = new WatchScreen({ write: (t) => written.push(t), isTTY: true, columns: 120 }, 0);
    const s1 = run([spawn("a1", "bootstrap")]);
    screen.update(s1);
    const firstFrameLines = renderFrame(s1, 119).length;
    screen.close(
      run([ev("goal.finished", { state: "succeeded", usage: { input_tokens: 1, output_tokens: 1 } })], s1),
    );
    expect(written[0]).toBe("\x1b[?25l");
    expect(written[2]).toContain(`\x1b[${firstFrameLines}A\r\x1b[J`);
    expect(written).toContain("\x1b[?25h");
  });
});

describe("watch in a cluster (pure: events and answers in, frames out)", () => {
  const onNode = (e: RuntimeEvent, node: string) => ({ ...e, node }) as unknown as RuntimeEvent;

  it("names the node that runs each goal and the node each approval waits on, never the queueing node", () => {
    const all = initialWatchState();
    const s = run(
      [
        onNode(ev("goal.queued", { goal: "build it" }, "g2"), "n-submit"),
        onNode(ev("goal.started", { agentId: "a9" }, "g2"), "n-run"),
        onNode(
          ev(
            "approval.requested",
            {
              approvalId: "ap1",
              agentId: "a9",
              tool: "file_write",
              summary: "/output/x",
              target: "/output/x",
              covers: { allow_once: "o", allow_session: "s", allow_always: "a" },
              askedBy: null,
            },
            "g2",
          ),
          "n-run",
        ),
      ],
      all,
    );
    expect(s.goals.g2?.node).toBe("n-run");
    const frame = renderFrame(s, 160).join("\n");
    expect(frame).toContain("  g2  running  on node n-run  build it");
    expect(frame).toContain("ap1  a9 wants file_write (node n-run): /output/x");
    // A lone daemon's events carry no node: nothing is said.
    const lone = run([ev("goal.started", { agentId: "a1" })]);
    expect(renderFrame(lone, 160)[0]).toBe("aido watch — goal g1  running");
  });

  it("shows the nodes from cluster.status, down and fenced ones said, node names inert", () => {
    const AT = "2025-01-01T10:00:06.000Z";
    const LATER = "2025-01-01T10:00:12.000Z";
    const status = (fenced: boolean): ClusterStatusResult =>
      ({
        enabled: true,
        node_id: "n1",
        fence: { on_redis_loss: "hold", fenced },
        nodes: [
          {
            node_id: "n1",
            alive: true,
            last_heartbeat: "2025-01-01T10:00:05.000Z",
            key_id: "k1",
            host: "h",
            pid: 1,
            running: 1,
            capacity: 4,
            goals: ["g1"],
          },
          {
            node_id: "n2\x1b]0;x\x07",
            alive: false,
            last_heartbeat: null,
            key_id: "k2",
            host: "h",
            pid: 2,
            running: 0,
            capacity: 2,
            goals: [],
          },
        ],
        redis: { persistence: "aof" },
      }) satisfies ClusterStatusResult;
    const s = withClusterStatus(initialWatchState({ goalId: "g1" }), status(false), AT);
    const frame = renderFrame(s, 160);
    expect(frame).toContain("cluster  this node n1");
    expect(frame).toContain("  n1 (this)  up  load 1/4  heartbeat 10:00:05");
    expect(frame.join("\n")).toContain("  n2\\x1b]0;x\\x07  DOWN  load 0/2  heartbeat never");
    expect(frame.join("\n")).not.toContain("\x1b]");
    const fenced = renderFrame(withClusterStatus(s, status(true), AT), 160);
    expect(fenced).toContain("cluster  this node n1  FENCED: its goals wait until its lease is renewed");
    // A failed refresh keeps the last view and says why; a lone daemon's answer adds nothing.
    const failed = renderFrame(withClusterStatus(s, "cluster.status failed: socket closed", LATER), 160);
    expect(failed).toContain("  STALE (as of 10:00:06): cluster.status failed: socket closed");
    expect(failed).toContain("  n1 (this)  up  load 1/4  heartbeat 10:00:05");
    const lone = withClusterStatus(initialWatchState({ goalId: "g1" }), { enabled: false, nodes: [] }, AT);
    expect(renderFrame(lone, 160).join("\n")).not.toContain("cluster");
  });

  it("says which secrets a waiting call carries, as `aido approvals` does, on the frame and in the log line", () => {
    // Off the socket as the daemon sends it (snake_case), back through the watch's wire edge.
    const wire = toWireEvent(
      ev("approval.requested", {
        approvalId: "ap1",
        agentId: "a1",
        askedBy: { source: "policy.confirm", text: "confirm exec" },
        tool: "exec",
        summary: 'exec {"command":"curl -H \\"Authorization: ‹secret›\\" https://api.example"}',
        target: "exec",
        covers: { allow_once: "this call", allow_session: "exec by a1", allow_always: "exec by writer" },
        carriesSecrets: ["secret GITHUB_TOKEN", "the goal's proxy credential"],
      }),
    );
    const s = run([spawn("a1", "writer"), fromWireEvent(wire) as RuntimeEvent]);
    const said = "CARRIES SECRETS (shown blanked): secret GITHUB_TOKEN; the goal's proxy credential";
    const frame = renderFrame(s, 200);
    expect(frame[frame.findIndex((l) => l.startsWith("  ap1  writer wants exec")) + 1]).toBe(`      ${said}`);
    // A pipe or a log file gets the activity lines only: the line says it too.
    expect(s.activity.at(-1)?.text).toContain(`approval needed: exec — `);
    expect(s.activity.at(-1)?.text).toContain(` — ${said}`);
    // A request waiting before the watch began (approval.list) says it as well; a record with junk there does not fail.
    const seeded = withPendingApprovals(initialWatchState({ goalId: "g1" }), [
      {
        id: "ap2",
        goal_id: "g1",
        agent_id: "a1",
        tool: "exec",
        summary: "s",
        status: "pending",
        carries_secrets: ["secret X", 7],
      },
      {
        id: "ap3",
        goal_id: "g1",
        agent_id: "a1",
        tool: "exec",
        summary: "t",
        status: "pending",
        carries_secrets: "junk",
      },
    ]);
    const seededFrame = renderFrame(seeded, 200);
    expect(seededFrame).toContain("      CARRIES SECRETS (shown blanked): secret X");
    expect(seededFrame.filter((l) => l.includes("CARRIES SECRETS"))).toHaveLength(1);
  });

  it("shows the approvals already waiting when the watch began, and drops them when their goal ends", () => {
    const waiting = [
      {
        id: "ap1",
        goal_id: "g1",
        agent_id: "a1",
        tool: "exec",
        summary: "npm test",
        status: "pending",
        node: "n2",
      },
      { id: "ap2", goal_id: "g2", agent_id: "a5", tool: "exec", summary: "other goal", status: "pending" },
      { id: "ap3", goal_id: "g1", agent_id: "a1", tool: "exec", summary: "answered", status: "decided" },
    ];
    const s = withPendingApprovals(initialWatchState({ goalId: "g1" }), waiting);
    expect(Object.keys(s.approvals)).toEqual(["ap1"]);
    expect(renderFrame(s, 160)).toContain("  ap1  a1 wants exec (node n2): npm test");
    expect(Object.keys(withPendingApprovals(initialWatchState(), waiting).approvals)).toEqual(["ap1", "ap2"]);
    const ended = run(
      [ev("goal.finished", { state: "failed", usage: { input_tokens: 0, output_tokens: 0 } })],
      s,
    );
    expect(ended.approvals).toEqual({});
  });

  // Whoever can write to the cluster's Redis writes the mirrored goals and approvals the watch
  // seeds from (goal.list, approval.list): every field of them is an attacker's.
  it("draws goals and approvals from Redis inert and on one line: ids, states, tools, agents, errors", () => {
    const esc = "\x1b]0;owned\x07\x1b[2K\r";
    let s = initialWatchState();
    s = withGoalStatus(s, { goal_id: `g${esc}1`, state: `running${esc}` as never, node: "n2" });
    s = withPendingApprovals(s, [
      {
        id: `ap${esc}`,
        goal_id: `g${esc}1`,
        agent_id: `a${esc}\nforged line`,
        tool: `exec${esc}`,
        summary: "npm test",
        status: "pending",
      },
    ]);
    const frame = renderFrame(s, 400);
    for (const line of frame) {
      expect(line).not.toMatch(/[\x00-\x1f\x7f]/);
      expect(line.length).toBeLessThanOrEqual(400);
    }
    const one = initialWatchState({ goalId: "g1" });
    const ended = withGoalStatus(one, { goal_id: "g1", state: "failed", error: `boom${esc}\nforged` });
    for (const line of summaryLines(ended)) expect(line).not.toMatch(/[\x00-\x1f\x7f]/);
    const asked = run(
      [
        ev("approval.requested", {
          approvalId: "ap9",
          agentId: "a1",
          tool: `exec${esc}`,
          summary: "x",
          target: "x",
          askedBy: null,
        } as never),
      ],
      one,
    );
    for (const line of newActivityLines(asked, 0)) expect(line).not.toMatch(/[\x00-\x1f\x7f]/);
  });

  it("skips a waiting approval whose fields are not text (a Redis writer's record) instead of failing every frame", () => {
    const junk = [
      { id: "ap1", goal_id: null, agent_id: "a1", tool: "exec", status: "pending" },
      { id: "ap2", goal_id: null, agent_id: 7, tool: "exec", summary: "s", status: "pending" },
      { id: "ap3", goal_id: null, agent_id: "a1", tool: "exec", summary: "ok", status: "pending" },
    ] as never[];
    const s = withPendingApprovals(initialWatchState(), junk);
    expect(Object.keys(s.approvals)).toEqual(["ap3"]);
    expect(renderFrame(s, 160)).toContain("  ap3  a1 wants exec: ok");
  });

  it("draws nothing more once closed: a cluster.status answer arriving after the end does not wipe the summary", () => {
    const out: string[] = [];
    const screen = new WatchScreen({ write: (t) => out.push(t), isTTY: true }, 0);
    const s = initialWatchState({ goalId: "g1" });
    screen.update(s);
    screen.close(withGoalStatus(s, { goal_id: "g1", state: "succeeded" }));
    const closed = out.length;
    screen.update(withClusterStatus(s, "cluster.status failed: socket closed", "2025-01-01T10:00:07.000Z"));
    expect(out.length).toBe(closed);
  });

  it("keeps a bounded part of a megabyte goal text, error or approval summary (the view is copied at every event)", () => {
    const huge = "x".repeat(3_000_000);
    let s = withGoalStatus(initialWatchState(), { goal_id: "g1", state: "failed", goal: huge, error: huge });
    s = withPendingApprovals(s, [
      { id: "ap1", goal_id: "g1", agent_id: "a1", tool: "exec", summary: huge, status: "pending" },
    ]);
    s = run(
      [
        ev("goal.queued", { goal: huge }, "g2"),
        ev(
          "goal.finished",
          { state: "failed", error: huge, usage: { input_tokens: 0, output_tokens: 0 } },
          "g2",
        ),
      ],
      s,
    );
    expect(JSON.stringify(s).length).toBeLessThan(50_000);
  });

  it("keeps at most ENDED_GOALS_KEPT ended goals, and their agents, in a long all-goals watch", () => {
    let s = initialWatchState({ goalId: null });
    for (let i = 0; i < 150; i++) {
      const g = `g${i}`;
      s = run(
        [
          ev("goal.queued", { goal: `goal ${i}` }, g),
          ev("goal.started", { agentId: `a${i}` }, g),
          ev(
            "agent.spawned",
            { agentId: `a${i}`, manifest: "m", model: "p/m", parentId: null, depth: 0 } as never,
            g,
          ),
          ev("goal.finished", { state: "succeeded", usage: { input_tokens: 1, output_tokens: 1 } }, g),
        ],
        s,
      );
    }
    s = run([ev("goal.queued", { goal: "still queued" }, "g-live")], s);
    expect(Object.keys(s.goals)).toHaveLength(ENDED_GOALS_KEPT + 1);
    expect(s.goals.g0).toBeUndefined();
    expect(s.goals.g149?.state).toBe("succeeded");
    expect(s.goals["g-live"]?.state).toBe("queued");
    expect(Object.keys(s.agents)).toHaveLength(ENDED_GOALS_KEPT);
    expect(s.agentOrder).toEqual(Object.keys(s.agents));
    // Seeded ones too (goal.list in a cluster).
    const seeded = withGoalStatuses(
      initialWatchState({ goalId: null }),
      Array.from({ length: 150 }, (_, i) => ({ goal_id: `s${i}`, state: "failed" as const })),
    );
    expect(Object.keys(seeded.goals)).toHaveLength(ENDED_GOALS_KEPT);
  });

  it("keeps the goals that ended last, not those seen first: a long goal seen first keeps its outcome when it ends", () => {
    let s = initialWatchState({ goalId: null });
    // The long one is seen first, then ENDED_GOALS_KEPT short ones run and end before it does.
    s = run([ev("goal.started", { agentId: "a-long" }, "g-long")], s);
    for (let i = 0; i < ENDED_GOALS_KEPT; i++) {
      const g = `g${i}`;
      s = run(
        [
          ev("goal.started", { agentId: `a${i}` }, g),
          ev("goal.finished", { state: "succeeded", usage: { input_tokens: 1, output_tokens: 1 } }, g),
        ],
        s,
      );
    }
    s = run(
      [
        ev(
          "goal.finished",
          { state: "failed", error: "boom", usage: { input_tokens: 1, output_tokens: 1 } },
          "g-long",
        ),
      ],
      s,
    );
    expect(s.goals["g-long"]?.state).toBe("failed");
    expect(s.goals.g0).toBeUndefined();
    expect(Object.keys(s.goals)).toHaveLength(ENDED_GOALS_KEPT);
    // Drawn where it was: the order of the lines is the order the goals were seen.
    expect(Object.keys(s.goals)[0]).toBe("g-long");
    // Seeded ends count as they come too.
    const seeded = withGoalStatuses(s, [{ goal_id: "g-seeded", state: "cancelled" as const }]);
    expect(seeded.goals["g-seeded"]?.state).toBe("cancelled");
    expect(seeded.goals["g-long"]?.state).toBe("failed");
    expect(seeded.goals.g1).toBeUndefined();
  });

  it("does not bring back a dropped ended goal as running when a late event of it comes", () => {
    let s = initialWatchState({ goalId: null });
    for (let i = 0; i <= ENDED_GOALS_KEPT; i++) {
      const g = `g${i}`;
      s = run(
        [
          ev("goal.started", { agentId: `a${i}` }, g),
          ev("goal.finished", { state: "succeeded", usage: { input_tokens: 1, output_tokens: 1 } }, g),
        ],
        s,
      );
    }
    expect(s.goals.g0).toBeUndefined();
    // Its last agent's stop, or an approval expired as it ended, read after its end.
    const late = run(
      [
        ev("agent.stopped", { agentId: "a0", reason: "goal ended" } as never, "g0"),
        ev(
          "approval.decided",
          { approvalId: "ap0", agentId: "a0", tool: "t", decision: "expired" } as never,
          "g0",
        ),
      ],
      s,
    );
    expect(late.goals.g0).toBeUndefined();
    expect(late.agents.a0).toBeUndefined();
    expect(renderFrame(late, 160).join("\n")).not.toMatch(/g0 {2}running/);
    // A goal never seen before is still shown from any event of it.
    expect(
      run([ev("tool.called", { agentId: "ax", callId: "c1", tool: "t" } as never, "g-new")], late).goals[
        "g-new"
      ]?.state,
    ).toBe("running");
  });

  it("keeps the nodes last read, said stale since then, when a fenced node answers that Redis cannot be reached", () => {
    const ok = clusterRead("hold");
    const read = withClusterStatus(initialWatchState({ goalId: null }), ok, AT);
    // What cluster-methods.ts answers on a fenced node that cannot read Redis.
    const cut = withClusterStatus(
      read,
      {
        enabled: true,
        node_id: "n1",
        fence: { on_redis_loss: "hold", fenced: true },
        nodes: [],
        redis: { persistence: "unknown", unreachable: "connect ECONNREFUSED" },
      } as ClusterStatusResult,
      LATER,
    );
    const frame = renderFrame(cut, 160);
    expect(frame).toContain("cluster  this node n1  FENCED: its goals wait until its lease is renewed");
    expect(frame).toContain("  STALE (as of 10:00:06): Redis cannot be reached: connect ECONNREFUSED");
    expect(frame).toContain("  n2  up  load 0/4  heartbeat 10:00:05");
    // Redis back: the nodes read now, nothing stale.
    const back = renderFrame(withClusterStatus(cut, ok, LATER), 160).join("\n");
    expect(back).not.toContain("STALE");
  });

  it("shows this node as it answers, cut off from Redis: alone before any read, beside the others last read after", () => {
    // What cluster-methods.ts answers on a node that cannot read Redis: itself, from memory.
    const cut = {
      enabled: true,
      node_id: "n1",
      fence: { on_redis_loss: "finish", fenced: false },
      nodes: [{ ...clusterNode, running: 3, goals: ["g1", "g2", "g3"] }],
      redis: { persistence: "unknown", unreachable: "connect ECONNREFUSED" },
    } as ClusterStatusResult;
    const alone = renderFrame(withClusterStatus(initialWatchState({ goalId: null }), cut, AT), 160).join(
      "\n",
    );
    expect(alone).toContain("  n1 (this)  up  load 3/4");
    expect(alone).toContain("  STALE (never read): Redis cannot be reached: connect ECONNREFUSED");
    const read = withClusterStatus(initialWatchState({ goalId: null }), clusterRead("finish"), AT);
    const after = renderFrame(withClusterStatus(read, cut, LATER), 160).join("\n");
    expect(after).toContain("  n1 (this)  up  load 3/4");
    expect(after).toContain("  n2  up  load 0/4");
    expect(after).toContain("  STALE (as of 10:00:06): Redis cannot be reached");
  });

  it("says a goal shown from this node's own record, and a Redis that refuses this node, until Redis is read again", () => {
    const own = initialWatchState({
      goalId: "g1",
      goal: {
        goal_id: "g1",
        state: "running",
        node: "n1",
        cluster: {
          redis: "refused",
          reason: "NOPERM \x1b[2J no permission",
          as_of: "2025-01-01T10:00:05.000Z",
        },
      },
    });
    const refused = withClusterStatus(
      own,
      {
        ...clusterRead("finish"),
        nodes: [clusterNode],
        redis: { persistence: "unknown", refused: "NOPERM this user has no permissions" },
      } as ClusterStatusResult,
      AT,
    );
    const frame = renderFrame(refused, 200).join("\n");
    expect(frame).toContain(
      "FROM THIS NODE'S RECORD: the cluster's Redis refuses this node's reads (NOPERM \\x1b[2J",
    );
    expect(frame).toContain(
      "the cluster last heard from this node at 10:00:05; another node may have ended or taken",
    );
    expect(frame).toContain(
      "STALE (never read): Redis refuses this node's reads (check the ACL user in the node's Redis URL): NOPERM",
    );
    // A junk key where the set of nodes is kept: that key, not the ACL user.
    const junk = renderFrame(
      withClusterStatus(
        own,
        {
          ...clusterRead("finish"),
          nodes: [clusterNode],
          redis: {
            persistence: "unknown",
            refused:
              "WRONGTYPE Operation against a key holding the wrong kind of value (the key aido:nodes holds another type; the cluster keeps a set of node ids there)",
          },
        } as ClusterStatusResult,
        AT,
      ),
      400,
    ).join("\n");
    expect(junk).toContain("Redis refuses this node's reads (a key in Redis holds another type");
    expect(junk).toContain("the key aido:nodes holds another type");
    expect(junk).not.toContain("ACL user");
    expect(frame).not.toContain("cannot be reached");
    expect(frame).not.toContain("\x1b[2J");
    // Redis read again: the goal is the cluster's, nothing stale.
    const back = renderFrame(withClusterStatus(refused, clusterRead("finish"), LATER), 200).join("\n");
    expect(back).not.toContain("FROM THIS NODE'S RECORD");
    expect(back).not.toContain("STALE");
  });

  it("a goal.list or approval.list read while the stream runs (Redis back) does not undo an end or an answer the stream gave", () => {
    const approval = {
      id: "ap1",
      goal_id: "g2",
      agent_id: "a2",
      tool: "file_write",
      summary: "/output/x",
      status: "pending",
      node: "n2",
    };
    // Read by the late seed, then the stream tells the goal's end and another's answer first.
    let s = run(
      [
        ev("goal.started", { agentId: "a1" }, "g1"),
        ev("goal.started", { agentId: "a2" }, "g2"),
        ev(
          "approval.requested",
          {
            approvalId: "ap1",
            agentId: "a2",
            tool: "file_write",
            summary: "/output/x",
            target: "/output/x",
            askedBy: null,
          } as never,
          "g2",
        ),
        ev(
          "approval.decided",
          { approvalId: "ap1", agentId: "a2", tool: "file_write", decision: "approved" } as never,
          "g2",
        ),
        ev("goal.finished", { state: "succeeded", usage: { input_tokens: 1, output_tokens: 1 } }, "g1"),
      ],
      initialWatchState({ goalId: null }),
    );
    s = withGoalStatuses(s, [
      { goal_id: "g1", state: "running" },
      { goal_id: "g2", state: "running" },
    ]);
    s = withPendingApprovals(s, [approval, { ...approval, id: "ap3", goal_id: "g1" }]);
    expect(s.goals.g1?.state).toBe("succeeded");
    expect(s.approvals.ap1).toBeUndefined();
    // ap3's goal ended: it waits for nothing.
    expect(s.approvals.ap3).toBeUndefined();
    // One the stream did not answer is still added.
    expect(withPendingApprovals(s, [{ ...approval, id: "ap2" }]).approvals.ap2?.tool).toBe("file_write");
  });

  it("drops the panel a slow first cluster.status put up when the daemon then answers it is in no cluster", () => {
    // A lone daemon that did not answer within the panel's bound (a loaded machine): the failure
    // drew a panel; its next answer says there is no cluster, and the panel goes.
    const failed = withClusterStatus(
      initialWatchState({ goalId: null }),
      "cluster.status failed: cluster.status did not answer within 4000 ms",
      "2025-01-01T10:00:06.000Z",
    );
    expect(renderFrame(failed, 160).join("\n")).toContain("STALE (never read)");
    const lone = withClusterStatus(failed, { enabled: false, nodes: [] }, "2025-01-01T10:00:12.000Z");
    expect(lone.cluster).toBeUndefined();
    expect(renderFrame(lone, 160).join("\n")).not.toContain("cluster");
  });

  it("shows a node whose record is malformed as such, and the panel's goals said unavailable", () => {
    const s = withClusterStatus(
      initialWatchState({ goalId: null }),
      {
        enabled: true,
        node_id: "n1",
        fence: { on_redis_loss: "hold", fenced: false },
        nodes: [
          {
            node_id: "n-bad",
            alive: true,
            last_heartbeat: null,
            key_id: "",
            host: "",
            pid: 0,
            running: 0,
            capacity: 0,
            goals: [],
            malformed: "its record in Redis is malformed: last_heartbeat is not a time in ms",
          },
        ],
        redis: { persistence: "aof" },
      } as ClusterStatusResult,
      "2025-01-01T10:00:06.000Z",
    );
    const frame = renderFrame(withClusterUnseeded(s, "Redis cannot be reached"), 200).join("\n");
    expect(frame).toContain(
      "n-bad  up  load 0/0  heartbeat never  MALFORMED: its record in Redis is malformed",
    );
    expect(frame).toContain("cluster goals unavailable: Redis cannot be reached; this node's shown");
  });
});
