// A whole goal on a real Docker engine: the bootstrap agent fans out two children with
// spawn_agents, each writes its file into /output through the gate into the goal's own
// container, and the files are on the host in the goal's output folder afterwards. The
// container mounts only the skills the goal's root may read, a follow-up goal's too, and a
// goal that ended starts no container again.

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Runtime } from "../../src/kernel/runtime.js";
import { providerEnv } from "../agent/harness.js";
import { requireDocker } from "../support/docker.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";

let server: ProviderServer;
let home: TempHome;
let rt: Runtime;

beforeAll(async () => {
  requireDocker();
  server = await startProviderServer();
  home = makeTempHome(providerEnv(server));
  rt = await Runtime.open(home.config);
}, 120_000);
afterAll(async () => {
  await rt?.close();
  await server?.close();
  home?.cleanup();
});

const writer = (name: string, path: string) => ({
  name,
  system_prompt: `You write ${path}.`,
  capabilities: ["tool: file_write", `file_write: ${path}`],
  budget: { max_tokens: 50_000 },
});

describe("a goal in its container", () => {
  it("succeeds with two parallel children writing into /output, and the files land on the host", async () => {
    const boot = server.script('manifest "bootstrap"', [
      turn.toolUse("spawn_agents", {
        children: [
          { manifest: writer("writer", "/output/summary.md"), message: "Write the summary." },
          { manifest: writer("coder", "/output/data.csv"), message: "Write the data." },
        ],
      }),
      turn.text("Delivered /output/summary.md and /output/data.csv."),
    ]);
    server.script('manifest "writer"', [
      turn.toolUse("file_write", { path: "/output/summary.md", content: "# Summary\nAll good.\n" }),
      turn.text("wrote /output/summary.md"),
    ]);
    const coder = server.script('manifest "coder"', [
      turn.toolUse("file_write", { path: "/output/data.csv", content: "a,b\n1,2\n" }),
      // A write outside its grant is refused at the gate and never happens.
      turn.toolUse("file_write", { path: "/output/summary.md", content: "overwritten" }),
      turn.text("wrote /output/data.csv"),
    ]);
    const { goal_id } = rt.goals.submit({ goal: "Produce a summary and a data file." });
    const s = await rt.goals.wait(goal_id, 90_000);
    expect(s.error).toBeUndefined();
    expect(s.state).toBe("succeeded");
    expect(s.result).toBe("Delivered /output/summary.md and /output/data.csv.");
    expect(readFileSync(join(s.output_dir, "summary.md"), "utf8")).toBe("# Summary\nAll good.\n");
    expect(readFileSync(join(s.output_dir, "data.csv"), "utf8")).toBe("a,b\n1,2\n");
    expect(existsSync(join(home.dir, "goals", goal_id, "workspace"))).toBe(true);
    const report = boot.requests[1]!.body.messages.at(-1).content[0].content as string;
    expect(report).toContain("2 of 2 children completed.");
    const refused = coder.requests[2]!.body.messages.at(-1).content[0];
    expect(refused.is_error).toBe(true);
    expect(refused.content).toContain("capability_denied");
    const invoked = rt.audit
      .query({ goal_id, kind: "tool.invoked" })
      .map((e) => (e.payload as { tool: string }).tool);
    expect(invoked.sort()).toEqual(["file_write", "file_write", "spawn_agents"]);
  }, 120_000);
  it("mounts only the root's skills under /skills, whatever else is installed", async () => {
    const lead = server.script('manifest "reader"', [
      turn.toolUse("exec", { command: "ls /skills" }),
      turn.text("listed"),
    ]);
    const { goal_id } = rt.goals.submit({
      goal: "List the skills.",
      manifest: {
        name: "reader",
        system_prompt: "You list skills.",
        capabilities: ["tool: exec", "exec: ls *", "file_read: /skills/**", "file_read: /workspace/**"],
        skills: ["research-with-citations"],
      },
    });
    const s = await rt.goals.wait(goal_id, 90_000);
    expect(s.state).toBe("succeeded");
    const listed = lead.requests[1]!.body.messages.at(-1).content[0];
    expect(listed.is_error, listed.content).toBeUndefined();
    expect(listed.content).toContain("research-with-citations");
    expect(rt.skills.skills.length).toBeGreaterThan(1);
    for (const other of rt.skills.skills.filter((k) => k.name !== "research-with-citations"))
      expect(listed.content).not.toContain(other.name);
  }, 120_000);

  // A container's skills and network come from its goal's root record, which leaves memory
  // when the goal ends. Guards (they pass on main too): a follow-up is a goal of its own
  // whose root is held while it runs, and a goal whose records left memory never starts a
  // container again, so none can start without its root's skills and network.
  it("mounts the root's skills for a follow-up goal; an ended goal starts no container", async () => {
    const follower = {
      name: "follower",
      system_prompt: "You list skills.",
      capabilities: ["tool: exec", "exec: ls *", "file_read: /skills/**", "file_read: /workspace/**"],
      skills: ["research-with-citations"],
    };
    const script = server.script('manifest "follower"', [
      turn.toolUse("exec", { command: "ls /skills" }),
      turn.text("listed"),
      turn.toolUse("exec", { command: "ls /skills" }),
      turn.text("listed again"),
    ]);
    const first = rt.goals.submit({ goal: "List the skills.", manifest: follower });
    expect((await rt.goals.wait(first.goal_id, 90_000)).state).toBe("succeeded");
    expect(rt.registry.list({ goalId: first.goal_id, includeStopped: true })).toEqual([]);
    // A call the goal's end left behind reaches the backend (GoalSandboxes.acquire): refused,
    // never a container without the root's skills, nor an egress network made for it.
    const refused = /removed when the goal ended/;
    await expect(rt.backend.acquire(first.goal_id, { skills: [] })).rejects.toThrow(refused);
    await expect(rt.backend.egress?.(first.goal_id, "late")).rejects.toThrow(refused);
    // A standalone agent's pseudo-goal likewise, once the agent stopped.
    const alone = rt.spawnAgent(follower);
    rt.stopAgent(alone.agent_id, "done");
    await expect(rt.backend.acquire(alone.goal_id, { skills: [] })).rejects.toThrow(refused);
    // The follow-up: a new goal, its root held while it runs, its skills mounted.
    const next = rt.goals.submit({ goal: "List the skills again.", manifest: follower });
    expect(next.goal_id).not.toBe(first.goal_id);
    expect((await rt.goals.wait(next.goal_id, 90_000)).state).toBe("succeeded");
    const listed = script.requests[3]!.body.messages.at(-1).content[0];
    expect(listed.is_error, listed.content).toBeUndefined();
    expect(listed.content).toContain("research-with-citations");
  }, 180_000);

  it("removes an on-demand standalone agent's container when its task ends (agent.spawn_and_run)", async () => {
    const solo = server.script('manifest "solo"', [
      turn.toolUse("exec", { command: "ls /workspace" }),
      turn.text("done"),
    ]);
    const r = await rt.spawnAndRun(
      {
        name: "solo",
        system_prompt: "You list the workspace.",
        capabilities: ["tool: exec", "exec: ls *", "file_read: /workspace/**"],
      },
      "List the workspace.",
    );
    expect(r.stop_reason).toBe("complete");
    const ran = solo.requests[1]!.body.messages.at(-1).content[0];
    expect(ran.is_error, ran.content).toBeUndefined();
    const goalId = rt.agentStatus(r.agent_id).goal_id;
    // On main its task's end stopped the agent without ending its container: it ran on until
    // the sweep, and a late call could still get it (without its root's record: no skills).
    const left = execFileSync("docker", ["ps", "-aq", "--filter", `label=aido.goal=${goalId}`]).toString();
    expect(left.trim()).toBe("");
    await expect(rt.backend.acquire(goalId, { skills: [] })).rejects.toThrow(/removed when the goal ended/);
  }, 120_000);
});
