// A call denied at any stage starts nothing: the gate judges what a call states (the tool,
// the exec command's analysis, the policy's tool and command rules, the budget) before it
// resolves paths in the goal's container, which would start it. Through the agent loop
// (real SDK, scripted provider) on a real Docker engine: while the model reads the refusal
// of its first call, no container exists for its goal; the next, allowed call starts one.

import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Runtime } from "../../src/kernel/runtime.js";
import { LABEL } from "../../src/sandbox/docker-containers.js";
import { providerEnv } from "../agent/harness.js";
import { requireDocker } from "../support/docker.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import {
  type ProviderServer,
  type RecordedRequest,
  startProviderServer,
  turn,
} from "../support/provider-server.js";

let server: ProviderServer;
let home: TempHome;
let rt: Runtime;

beforeAll(async () => {
  requireDocker();
  server = await startProviderServer();
  home = makeTempHome(providerEnv(server));
  home.config.policy.deny = ["tool: file_edit", "curl *"];
  rt = await Runtime.open(home.config);
}, 120_000);
afterAll(async () => {
  await rt?.close();
  await server?.close();
  home?.cleanup();
});

function containersOf(goalId: string): string[] {
  return execFileSync("docker", ["ps", "-aq", "--filter", `label=${LABEL.goal}=${goalId}`], {
    encoding: "utf8",
  })
    .split("\n")
    .filter((l) => l.trim() !== "");
}

/** The tool_result the model got for its last call. */
function lastResult(req: RecordedRequest): { content: string; is_error?: boolean } {
  return req.body.messages.at(-1).content[0];
}

const caps = [
  "tool: exec",
  "tool: file_edit",
  "exec: ls *",
  "exec: curl *",
  "exec: sudo *",
  "file_read: /workspace/**",
];

describe("a refused call", () => {
  it.each([
    ["capability (an exec its grants do not cover)", { command: "cat /etc/shadow" }, "exec", "capability"],
    ["policy (a built-in rule on the command)", { command: "sudo ls" }, "exec", "policy"],
    ["policy (an operator's command rule)", { command: "curl http://example.com" }, "exec", "policy"],
    [
      "policy (an operator's tool rule)",
      { path: "/workspace/a.txt", old_string: "a", new_string: "b" },
      "file_edit",
      "policy",
    ],
  ])(
    "by %s leaves no container for the goal",
    async (label, input, tool, stage) => {
      const name = `refused${label.length}`;
      let goalId = "";
      let refusal = "";
      let during: string[] | undefined;
      let after: string[] | undefined;
      server.script(`manifest "${name}"`, [
        turn.toolUse(tool, input),
        (req) => {
          refusal = lastResult(req).content;
          during = containersOf(goalId);
          return turn.toolUse("exec", { command: "ls /workspace" });
        },
        () => {
          // The allowed call did start the container: the probe sees one when there is one.
          after = containersOf(goalId);
          return turn.text("done");
        },
      ]);
      ({ goal_id: goalId } = rt.goals.submit({
        goal: "try",
        manifest: { name, system_prompt: "You try things.", capabilities: caps },
      }));
      expect((await rt.goals.wait(goalId, 90_000)).state).toBe("succeeded");
      expect(refusal).toContain(`at the ${stage} check`);
      expect(during).toEqual([]);
      expect(after).toHaveLength(1);
      const denied = rt.audit.query({ goal_id: goalId, kind: "tool.denied" });
      expect(denied.map((e) => e.payload)).toEqual([expect.objectContaining({ tool, stage })]);
      const invoked = rt.audit.query({ goal_id: goalId, kind: "tool.invoked" });
      expect(invoked.map((e) => (e.payload as { tool: string }).tool)).toEqual(["exec"]);
    },
    120_000,
  );

  it("by the budget (over the socket's path, tool.invoke) leaves no container either", async () => {
    server.script('manifest "spent"', [
      turn.text("spent it all", { usage: { input_tokens: 60_000, output_tokens: 10 } }),
    ]);
    const a = rt.spawnAgent({
      name: "spent",
      system_prompt: "You spend.",
      lifecycle: "persistent",
      capabilities: ["tool: file_read", "file_read: /workspace/**"],
      budget: { max_tokens: 50_000 },
    });
    await rt.runAgent(a.agent_id, "spend");
    await expect(rt.invokeTool(a.agent_id, "file_read", { path: "/workspace/x" })).rejects.toMatchObject({
      code: "budget_exceeded",
      stage: "budget",
    });
    expect(containersOf(a.goal_id)).toEqual([]);
    rt.stopAgent(a.agent_id);
  });
});
