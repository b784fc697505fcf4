// A shadow simulation's diff shows no text the agent may not read: an agent allowed to
// write a file but not to read it can overwrite it in the copy, and the diff's "-" lines
// would otherwise hand it the old contents. Real daemon, real Docker, over the socket.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { rpcError } from "./fixture.js";
import { docker, planner, usePlansDaemon, workspaceOf, write } from "./plans-fixture.js";

const { suite, spawn } = usePlansDaemon();

describe("a shadow simulation's diff", () => {
  it("lists a file the agent may write but not read without its text, and shows the text of one it may read", async () => {
    const fx = await suite.start(docker);
    const c = await fx.client();
    const a = await spawn(
      c,
      planner({
        capabilities: [
          "tool: file_write",
          "tool: file_read",
          "file_write: /workspace/**",
          "file_read: /workspace/src/**",
        ],
      }),
    );
    await write(c, a.agent_id, "/workspace/src/a.txt", "a\n");
    // The operator's file in the workspace: the agent may overwrite it, never read it.
    writeFileSync(join(workspaceOf(fx, a.goal_id), "secret.env"), "TOKEN=hunter2\n");
    const read = await rpcError(
      c.call("tool.invoke", {
        agent_id: a.agent_id,
        tool: "file_read",
        input: { path: "/workspace/secret.env" },
      }),
    );
    expect(read.rpcCode).toBe(-32001);

    const sim = await c.call("plan.simulate", {
      agent_id: a.agent_id,
      shadow: true,
      steps: [
        { tool: "file_write", input: { path: "/workspace/secret.env", content: "x\n" } },
        { tool: "file_write", input: { path: "/workspace/src/a.txt", content: "b\n" } },
      ],
    });
    expect(sim.shadow!.steps.map((s) => s.ok)).toEqual([true, true]);
    expect(JSON.stringify(sim)).not.toContain("hunter2");
    expect(sim.shadow!.diff.changed).toEqual([
      { path: "/workspace/secret.env", type: "file", size: 2, size_before: 14 },
      {
        path: "/workspace/src/a.txt",
        type: "file",
        size: 2,
        size_before: 2,
        diff: "--- a/workspace/src/a.txt\n+++ b/workspace/src/a.txt\n@@ -1 +1 @@\n-a\n+b",
      },
    ]);
  }, 120_000);
});
