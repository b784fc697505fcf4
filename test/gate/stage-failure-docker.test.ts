// A call whose goal container cannot be had ends before tool.invoked with the sandbox's error;
// it is audited as tool.errored at stage needs (gate/stage-failure.ts), once, and the chain still
// verifies. Before, such a call left no tool.* entry at all: the agent saw an error, the log
// nothing. The engine is the real one, behind a socket that refuses chosen requests
// (test/support/engine-proxy.ts); a container removed under the goal is removed for real.

import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { AidoError } from "../../src/errors.js";
import { Runtime } from "../../src/kernel/runtime.js";
import { DockerBackend } from "../../src/sandbox/docker.js";
import { goalFolders } from "../../src/sandbox/folders.js";
import type { AuditEntry } from "../../src/security/audit-events.js";
import { requireDocker } from "../support/docker.js";
import { type EngineProxy, engineProxy } from "../support/engine-proxy.js";
import { makeTempHome, type TempHome } from "../support/home.js";

let engine: EngineProxy;
let home: TempHome;
let rt: Runtime;
let backend: DockerBackend;
/** Requests the engine refuses while set: a predicate on the request's first line. */
let refuse: (line: string) => boolean = () => false;

beforeAll(async () => {
  requireDocker();
  engine = await engineProxy((line) => (refuse(line) ? "refuse" : undefined));
  home = makeTempHome({ AIDO_MODEL: "anthropic/claude-test", ANTHROPIC_API_KEY: "sk-ant-unused" });
  home.config.policy.snapshotBeforeMutation = false;
  home.config.sandbox.warmPool = 0; // each goal's container is created for it, through the proxy
  backend = new DockerBackend(home.config, { labels: { "aido.test": "sandbox" }, docker: engine.docker });
  rt = await Runtime.open(home.config, { backend });
}, 180_000);
afterAll(async () => {
  await rt?.close();
  await backend?.removeAll();
  await engine?.close();
  home?.cleanup();
});

const spawn = (name: string) => {
  const s = rt.spawnAgent({
    name,
    system_prompt: "reads",
    capabilities: ["tool: file_read", "file_read: /workspace/**"],
    budget: { max_tokens: 10_000 },
  });
  return { id: s.agent_id, goalId: rt.registry.require(s.agent_id).goalId };
};

const read = (agentId: string, path = "/workspace/a.txt") =>
  rt.invokeTool(agentId, "file_read", { path }).then(
    () => undefined,
    (e: unknown) => e as AidoError,
  );

/** The tool.* entries of one agent, newest first. */
const toolEntries = (agentId: string): AuditEntry[] =>
  rt.audit.query({ agent_id: agentId }).filter((e) => e.kind.startsWith("tool."));

async function auditVerifies(): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  const io = { out: (l: string) => out.push(l), err: (l: string) => out.push(l), interactive: false };
  const code = await runCli(["audit", "verify"], io, home.env);
  return { code, out: out.join("\n") };
}

describe("a call whose goal container cannot be had", () => {
  it("is audited as tool.errored at stage needs when the engine refuses to create the container", async () => {
    const a = spawn("create-refused");
    refuse = (line) =>
      line.startsWith("POST ") &&
      line.includes(`/containers/create?name=`) &&
      line.includes(`_goal_${a.goalId}`);
    const e = await read(a.id);
    refuse = () => false;
    expect(e).toBeInstanceOf(AidoError);
    const entries = toolEntries(a.id);
    expect(entries.map((x) => x.kind)).toEqual(["tool.errored"]);
    expect(entries[0]?.payload).toMatchObject({ tool: "file_read", stage: "needs", code: e?.code });
    expect(entries[0]?.payload).toMatchObject({ error: expect.stringContaining("injected refusal") });
    expect(await auditVerifies()).toMatchObject({ code: 0 });
  }, 120_000);

  it("is audited as tool.errored at stage needs when the engine refuses to start the container", async () => {
    const b = spawn("start-refused");
    refuse = (line) => /^POST \S*\/containers\/[0-9a-f]{64}\/start/.test(line);
    const e = await read(b.id);
    refuse = () => false;
    expect(e).toBeInstanceOf(AidoError);
    const entries = toolEntries(b.id);
    expect(entries.map((x) => x.kind)).toEqual(["tool.errored"]);
    expect(entries[0]?.payload).toMatchObject({ tool: "file_read", stage: "needs", code: e?.code });
    // The next call, the engine healthy again, runs: the entry was the failure's, not a refusal's.
    writeFileSync(join(goalFolders(home.config.goalsDir, b.goalId).workspace, "a.txt"), "a\n");
    expect(await read(b.id)).toBeUndefined();
    expect(toolEntries(b.id).map((x) => x.kind)).toEqual(["tool.completed", "tool.invoked", "tool.errored"]);
    expect(await auditVerifies()).toMatchObject({ code: 0 });
  }, 120_000);

  it("is audited as tool.errored when its container was removed under the goal", async () => {
    const c = spawn("removed");
    await read(c.id); // starts the goal's container (the file is not there: the run fails)
    execFileSync("docker", ["rm", "-f", backend.containerName(c.goalId)], { stdio: "ignore" });
    const e = await read(c.id);
    expect(e?.code).toBe("sandbox_failed");
    const entries = toolEntries(c.id); // newest first
    expect(entries.map((x) => x.kind)).toEqual(["tool.errored", "tool.failed", "tool.invoked"]);
    expect(entries[0]?.payload).toMatchObject({ tool: "file_read", stage: "needs", code: "sandbox_failed" });
    expect(entries[0]?.payload).toMatchObject({
      error: expect.stringMatching(/was removed during realpath/),
    });
    expect(await auditVerifies()).toMatchObject({ code: 0 });
  }, 120_000);
});
