// The orchestrator tools of `aido mcp serve`, through the SDK client: a goal handed to
// the swarm (aido_submit) runs with the real SDK against the scripted provider and is
// followed with aido_status / aido_wait / aido_events (a cursor that pages forward);
// aido_approve answers approvals of goals this session submitted only with
// --allow-approve, never those of goals it did not submit, and another client's goal is not
// its to read or steer (each refusal audited by the
// daemon as session.call_refused); aido_orchestrator_info tells
// the session's grants. A server started where no daemon listens starts one.

import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { manifest } from "../daemon/fixture.js";
import { requireDocker } from "../support/docker.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import { turn } from "../support/provider-server.js";
import { CLI, textOf, until, useMcpSuite } from "./fixture.js";

beforeAll(() => requireDocker());
const suite = useMcpSuite();

const json = (r: unknown) => JSON.parse(textOf(r)) as Record<string, unknown>;

const writer = (name: string) =>
  manifest(name, {
    capabilities: ["tool: file_write", "file_write: /workspace/**"],
    approval_required: ["file_write"],
  });

describe("goals handed to the swarm", () => {
  it("aido_submit, aido_status, aido_wait and aido_events with a cursor", async () => {
    await suite.start();
    suite.server.script('manifest "helper"', [turn.text("all done")]);
    const client = await suite.connect();
    const sub = json(
      await client.callTool({
        name: "aido_submit",
        arguments: { goal: "say done", manifest: manifest("helper") },
      }),
    );
    const goalId = sub.goal_id as string;
    expect(goalId).toMatch(/^g_/);
    const done = json(
      await client.callTool({ name: "aido_wait", arguments: { goal_id: goalId, timeout_ms: 30_000 } }),
    );
    expect(done.state).toBe("succeeded");
    expect(done.result).toContain("all done");
    expect(json(await client.callTool({ name: "aido_status", arguments: { goal_id: goalId } })).state).toBe(
      "succeeded",
    );

    const first = json(
      await client.callTool({ name: "aido_events", arguments: { goal_id: goalId, limit: 2 } }),
    );
    const entries = first.entries as { seq: number; kind: string }[];
    expect(entries.map((e) => e.kind)[0]).toBe("goal.submitted");
    expect(first.cursor).toBe(entries[1]?.seq);
    const next = json(
      await client.callTool({ name: "aido_events", arguments: { goal_id: goalId, cursor: first.cursor } }),
    );
    const rest = next.entries as { seq: number; kind: string }[];
    expect(rest[0]?.seq).toBeGreaterThan(first.cursor as number);
    expect(rest.map((e) => e.kind)).toContain("goal.finished");
  });

  it("runs aido_wait on a connection of its own, which the client's cancel closes at once", async () => {
    const fx = await suite.start();
    suite.server.script('manifest "slow"', [turn.hang()]);
    const client = await suite.connect();
    const { goal_id } = json(
      await client.callTool({ name: "aido_submit", arguments: { goal: "hang", manifest: manifest("slow") } }),
    );
    const base = fx.daemon.connectionCount;
    const abort = new AbortController();
    const wait = client
      .callTool({ name: "aido_wait", arguments: { goal_id, timeout_ms: 600_000 } }, undefined, {
        signal: abort.signal,
        timeout: 700_000,
      })
      .catch((e: Error) => e);
    // The wait holds a daemon connection of its own, and other calls answer meanwhile.
    await until(() => fx.daemon.connectionCount === base + 1);
    expect(json(await client.callTool({ name: "aido_status", arguments: { goal_id } })).state).toBe(
      "running",
    );
    abort.abort();
    expect(await wait).toBeInstanceOf(Error);
    // Cancelled, the daemon's goal.wait ends with its connection: nothing is held for ten minutes.
    await until(() => fx.daemon.connectionCount === base, 5_000);
    await client.callTool({ name: "aido_cancel", arguments: { goal_id } });
  });

  it("steers only goals it submitted", async () => {
    const fx = await suite.start();
    suite.server.script('manifest "other"', [turn.hang()]);
    const c = await fx.client();
    const { goal_id } = await c.call("goal.submit", { goal: "someone else's", manifest: manifest("other") });
    const client = await suite.connect();
    const cancel = await client.callTool({ name: "aido_cancel", arguments: { goal_id } });
    expect(cancel.isError).toBe(true);
    expect(textOf(cancel)).toContain("not submitted by this MCP session");
    const events = await client.callTool({ name: "aido_events", arguments: { goal_id } });
    expect(events.isError).toBe(true);
    await c.call("goal.cancel", { goal_id });
  });

  it("sees only goals it submitted: another's status, result and output folder are not its to read", async () => {
    const fx = await suite.start();
    suite.server.script('manifest "other"', [turn.text("the other client's secret result")]);
    const c = await fx.client();
    const { goal_id } = await c.call("goal.submit", { goal: "someone else's", manifest: manifest("other") });
    await c.call("goal.wait", { goal_id, timeout_ms: 30_000 });
    const client = await suite.connect();
    for (const [name, args] of [
      ["aido_status", { goal_id }],
      ["aido_wait", { goal_id, timeout_ms: 0 }],
    ] as const) {
      const r = await client.callTool({ name, arguments: args });
      expect(r.isError, `${name}: ${textOf(r)}`).toBe(true);
      expect(textOf(r)).toContain(`goal ${goal_id} was not submitted by this MCP session`);
      expect(textOf(r)).not.toContain("secret result");
      expect(textOf(r)).not.toContain(fx.home.config.home);
    }
    const refused = (await c.call("audit.query", { kind: "session.call_refused" })).entries;
    expect(refused.map((e) => (e.payload as { tool: string }).tool).sort()).toEqual([
      "aido_status",
      "aido_wait",
    ]);
  });
});

describe("aido_submit's inputs", () => {
  it("come only from the session's project folder: a host file outside it, by any spelling, is refused and audited", async () => {
    const fx = await suite.start();
    const outside = mkdtempSync(join(tmpdir(), "aido-mcp-outside-"));
    try {
      writeFileSync(join(outside, "id_rsa"), "PRIVATE KEY\n");
      writeFileSync(join(suite.project, "data.txt"), "project data\n");
      symlinkSync(join(outside, "id_rsa"), join(suite.project, "key-link"));
      const client = await suite.connect();
      const c = await fx.client();
      const spellings = [
        join(outside, "id_rsa"),
        relative(suite.project, join(outside, "id_rsa")),
        "key-link",
        outside,
      ];
      for (const given of spellings) {
        const r = await client.callTool({
          name: "aido_submit",
          arguments: { goal: "read it", inputs: [given] },
        });
        expect(r.isError, `${given}: ${textOf(r)}`).toBe(true);
        expect(textOf(r)).toContain("inputs.0");
        expect(textOf(r)).toContain("outside the session's project folder");
      }
      const missing = await client.callTool({
        name: "aido_submit",
        arguments: { goal: "x", inputs: ["nope.txt"] },
      });
      expect(textOf(missing)).toContain('inputs.0: "nope.txt" does not exist');
      expect((await c.call("goal.list", {})).goals).toHaveLength(0);
      const refused = (await c.call("audit.query", { kind: "session.call_refused" })).entries;
      expect(refused.map((e) => (e.payload as { tool: string }).tool)).toEqual(Array(5).fill("aido_submit"));

      suite.server.script('manifest "reader"', [turn.text("read")]);
      const ok = json(
        await client.callTool({
          name: "aido_submit",
          arguments: { goal: "read data.txt", manifest: manifest("reader"), inputs: ["data.txt"] },
        }),
      );
      const done = json(
        await client.callTool({ name: "aido_wait", arguments: { goal_id: ok.goal_id, timeout_ms: 30_000 } }),
      );
      expect(done.state).toBe("succeeded");
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });
});

describe("aido_approve", () => {
  it("answers approvals of its own goals only with --allow-approve, never another's", async () => {
    const fx = await suite.start();
    const write = turn.toolUse("file_write", { path: "/workspace/a.txt", content: "a" });
    suite.server.script('manifest "mine"', [write, turn.text("wrote it")]);
    suite.server.script('manifest "theirs"', [write, turn.text("wrote it")]);
    suite.server.script('manifest "mine-too"', [write, turn.text("wrote it")]);
    const human = await fx.client();
    const { goal_id: theirs } = await human.call("goal.submit", {
      goal: "theirs",
      manifest: writer("theirs"),
    });

    const strict = await suite.connect();
    const strictGoal = json(
      await strict.callTool({ name: "aido_submit", arguments: { goal: "mine", manifest: writer("mine") } }),
    ).goal_id as string;
    await until(async () => (await human.call("approval.list", {})).approvals.length === 2);
    const listed = json(await strict.callTool({ name: "aido_approvals", arguments: {} })).approvals as {
      id: string;
      goal_id: string;
    }[];
    expect(listed.map((a) => a.goal_id)).toEqual([strictGoal]);
    const off = await strict.callTool({
      name: "aido_approve",
      arguments: { id: listed[0]?.id, decision: "allow_once" },
    });
    expect(off.isError).toBe(true);
    expect(textOf(off)).toContain("--allow-approve");

    const open = await suite.connect({ args: ["--allow-approve"] });
    const foreign = (await human.call("approval.list", {})).approvals.find((a) => a.goal_id === theirs);
    const refused = await open.callTool({
      name: "aido_approve",
      arguments: { id: foreign?.id, decision: "allow_once" },
    });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toContain("did not submit");
    // Refused in the MCP server, before the daemon was asked: both refusals are in the daemon's log.
    const audited = await human.call("audit.query", { kind: "session.call_refused" });
    const reasons = audited.entries.map((e) => (e.payload as { tool: string; reason: string }).reason);
    expect(audited.entries.every((e) => (e.payload as { tool: string }).tool === "aido_approve")).toBe(true);
    expect(reasons.some((r) => r.includes("--allow-approve"))).toBe(true);
    expect(reasons.some((r) => r.includes("did not submit"))).toBe(true);
    for (const g of [theirs, strictGoal]) await human.call("goal.cancel", { goal_id: g });

    const ownGoal = json(
      await open.callTool({
        name: "aido_submit",
        arguments: { goal: "mine too", manifest: writer("mine-too") },
      }),
    ).goal_id as string;
    const own = await until(async () =>
      (await human.call("approval.list", {})).approvals.some((a) => a.goal_id === ownGoal),
    ).then(async () => (await human.call("approval.list", {})).approvals.find((a) => a.goal_id === ownGoal));
    // Allow Always would outlive the goal (a grant for the manifest the model named, covering the
    // person's later goals of that name): refused, audited, the approval left pending.
    const always = await open.callTool({
      name: "aido_approve",
      arguments: { id: own?.id, decision: "allow_always" },
    });
    expect(always.isError).toBe(true);
    expect(textOf(always)).toContain("answers allow_once, allow_session or deny");
    const alwaysAudited = await human.call("audit.query", { kind: "session.call_refused" });
    expect(
      alwaysAudited.entries.some((e) =>
        (e.payload as { reason: string }).reason.includes("Allow Always outlives"),
      ),
    ).toBe(true);
    expect((await human.call("approval.list", {})).approvals.some((a) => a.id === own?.id)).toBe(true);
    expect((await human.call("approval.grants", {})).grants).toEqual([]);
    const ok = await open.callTool({
      name: "aido_approve",
      arguments: { id: own?.id, decision: "allow_once" },
    });
    expect(ok.isError ?? false).toBe(false);
    const end = json(
      await open.callTool({ name: "aido_wait", arguments: { goal_id: ownGoal, timeout_ms: 30_000 } }),
    );
    expect(end.state).toBe("succeeded");
  });
});

describe("aido_orchestrator_info", () => {
  it("audits a malformed aido_approve it refuses before asking the daemon", async () => {
    const fx = await suite.start();
    const client = await suite.connect({ args: ["--allow-approve"] });
    const bad = await client.callTool({
      name: "aido_approve",
      arguments: { id: "a_1", decision: "allow_forever" },
    });
    expect(bad.isError).toBe(true);
    expect(textOf(bad)).toContain("invalid input for aido_approve: decision");
    const human = await fx.client();
    const audited = await human.call("audit.query", { kind: "session.call_refused" });
    expect(audited.entries.map((e) => e.payload)).toContainEqual(
      expect.objectContaining({
        tool: "aido_approve",
        reason: expect.stringContaining("invalid input for aido_approve: decision"),
      }),
    );
  });

  it("audits a call of a tool the session was not given: a runtime tool the MCP face does not offer", async () => {
    const fx = await suite.start();
    const client = await suite.connect();
    const listed = (await client.listTools()).tools.map((t) => t.name);
    expect(listed).not.toContain("spawn_agents");
    const refused = await client.callTool({ name: "spawn_agents", arguments: { children: [] } }).then(
      (r) => (r.isError ? textOf(r) : "answered"),
      (e: unknown) => String(e),
    );
    expect(refused).toContain('unknown tool "spawn_agents"');
    const human = await fx.client();
    const audited = await human.call("audit.query", { kind: "session.call_refused" });
    expect(audited.entries.map((e) => e.payload)).toContainEqual(
      expect.objectContaining({ tool: "spawn_agents", reason: expect.stringContaining("unknown tool") }),
    );
  });

  it("tells the version, limits, policy and the session's held grants", async () => {
    await suite.start();
    const client = await suite.connect();
    const info = json(await client.callTool({ name: "aido_orchestrator_info", arguments: {} }));
    expect(typeof info.version).toBe("string");
    const session = info.session as { grants: string[]; workspace: string; approval_required: string[] };
    expect(session.grants).toContain("file_write: /workspace/**");
    expect(session.workspace).toBe(suite.project);
    expect(session.approval_required).toContain("exec");
    expect(info.policy).toMatchObject({ snapshot_before_mutation: true, approve_from_mcp: "off" });
  });
});

describe("no daemon running", () => {
  let home: TempHome | undefined;
  afterEach(async () => {
    if (!home) return;
    const pid = Number(readFileSync(home.config.pidPath, "utf8"));
    process.kill(pid, "SIGTERM");
    await until(() => !existsSync(home?.config.socketPath ?? ""), 20_000);
    home.cleanup();
    home = undefined;
  });

  it("starts the daemon detached, then serves", async () => {
    home = makeTempHome();
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ...home.env }))
      if (typeof v === "string") env[k] = v;
    const client = new Client({ name: "aido-test-client", version: "1.0.0" });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: ["--import", "tsx", CLI, "mcp", "serve"],
        env,
        stderr: "pipe",
      }),
    );
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain("file_read");
    expect(existsSync(home.config.pidPath)).toBe(true);
    await client.close();
  });
});
