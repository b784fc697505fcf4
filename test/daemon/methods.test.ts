// Every socket method of DESIGN.md "Daemon socket", and every error code, through a real
// daemon and its socket: goals, agents, tools (memory tools need no container), approvals
// answered from a second client, audit, and the operator's ceiling on socket manifests.

import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { turn } from "../support/provider-server.js";
import { manifest, rpcError, useDaemonPerTest } from "./fixture.js";
import { rawConnect } from "./raw.js";

const suite = useDaemonPerTest();

describe("goal.*", () => {
  it("submits, reports, waits for, lists and cancels goals", async () => {
    suite.server.script('manifest "solo"', [
      turn.text("the answer", { usage: { input_tokens: 12, output_tokens: 3 } }),
    ]);
    suite.server.script('manifest "slow"', [turn.text("late", { delayMs: 30_000 })]);
    const fx = await suite.start();
    const c = await fx.client();
    const { goal_id } = await c.call("goal.submit", { goal: "answer it", manifest: manifest("solo") });
    expect(goal_id).toMatch(/^g_/);
    const done = await c.call("goal.wait", { goal_id, timeout_ms: 20_000 });
    expect(done).toMatchObject({
      goal_id,
      state: "succeeded",
      result: "the answer",
      usage: { input_tokens: 12, output_tokens: 3 },
      output_dir: join(fx.home.config.goalsDir, goal_id, "output"),
    });
    expect(await c.call("goal.status", { goal_id })).toEqual(done);

    const slow = await c.call("goal.submit", { goal: "take long", manifest: manifest("slow") });
    // A wait that times out returns the goal as it is.
    const waiting = await c.call("goal.wait", { goal_id: slow.goal_id, timeout_ms: 300 });
    expect(["queued", "running"]).toContain(waiting.state);
    const list = await c.call("goal.list", {});
    expect(list.goals.map((g) => g.goal_id).sort()).toEqual([goal_id, slow.goal_id].sort());
    expect((await c.call("goal.list", { state: "succeeded" })).goals.map((g) => g.goal_id)).toEqual([
      goal_id,
    ]);
    await c.call("goal.cancel", { goal_id: slow.goal_id });
    const cancelled = await c.call("goal.wait", { goal_id: slow.goal_id, timeout_ms: 10_000 });
    expect(cancelled.state).toBe("cancelled");
  });

  it("answers -32003 for a goal that does not exist", async () => {
    const fx = await suite.start();
    const c = await fx.client();
    for (const m of ["goal.status", "goal.cancel", "events.subscribe"] as const) {
      const e = await rpcError(c.call(m, { goal_id: "g_missing" }));
      expect(e.rpcCode, m).toBe(-32003);
      expect(e.message).toContain("g_missing");
    }
    expect((await rpcError(c.call("goal.wait", { goal_id: "g_missing", timeout_ms: 10 }))).rpcCode).toBe(
      -32003,
    );
  });

  it("answers -32602 for a manifest that does not parse, naming the key", async () => {
    const fx = await suite.start();
    const c = await fx.client();
    const e = await rpcError(
      c.call("goal.submit", { goal: "x", manifest: { ...manifest("solo"), colour: "red" } }),
    );
    expect(e.rpcCode).toBe(-32602);
    expect(e.message).toContain('unknown key "colour"');
  });
});

describe("the operator's ceiling on socket manifests", () => {
  it("holds a manifest to the bootstrap manifest's grants when no ceiling is configured (-32001 naming each grant)", async () => {
    const fx = await suite.start();
    const c = await fx.client();
    const wide = manifest("wide", {
      capabilities: ["file_read: /workspace/**", "exec: *", "network: *", "file_write: /etc/**"],
    });
    for (const [m, p] of [
      ["agent.spawn", { manifest: wide }],
      ["agent.spawn_and_run", { manifest: wide, message: "go" }],
      ["goal.submit", { goal: "go", manifest: wide }],
    ] as const) {
      const e = await rpcError(c.call(m, p));
      expect(e.rpcCode, m).toBe(-32001);
      expect(e.message).toContain('"exec: *"');
      expect(e.message).toContain('"network: *"');
      expect(e.message).toContain('"file_write: /etc/**"');
      expect(e.message).not.toContain('"file_read: /workspace/**"');
      expect(e.message).toContain("bootstrap manifest");
      expect(e.details.offending).toEqual(["exec: *", "network: *", "file_write: /etc/**"]);
    }
    // YAML text is held to the same ceiling.
    const yaml = `name: sneaky\nmodel: anthropic/claude-test\nsystem_prompt: hi\ncapabilities: ["exec: rm *"]\n`;
    expect((await rpcError(c.call("agent.spawn", { manifest: yaml }))).rpcCode).toBe(-32001);
    // Nothing was started by any of these.
    expect((await c.call("agent.list", { include_stopped: true })).agents).toEqual([]);
    expect((await c.call("goal.list", {})).goals).toEqual([]);
    const narrow = await c.call("agent.spawn", {
      manifest: manifest("narrow", { capabilities: ["file_read: /workspace/**"] }),
    });
    expect(narrow.state).toBe("paused");
  });

  it("holds a manifest to config.grantCeilings when the operator configured one", async () => {
    const fx = await suite.start({
      config: (c) => (c.grantCeilings = [["tool: memory_query", "file_read: /workspace/**"]]),
    });
    const c = await fx.client();
    const e = await rpcError(
      c.call("agent.spawn", {
        manifest: manifest("w", { capabilities: ["tool: memory_query", "tool: memory_store"] }),
      }),
    );
    expect(e.rpcCode).toBe(-32001);
    expect(e.message).toContain('"tool: memory_store"');
    expect(e.message).toContain("configured grants ceiling");
    // Within the configured ceiling, even though the bootstrap holds no such thing as this exact set.
    const ok = await c.call("agent.spawn", {
      manifest: manifest("w", { capabilities: ["tool: memory_query"] }),
    });
    expect(ok.manifest).toBe("w");
  });

  it("holds a root's model to models.allowed on every method that starts one (-32001 naming the model)", async () => {
    // Without AIDO_MODEL the manifest's own model is the root's, and the default allow-list
    // is the shipped manifests' models.
    const fx = await suite.start({ env: { AIDO_MODEL: "" } });
    const c = await fx.client();
    const elsewhere = manifest("elsewhere", { model: "openai/gpt-4o" });
    for (const [m, p] of [
      ["agent.spawn", { manifest: elsewhere }],
      ["agent.spawn_and_run", { manifest: elsewhere, message: "go" }],
      ["goal.submit", { goal: "go", manifest: elsewhere }],
    ] as const) {
      const e = await rpcError(c.call(m, p));
      expect(e.rpcCode, m).toBe(-32001);
      expect(e.message).toContain(
        'model: "openai/gpt-4o" is not allowed by models.allowed (anthropic/claude-sonnet-4-5)',
      );
    }
    expect((await c.call("agent.list", { include_stopped: true })).agents).toEqual([]);
    expect((await c.call("goal.list", {})).goals).toEqual([]);
    const denied = await c.call("audit.query", { kind: "agent.spawn_denied" });
    expect(denied.entries.map((e) => (e.payload as { keys?: string[] }).keys)).toEqual([
      ["model"],
      ["model"],
      ["model"],
    ]);
    const shipped = await c.call("agent.spawn", {
      manifest: manifest("shipped", { model: "anthropic/claude-sonnet-4-5" }),
    });
    expect(shipped.model).toBe("anthropic/claude-sonnet-4-5");
  });

  it("reads manifest_path only inside daemon.manifest_dirs: no traversal, no prefix sibling, no symlink out", async () => {
    const { fx, dirs } = await startWithManifestDir();
    const home = fx.home.dir;
    mkdirSync(dirs);
    mkdirSync(join(home, "manifests-evil"));
    const body = (name: string) => `name: ${name}\nmodel: anthropic/claude-test\nsystem_prompt: hi\n`;
    writeFileSync(join(dirs, "inside.yaml"), body("inside"));
    writeFileSync(join(home, "outside.yaml"), body("outside"));
    writeFileSync(join(home, "manifests-evil", "evil.yaml"), body("evil"));
    symlinkSync(join(home, "outside.yaml"), join(dirs, "link.yaml"));
    const c = await fx.client();
    expect((await c.call("agent.spawn", { manifest_path: join(dirs, "inside.yaml") })).manifest).toBe(
      "inside",
    );
    expect((await c.call("agent.spawn", { manifest_path: "inside.yaml" })).manifest).toBe("inside");
    for (const p of [
      join(home, "outside.yaml"),
      join(dirs, "..", "outside.yaml"),
      "../outside.yaml",
      "../manifests-evil/evil.yaml",
      join(home, "manifests-evil", "evil.yaml"),
      join(dirs, "link.yaml"),
      "link.yaml",
    ]) {
      const e = await rpcError(c.call("agent.spawn", { manifest_path: p }));
      expect(e.rpcCode, p).toBe(-32001);
      expect(e.message).toContain("outside the daemon's manifest directories");
    }
    expect((await rpcError(c.call("agent.spawn", { manifest_path: "nope.yaml" }))).rpcCode).toBe(-32003);
    // A file inside the directory is still held to the ceiling.
    writeFileSync(join(dirs, "wide.yaml"), `${body("wide")}capabilities: ["exec: *"]\n`);
    expect((await rpcError(c.call("agent.spawn", { manifest_path: "wide.yaml" }))).rpcCode).toBe(-32001);
  });

  it("spawns a manifest_path whose grants fit the ceiling, holding those grants", async () => {
    const { fx, dirs } = await startWithManifestDir();
    mkdirSync(dirs);
    writeFileSync(
      join(dirs, "reader.yaml"),
      'name: reader\nmodel: anthropic/claude-test\nsystem_prompt: hi\ncapabilities: ["tool: file_read", "file_read: /workspace/**"]\n',
    );
    const c = await fx.client();
    const spawned = await c.call("agent.spawn", { manifest_path: "reader.yaml" });
    expect(spawned.manifest).toBe("reader");
    const [entry] = (await c.call("audit.query", { agent_id: spawned.agent_id, kind: "agent.spawned" }))
      .entries;
    expect((entry?.payload as { grants?: string[] } | undefined)?.grants).toEqual([
      "tool: file_read",
      "file_read: /workspace/**",
    ]);
  });
});

/** A daemon whose daemon.manifest_dirs is one folder of its home, not yet made. */
async function startWithManifestDir() {
  let dirs = "";
  const fx = await suite.start({
    config: (c) => {
      dirs = join(c.home, "manifests");
      c.daemon.manifestDirs = [dirs];
    },
  });
  return { fx, dirs };
}

describe("agent.*", () => {
  it("spawns, lists, runs, reports and stops agents", async () => {
    suite.server.script('manifest "helper"', [
      turn.text("hello back", { usage: { input_tokens: 5, output_tokens: 2 } }),
    ]);
    suite.server.script('manifest "keeper"', [turn.text("one"), turn.text("two")]);
    suite.server.script('manifest "oneshot"', [turn.text("did it")]);
    const fx = await suite.start();
    const c = await fx.client();
    const helper = await c.call("agent.spawn", { manifest: manifest("helper") });
    expect(helper).toMatchObject({ manifest: "helper", state: "paused", depth: 0, parent_id: null });
    const keeper = await c.call("agent.spawn", { manifest: manifest("keeper", { lifecycle: "persistent" }) });
    expect((await c.call("agent.list", {})).agents.map((a) => a.agent_id).sort()).toEqual(
      [helper.agent_id, keeper.agent_id].sort(),
    );
    const r = await c.call("agent.run", { agent_id: helper.agent_id, message: "hello" });
    expect(r).toMatchObject({ agent_id: helper.agent_id, stop_reason: "complete", text: "hello back" });
    // An on-demand agent ends with its task; a persistent one waits for the next message.
    expect((await c.call("agent.status", { agent_id: helper.agent_id })).state).toBe("stopped");
    expect((await c.call("agent.run", { agent_id: keeper.agent_id, message: "1" })).text).toBe("one");
    expect((await c.call("agent.run", { agent_id: keeper.agent_id, message: "2" })).text).toBe("two");
    expect((await c.call("agent.status", { agent_id: keeper.agent_id })).state).toBe("paused");
    const stopped = await c.call("agent.stop", { agent_id: keeper.agent_id });
    expect(stopped.state).toBe("stopped");
    expect((await c.call("agent.list", {})).agents).toEqual([]);
    expect((await c.call("agent.list", { include_stopped: true })).agents).toHaveLength(2);
    const once = await c.call("agent.spawn_and_run", { manifest: manifest("oneshot"), message: "do it" });
    expect(once).toMatchObject({ stop_reason: "complete", text: "did it" });
  });

  it("answers -32003 for an agent that does not exist, and for running a stopped one", async () => {
    const fx = await suite.start();
    const c = await fx.client();
    for (const [m, p] of [
      ["agent.status", { agent_id: "a_none" }],
      ["agent.stop", { agent_id: "a_none" }],
      ["agent.run", { agent_id: "a_none", message: "hi" }],
      ["tool.invoke", { agent_id: "a_none", tool: "memory_query", input: { query: "x" } }],
    ] as const) {
      expect((await rpcError(c.call(m, p))).rpcCode, m).toBe(-32003);
    }
    const a = await c.call("agent.spawn", { manifest: manifest("gone") });
    await c.call("agent.stop", { agent_id: a.agent_id });
    expect((await rpcError(c.call("agent.run", { agent_id: a.agent_id, message: "hi" }))).rpcCode).toBe(
      -32003,
    );
  });
});

describe("tool.* and approval.*", () => {
  const memoryAgent = (extra: Record<string, unknown> = {}) =>
    manifest("memo", {
      lifecycle: "persistent",
      capabilities: ["tool: memory_store", "tool: memory_query"],
      ...extra,
    });

  it("lists the tools with their input schemas", async () => {
    const fx = await suite.start();
    const c = await fx.client();
    const { tools } = await c.call("tool.list", {});
    const names = tools.map((t) => t.name);
    expect(names).toEqual([...names].sort());
    for (const n of ["memory_query", "memory_store", "skill_read", "spawn_agent", "spawn_agents"])
      expect(names).toContain(n);
    expect(tools.find((t) => t.name === "memory_store")?.input_schema).toMatchObject({ type: "object" });
  });

  it("runs a tool through the gate for an agent that holds the grant", async () => {
    const fx = await suite.start();
    const c = await fx.client();
    const a = await c.call("agent.spawn", { manifest: memoryAgent() });
    const stored = await c.call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "memory_store",
      input: { content: "the socket works", category: "fact" },
    });
    expect(stored.is_error).toBe(false);
    const found = await c.call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "memory_query",
      input: { query: "socket" },
    });
    expect(found.output).toContain("the socket works");
    const audit = await c.call("audit.query", { agent_id: a.agent_id, kind: "tool.invoked" });
    expect(audit.entries.map((e) => (e.payload as { tool: string }).tool).sort()).toEqual([
      "memory_query",
      "memory_store",
    ]);
  });

  it("refuses a tool the agent holds no grant for with -32001, and audits the denial", async () => {
    const fx = await suite.start();
    const c = await fx.client();
    const a = await c.call("agent.spawn", {
      manifest: manifest("bare", { capabilities: ["tool: memory_query"] }),
    });
    const e = await rpcError(
      c.call("tool.invoke", {
        agent_id: a.agent_id,
        tool: "memory_store",
        input: { content: "x", category: "fact" },
      }),
    );
    expect(e.rpcCode).toBe(-32001);
    expect(e.code).toBe("capability_denied");
    const denied = await c.call("audit.query", { agent_id: a.agent_id, kind: "tool.denied" });
    expect(denied.entries[0]?.payload).toMatchObject({ tool: "memory_store", stage: "capability" });
  });

  it("refuses spawn_agent with a widening child manifest with -32001 naming every offending key", async () => {
    const fx = await suite.start();
    const c = await fx.client();
    const lead = await c.call("agent.spawn", {
      manifest: manifest("lead", {
        capabilities: ["tool: spawn_agent", "tool: memory_query", "spawn_child: [researcher]"],
        limits: { max_iterations: 5 },
        skills: ["write-report"],
      }),
    });
    const e = await rpcError(
      c.call("tool.invoke", {
        agent_id: lead.agent_id,
        tool: "spawn_agent",
        input: {
          manifest: {
            name: "researcher",
            capabilities: ["tool: memory_query", "tool: memory_store"],
            limits: { max_iterations: 6 },
            skills: ["research-with-citations"],
          },
          message: "go",
        },
      }),
    );
    expect(e.rpcCode).toBe(-32001);
    for (const part of [
      'capabilities: "tool: memory_store" exceed the parent\'s',
      'skills: "research-with-citations" not in the parent\'s skills [write-report]',
      "limits.max_iterations: 6 is above the parent's 5",
    ])
      expect(e.message).toContain(part);
    expect((await c.call("agent.list", { include_stopped: true })).agents).toHaveLength(1);
  });

  it("answers -32602 for an unknown tool or tool input that fails its schema", async () => {
    const fx = await suite.start();
    const c = await fx.client();
    const a = await c.call("agent.spawn", { manifest: memoryAgent() });
    const unknown = await rpcError(
      c.call("tool.invoke", { agent_id: a.agent_id, tool: "launch_missiles", input: {} }),
    );
    expect(unknown.rpcCode).toBe(-32602);
    expect(unknown.message).toContain("launch_missiles");
    const bad = await rpcError(
      c.call("tool.invoke", { agent_id: a.agent_id, tool: "memory_query", input: { q: 1 } }),
    );
    expect(bad.rpcCode).toBe(-32602);
  });

  it("answers -32602 naming the depth for tool input nested 20,000 levels deep, and audits it", async () => {
    const fx = await suite.start();
    const c = await fx.client();
    const a = await c.call("agent.spawn", { manifest: memoryAgent() });
    // Built as text: deeper than JSON.stringify (and the audit's encoder) can walk.
    const n = 20_000;
    const input = `{"query":"x","extra":${'{"a":'.repeat(n)}1${"}".repeat(n)}}`;
    const raw = await rawConnect(fx.home.config.socketPath);
    try {
      raw.send(
        `{"jsonrpc":"2.0","id":7,"method":"tool.invoke","params":{"agent_id":"${a.agent_id}","tool":"memory_query","input":${input}}}\n`,
      );
      // First the id the daemon gave the call (request.started), then the answer.
      expect(await raw.next()).toMatchObject({ method: "request.started", params: { id: 7 } });
      const reply = await raw.next();
      expect(reply).toMatchObject({ id: 7, error: { code: -32602 } });
      expect((reply.error as { message: string }).message).toContain(
        `arguments nest deeper than 64 levels (they nest ${n + 1})`,
      );
    } finally {
      raw.close();
    }
    const denied = (await c.call("audit.query", { agent_id: a.agent_id, kind: "tool.denied" })).entries;
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({
      payload: { tool: "memory_query", stage: "schema", code: "invalid_input" },
    });
    expect(JSON.stringify(denied[0])).not.toContain('{"a":{"a"');
  });

  it("holds a call that needs approval until a second client allows it", async () => {
    const fx = await suite.start();
    const caller = await fx.client();
    const human = await fx.client();
    const a = await caller.call("agent.spawn", {
      manifest: memoryAgent({ approval_required: ["memory_store"] }),
    });
    let settled = false;
    const call = caller
      .call("tool.invoke", {
        agent_id: a.agent_id,
        tool: "memory_store",
        input: { content: "approved fact", category: "fact" },
      })
      .finally(() => {
        settled = true;
      });
    let pending = (await human.call("approval.list", {})).approvals;
    for (let i = 0; pending.length === 0 && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 20));
      pending = (await human.call("approval.list", {})).approvals;
    }
    expect(pending).toHaveLength(1);
    expect(pending[0]).toMatchObject({ agent_id: a.agent_id, tool: "memory_store", status: "pending" });
    expect(settled).toBe(false);
    const decided = await human.call("approval.respond", { id: pending[0]!.id, decision: "allow_once" });
    expect(decided).toMatchObject({ status: "decided", decision: "allow_once" });
    expect((await call).is_error).toBe(false);
    expect((await human.call("approval.list", { status: "decided" })).approvals).toHaveLength(1);
    expect((await human.call("approval.list", {})).approvals).toHaveLength(0);
  });

  it("answers -32004 when the human denies, and -32003 for an approval that does not exist", async () => {
    const fx = await suite.start();
    const caller = await fx.client();
    const human = await fx.client();
    const a = await caller.call("agent.spawn", {
      manifest: memoryAgent({ approval_required: ["memory_store"] }),
    });
    const call = rpcError(
      caller.call("tool.invoke", {
        agent_id: a.agent_id,
        tool: "memory_store",
        input: { content: "no", category: "fact" },
      }),
    );
    let pending = (await human.call("approval.list", {})).approvals;
    for (let i = 0; pending.length === 0 && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 20));
      pending = (await human.call("approval.list", {})).approvals;
    }
    await human.call("approval.respond", { id: pending[0]!.id, decision: "deny" });
    const e = await call;
    expect(e.rpcCode).toBe(-32004);
    expect(e.code).toBe("approval_denied");
    expect(
      (await rpcError(human.call("approval.respond", { id: "apr_nope", decision: "deny" }))).rpcCode,
    ).toBe(-32003);
  });

  it("answers -32002 when the agent's token budget is spent", async () => {
    suite.server.script('manifest "memo"', [
      turn.text("spent it all", { usage: { input_tokens: 60_000, output_tokens: 10 } }),
    ]);
    const fx = await suite.start();
    const c = await fx.client();
    const a = await c.call("agent.spawn", { manifest: memoryAgent({ budget: { max_tokens: 50_000 } }) });
    await c.call("agent.run", { agent_id: a.agent_id, message: "spend" });
    const e = await rpcError(
      c.call("tool.invoke", { agent_id: a.agent_id, tool: "memory_query", input: { query: "x" } }),
    );
    expect(e.rpcCode).toBe(-32002);
    expect(e.code).toBe("budget_exceeded");
  });
});

describe("audit.*", () => {
  it("verifies the chain and queries entries by goal, agent and kind", async () => {
    suite.server.script('manifest "solo"', [turn.text("ok")]);
    const fx = await suite.start();
    const c: AidoClient = await fx.client();
    const { goal_id } = await c.call("goal.submit", { goal: "audit me", manifest: manifest("solo") });
    await c.call("goal.wait", { goal_id, timeout_ms: 20_000 });
    const v = await c.call("audit.verify", {});
    expect(v.ok).toBe(true);
    expect(v.entries).toBeGreaterThan(3);
    expect(v.first_bad_seq).toBeUndefined();
    const byGoal = await c.call("audit.query", { goal_id });
    const kinds = byGoal.entries.map((e) => e.kind);
    expect(kinds).toContain("goal.submitted");
    expect(kinds).toContain("goal.finished");
    expect(byGoal.entries.every((e) => e.goal_id === goal_id)).toBe(true);
    const one = await c.call("audit.query", { kind: "goal.finished", limit: 1 });
    expect(one.entries).toHaveLength(1);
    // Tampering is found and named.
    fx.daemon.runtime.db.prepare("UPDATE audit SET payload = '{}' WHERE seq = 2").run();
    const bad = await c.call("audit.verify", {});
    expect(bad).toMatchObject({ ok: false, first_bad_seq: 2 });
  });

  it("checks the tail against the signed head and an anchor, and names a bad anchor as the field", async () => {
    suite.server.script('manifest "solo"', [turn.text("ok")]);
    const fx = await suite.start();
    const c: AidoClient = await fx.client();
    const { goal_id } = await c.call("goal.submit", { goal: "audit my tail", manifest: manifest("solo") });
    await c.call("goal.wait", { goal_id, timeout_ms: 20_000 });
    const db = fx.daemon.runtime.db;
    const v = await c.call("audit.verify", {});
    expect(v).toMatchObject({ ok: true, head_seq: v.entries });
    const hashAt = (seq: number) =>
      db.prepare("SELECT hash FROM audit WHERE seq = ?").pluck().get(seq) as string;
    const anchor = `${v.entries}:${hashAt(v.entries)}`;
    expect(await c.call("audit.verify", { anchor })).toMatchObject({ ok: true });
    const e = await rpcError(c.call("audit.verify", { anchor: "last:abc" }));
    expect(e.rpcCode).toBe(-32602);
    expect(e.message).toContain("anchor");
    // The tail after the last checkpoint is cut with SQL behind the daemon's back.
    const last = v.entries;
    db.prepare("DELETE FROM audit WHERE seq > ?").run(last - 2);
    expect(await c.call("audit.verify", {})).toMatchObject({ ok: false, first_bad_seq: last - 1 });
    expect(await c.call("audit.verify", { anchor })).toMatchObject({ ok: false, first_bad_seq: last - 1 });
    // The running daemon notices at its next write and says so in the chain itself.
    await c.call("goal.submit", { goal: "after the cut", manifest: manifest("solo") });
    const broken = await c.call("audit.query", { kind: "audit.head_broken" });
    expect(broken.entries).toHaveLength(1);
    expect((await c.call("audit.verify", {})).first_bad_seq).toBe(broken.entries[0]!.seq);
  });
});
