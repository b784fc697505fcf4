// Cluster mode, one view: three agentd nodes (separate homes, one Docker engine) on one
// real redis-server. Goals submitted to one node run on all three; any node answers for any
// goal (status, list, wait, events, cancel) and for any pending approval, answered on the
// node whose agent waits for it.

import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { AidoClient, type AidoRpcError } from "../../src/client/client.js";
import type { WireEvent } from "../../src/client/types.js";
import { providerEnv } from "../agent/harness.js";
import { captureIo } from "../cli/io.js";
import { startFixture } from "../daemon/fixture.js";
import { startDaemonChild, until } from "../daemon/process.js";
import { makeTempHome } from "../support/home.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import { conversationsStarted, forGoal, manifest, type Node, startNode } from "./fixture.js";
import { withCluster } from "./support/file-cluster.js";

let server: ProviderServer;
let nodes: Node[];
let redisUrl: string;
withCluster((c) => {
  server = c.server;
  redisUrl = c.redis.url;
});

beforeAll(async () => {
  nodes = await Promise.all(
    ["cluster-a", "cluster-b", "cluster-c"].map((id) => startNode(server, redisUrl, id, { capacity: 2 })),
  );
}, 60_000);

const nodeById = (id: string | undefined) => nodes.find((n) => n.id === id) as Node;

describe("cluster mode: one queue, one view", () => {
  it("runs goals submitted to one node on all three, and any node answers for any goal", async () => {
    const [a, b, c] = [await nodes[0]!.client(), await nodes[1]!.client(), await nodes[2]!.client()];
    const markers = Array.from({ length: 6 }, (_, i) => `burst-${i}`);
    for (const m of markers) server.script(forGoal(m), [turn.text(`done ${m}`, { delayMs: 1200 })]);
    const ids: string[] = [];
    for (const m of markers)
      ids.push((await a.call("goal.submit", { goal: `do ${m}`, manifest: manifest() })).goal_id);

    const ended = await Promise.all(
      ids.map((id) => c.call("goal.wait", { goal_id: id, timeout_ms: 30_000 })),
    );
    expect(ended.map((s) => s.state)).toEqual(ids.map(() => "succeeded"));
    expect(ended.map((s) => s.result)).toEqual(markers.map((m) => `done ${m}`));
    // Every node ran some: two slots each, six goals that take over a second each.
    const owners = new Set(ended.map((s) => s.node));
    expect([...owners].sort()).toEqual(["cluster-a", "cluster-b", "cluster-c"]);
    expect(ended.every((s) => s.submitted_via === "cluster-a")).toBe(true);

    // Status from a node other than the owner, and goal.list from any node, say the same.
    for (const s of ended) {
      const other = s.node === "cluster-b" ? c : b;
      expect(await other.call("goal.status", { goal_id: s.goal_id })).toMatchObject({
        goal_id: s.goal_id,
        state: "succeeded",
        node: s.node,
        result: s.result,
      });
    }
    const listed = await b.call("goal.list", { state: "succeeded" });
    expect(listed.goals.map((g) => g.goal_id)).toEqual(expect.arrayContaining(ids));
    // Each ran once: one bootstrap conversation per goal.
    for (const m of markers) expect(conversationsStarted(server, m)).toBe(1);

    // cluster.status: three nodes heartbeating, each with its own key.
    const st = await b.call("cluster.status", {});
    if (!st.enabled) throw new Error("cluster.status says the daemon is not in a cluster");
    expect(st.node_id).toBe("cluster-b");
    expect(st.nodes.map((n) => [n.node_id, n.alive, n.capacity])).toEqual([
      ["cluster-a", true, 2],
      ["cluster-b", true, 2],
      ["cluster-c", true, 2],
    ]);
    expect(new Set(st.nodes.map((n) => n.key_id)).size).toBe(3);
    expect(
      st.nodes.every((n) => n.last_heartbeat !== null && Date.now() - Date.parse(n.last_heartbeat) < 5_000),
    ).toBe(true);
  }, 60_000);

  it("streams a goal's events and answers its approval from a node that does not run it", async () => {
    const marker = "approval-goal";
    server.script(forGoal(marker), [
      turn.toolUse("file_write", { path: "/output/x.md", content: "x" }),
      turn.text(`finished ${marker}`),
    ]);
    const a = await nodes[0]!.client();
    const { goal_id } = await a.call("goal.submit", {
      goal: `write ${marker}`,
      manifest: manifest({ approve: true }),
    });
    // The approval shows on every node, with the node its agent waits on.
    const pending = await until(async () => {
      const list = await (await nodes[1]!.client()).call("approval.list", {});
      return list.approvals.find((x) => x.goal_id === goal_id);
    });
    const owner = pending.node as string;
    expect(["cluster-a", "cluster-b", "cluster-c"]).toContain(owner);
    const other = nodes.find((n) => n.id !== owner) as Node;
    for (const n of nodes) {
      const list = await (await n.client()).call("approval.list", {});
      expect(list.approvals.filter((x) => x.id === pending.id)).toHaveLength(1);
    }

    const seen: WireEvent[] = [];
    const sub = await AidoClient.subscribe(other.home.config.socketPath, goal_id, (ev) => seen.push(ev));
    // On the owner the goal streams from its own bus, and its events name the node too.
    const ownSeen: WireEvent[] = [];
    const ownSub = await AidoClient.subscribe(nodeById(owner).home.config.socketPath, goal_id, (ev) =>
      ownSeen.push(ev),
    );
    const answered = await (await other.client()).call("approval.respond", {
      id: pending.id,
      decision: "deny",
    });
    expect(answered).toMatchObject({ id: pending.id, status: "decided", decision: "deny" });
    expect(answered.decided_by).toBe(`socket client via node ${other.id}`);
    await sub.done;
    await ownSub.done;
    expect(ownSeen.at(-1)).toMatchObject({ type: "goal.finished", node: owner });
    expect(ownSeen.every((e) => (e as WireEvent & { node?: string }).node === owner)).toBe(true);

    const types = seen.map((e) => e.type);
    expect(types).toContain("approval.decided");
    expect(types.at(-1)).toBe("goal.finished");
    expect(seen.every((e) => e.goal_id === goal_id)).toBe(true);
    expect(seen.at(-1)).toMatchObject({ state: "succeeded", node: owner });
    // Answered: no node lists it any more.
    for (const n of nodes) {
      const list = await (await n.client()).call("approval.list", {});
      expect(list.approvals.filter((x) => x.id === pending.id)).toEqual([]);
    }
    // The owner's own record says who answered, and through which node.
    const ownerClient = await nodeById(owner).client();
    const decided = await ownerClient.call("approval.list", { status: "decided" });
    expect(decided.approvals.find((x) => x.id === pending.id)?.decided_by).toBe(
      `socket client via node ${other.id}`,
    );
    // Settled, it reads the same from every node: its outcome, who answered, where it ran.
    for (const n of nodes) {
      const c = await n.client();
      for (const status of ["decided", "all"] as const) {
        const found = (await c.call("approval.list", { status })).approvals.filter(
          (x) => x.id === pending.id,
        );
        expect(found, `${status} on ${n.id}`).toEqual([
          expect.objectContaining({
            status: "decided",
            decision: "deny",
            decided_by: `socket client via node ${other.id}`,
            node: owner,
          }),
        ]);
      }
      expect((await c.call("approval.list", { status: "expired" })).approvals.map((x) => x.id)).not.toContain(
        pending.id,
      );
    }
  }, 60_000);

  it("streams every node's goals to a subscriber without a goal, each event once", async () => {
    const markers = ["all-0", "all-1", "all-2"];
    for (const m of markers) server.script(forGoal(m), [turn.text(`done ${m}`, { delayMs: 600 })]);
    const seen: WireEvent[] = [];
    const sub = await AidoClient.subscribe(nodes[1]!.home.config.socketPath, undefined, (ev) =>
      seen.push(ev),
    );
    const a = await nodes[0]!.client();
    const ids: string[] = [];
    for (const m of markers)
      ids.push((await a.call("goal.submit", { goal: `run ${m}`, manifest: manifest() })).goal_id);
    await until(() =>
      ids.every((id) => seen.some((e) => e.goal_id === id && e.type === "goal.finished")) ? true : undefined,
    );
    sub.close();
    // Two slots per node: at least one of the three ran on a node other than the subscriber's.
    const remote = seen.filter((e) => ids.includes(e.goal_id ?? "") && e.node !== undefined);
    expect(remote.some((e) => e.node !== "cluster-b")).toBe(true);
    for (const id of ids) {
      const mine = seen.filter((e) => e.goal_id === id);
      expect(mine.filter((e) => e.type === "goal.started")).toHaveLength(1);
      expect(mine.filter((e) => e.type === "goal.finished")).toHaveLength(1);
      expect(mine.at(-1)).toMatchObject({ type: "goal.finished", state: "succeeded" });
      // Every event names the node it happened on, the subscriber's own included.
      expect(mine.filter((e) => e.node === undefined)).toEqual([]);
      const owner = (await a.call("goal.status", { goal_id: id })).node;
      expect(
        mine.filter((e) => e.type === "goal.started" || e.type === "goal.finished").map((e) => e.node),
      ).toEqual([owner, owner]);
    }
  }, 60_000);

  it("cancels a running goal from a node that does not run it", async () => {
    const marker = "cancel-goal";
    server.script(forGoal(marker), [turn.text("never", { delayMs: 20_000 })]);
    const a = await nodes[0]!.client();
    const { goal_id } = await a.call("goal.submit", { goal: `slow ${marker}`, manifest: manifest() });
    const running = await until(async () => {
      const s = await a.call("goal.status", { goal_id });
      return s.state === "running" && server.requestsMatching(forGoal(marker)).length > 0 ? s : undefined;
    });
    const other = nodes.find((n) => n.id !== running.node) as Node;
    await (await other.client()).call("goal.cancel", { goal_id });
    const ended = await (await other.client()).call("goal.wait", { goal_id, timeout_ms: 15_000 });
    expect(ended).toMatchObject({ state: "cancelled", node: running.node });
  }, 60_000);

  it("carries a goal's input files in its job to the node that runs it, and refuses more than a job may carry", async () => {
    const outside = mkdtempSync(join(tmpdir(), "aido-cluster-inputs-"));
    try {
      writeFileSync(join(outside, "notes.md"), "remember the milk\n");
      mkdirSync(join(outside, "data"));
      writeFileSync(join(outside, "data", "rows.csv"), "a,b\n1,2\n");
      symlinkSync("rows.csv", join(outside, "data", "latest.csv"));
      server.script(forGoal("inputs-goal"), [turn.text("read them")]);
      const a = await nodes[0]!.client();
      const { goal_id } = await a.call("goal.submit", {
        goal: "summarise inputs-goal",
        manifest: manifest(),
        inputs: [join(outside, "notes.md"), join(outside, "data")],
      });
      const s = await a.call("goal.wait", { goal_id, timeout_ms: 20_000 });
      expect(s.state).toBe("succeeded");
      const owner = nodeById(s.node);
      const inputs = join(owner.home.dir, "goals", goal_id, "inputs");
      expect(readFileSync(join(inputs, "notes.md"), "utf8")).toBe("remember the milk\n");
      expect(readFileSync(join(inputs, "data", "rows.csv"), "utf8")).toBe("a,b\n1,2\n");
      expect(readlinkSync(join(inputs, "data", "latest.csv"))).toBe("rows.csv");
      // The agent was told where they are; the owner's unpacked copy is gone with the goal.
      const first = server.requestsMatching(forGoal("inputs-goal"))[0];
      expect(JSON.stringify(first?.body.messages)).toContain("/inputs/notes.md");
      expect(existsSync(join(owner.home.dir, "inbox", `cluster-${goal_id}`))).toBe(false);

      writeFileSync(join(outside, "big.bin"), Buffer.alloc(9 * 1024 * 1024, 1));
      const refused = await a
        .call("goal.submit", { goal: "too big", manifest: manifest(), inputs: [join(outside, "big.bin")] })
        .then(
          () => undefined,
          (e: unknown) => e as AidoRpcError,
        );
      expect(refused?.code).toBe("invalid_input");
      expect(refused?.message).toContain("more than 8 MiB");
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  }, 60_000);

  it("lists the nodes with `aido cluster status`, and a lone daemon says it is in no cluster", async () => {
    const cap = captureIo();
    expect(
      await runCli(["cluster", "status"], cap.io, { ...nodes[2]!.home.env, AIDO_HOME: nodes[2]!.home.dir }),
    ).toBe(0);
    expect(cap.out[0]).toBe("this node: cluster-c");
    for (const id of ["cluster-a", "cluster-b", "cluster-c"]) {
      expect(cap.out.some((l) => l.startsWith(id) && l.includes(" up ") && l.includes("load "))).toBe(true);
    }
    const json = captureIo();
    expect(await runCli(["cluster", "status", "--json"], json.io, { AIDO_HOME: nodes[0]!.home.dir })).toBe(0);
    expect(JSON.parse(json.text())).toMatchObject({ enabled: true, node_id: "cluster-a" });

    const lone = await startFixture(server);
    try {
      const c = await lone.client();
      expect(await c.call("cluster.status", {})).toEqual({ enabled: false, nodes: [] });
      const out = captureIo();
      expect(await runCli(["cluster", "status"], out.io, lone.home.env)).toBe(1);
      expect(out.err.join("\n")).toContain("not in a cluster");
    } finally {
      await lone.close();
    }
  }, 60_000);

  it("lists, from a node that joined later, the goals it ran before it joined with the cluster's", async () => {
    const home = makeTempHome(providerEnv(server));
    server.script(forGoal("pre-cluster"), [turn.text("done pre-cluster")]);
    const lone = await startDaemonChild(home, server);
    const before = await AidoClient.connect(home.config.socketPath);
    const pre = (await before.call("goal.submit", { goal: "run pre-cluster", manifest: manifest() })).goal_id;
    expect(await before.call("goal.wait", { goal_id: pre, timeout_ms: 20_000 })).toMatchObject({
      state: "succeeded",
    });
    before.close();
    lone.child.kill("SIGTERM");
    await lone.exited;

    const late = await startNode(server, redisUrl, "cluster-late", { home });
    const c = await late.client();
    server.script(forGoal("post-cluster"), [turn.text("done post-cluster")]);
    const a = await nodes[0]!.client();
    const post = (await a.call("goal.submit", { goal: "run post-cluster", manifest: manifest() })).goal_id;
    await c.call("goal.wait", { goal_id: post, timeout_ms: 20_000 });
    const listed = (await c.call("goal.list", {})).goals;
    expect(listed.find((g) => g.goal_id === pre)).toMatchObject({
      state: "succeeded",
      result: "done pre-cluster",
      node: "cluster-late",
    });
    // The cluster's goals are there too, newest first, each once.
    const ids = listed.map((g) => g.goal_id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.indexOf(post)).toBeLessThan(ids.indexOf(pre));
    const created = listed.map((g) => g.created_at);
    expect(created).toEqual([...created].sort().reverse());
    expect(
      (await c.call("goal.list", { state: "succeeded", limit: 1000 })).goals.map((g) => g.goal_id),
    ).toContain(pre);
  }, 60_000);
});
