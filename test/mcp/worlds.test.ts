// Parallel worlds over MCP, driven by the SDK's own Client through the real CLI in front of
// a real daemon and containers: aido_spawn_worlds runs worlds of the session's project
// folder (each child on the model its manifest names, against the scripted provider),
// the project is untouched until aido_adopt_world applies one world's diff. A manifest
// without a model is refused (the session's agent calls none), and the shipped session
// manifest may not spawn at all.

import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { MODEL } from "../agent/harness.js";
import { requireDocker } from "../support/docker.js";
import { turn } from "../support/provider-server.js";
import { textOf, useMcpSuite } from "./fixture.js";

beforeAll(() => requireDocker());
const suite = useMcpSuite();

const SESSION = `name: worlds-session
system_prompt: You are the principal of an MCP session.
capabilities:
  - "tool: file_read"
  - "tool: file_write"
  - "tool: spawn_worlds"
  - "tool: adopt_world"
  - "file_read: /workspace/**"
  - "file_write: /workspace/**"
  - "spawn_child: coder"
limits: { max_iterations: 4, max_children: 4, max_depth: 2 }
# spawn_child names a role the operator's ceiling (the bootstrap manifest) grants.
budget: { max_tokens: 200000 }
`;
const coder = (model?: string) => ({
  name: "coder",
  system_prompt: "You explore.",
  capabilities: ["tool: file_write", "file_write: /workspace/**"],
  ...(model ? { model } : {}),
});

describe("aido_spawn_worlds and aido_adopt_world", () => {
  it("run worlds of the project and apply one world's diff to it; a child without a model is refused", async () => {
    await suite.start();
    const file = join(dirname(suite.project), "worlds-session.yaml");
    writeFileSync(file, SESSION);
    const c = await suite.connect({ args: ["--manifest", file] });

    const noModel = await c.callTool({
      name: "aido_spawn_worlds",
      arguments: { task: "Try.", worlds: 2, manifest: coder() },
    });
    expect(noModel.isError).toBe(true);
    expect(textOf(noModel)).toMatch(/manifest\.model: this session's agent calls no model/);

    let n = 0;
    suite.server.script(
      'manifest "coder"',
      [
        (req) =>
          req.body.messages.length === 1
            ? turn.toolUse("file_write", { path: `/workspace/idea-${++n}.md`, content: `idea ${n}\n` })
            : turn.text("wrote my idea"),
      ],
      { repeatLast: true },
    );
    const r = await c.callTool({
      name: "aido_spawn_worlds",
      arguments: { task: "Write an idea.", worlds: 2, manifest: coder(MODEL) },
    });
    expect(r.isError ?? false, textOf(r)).toBe(false);
    const { worlds } = JSON.parse(textOf(r)) as {
      worlds: { world_id: string; stop_reason: string; diff: { added: { path: string }[] } }[];
    };
    expect(worlds.map((w) => w.stop_reason)).toEqual(["complete", "complete"]);
    const added = worlds.map((w) => w.diff.added.map((a) => a.path));
    expect(added.flat().sort()).toEqual(["/workspace/idea-1.md", "/workspace/idea-2.md"]);
    expect(readdirSync(suite.project)).toEqual(["README.md"]);

    const chosen = worlds[1]!;
    const a = await c.callTool({ name: "aido_adopt_world", arguments: { world_id: chosen.world_id } });
    expect(a.isError ?? false, textOf(a)).toBe(false);
    expect(JSON.parse(textOf(a))).toMatchObject({
      world_id: chosen.world_id,
      adopted: true,
      paths_applied: 1,
      discarded: [worlds[0]!.world_id],
    });
    const file2 = chosen.diff.added[0]!.path.replace("/workspace/", "");
    expect(readdirSync(suite.project).sort()).toEqual(["README.md", file2].sort());
    expect(readFileSync(join(suite.project, file2), "utf8")).toMatch(/^idea \d\n$/);
    const again = await c.callTool({ name: "aido_adopt_world", arguments: { world_id: chosen.world_id } });
    expect(again.isError).toBe(true);
    expect(textOf(again)).toMatch(/adopted already/);
    expect(existsSync(join(suite.fx.home.config.goalsDir, chosen.world_id))).toBe(false);
  }, 180_000);

  it("is refused to a session of the shipped manifest, which holds no spawn grant", async () => {
    await suite.start();
    const c = await suite.connect();
    const r = await c.callTool({
      name: "aido_spawn_worlds",
      arguments: { task: "Try.", worlds: 2, manifest: coder(MODEL) },
    });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toBe(
      "denied at the capability stage (capability_denied): no capability grants tool spawn_worlds",
    );
    expect(readdirSync(suite.project)).toEqual(["README.md"]);
  }, 120_000);
});
