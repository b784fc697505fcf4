// Red team: the model writes its children's manifests. It tries to widen through every
// grant kind and by respelling a grant its parent holds, to shed the approvals its parent
// must wait for, to raise its limits or nest deeper than its parent allows, to take more
// budget than its parent has, to read host files through system_prompt_file, and to choke
// the parser with YAML bombs and huge manifests.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AidoError, ErrorCode } from "../../src/errors.js";
import { turn } from "../support/provider-server.js";
import { expectOk, useBench } from "./fixture.js";

const b = useBench((c) => {
  c.approvals.timeoutMs = 1500;
});

const spawnDenials = (agentId: string) =>
  b.rt.audit.query({ kind: "agent.spawn_denied" }).filter((e) => e.agent_id === agentId);

/** A spawn refused by the gate or by the spawner: an error either way, and never a child. */
function refused(r: unknown): string {
  if (r instanceof AidoError) return `${r.code}: ${r.message}`;
  const out = (r as { output: string; isError?: boolean }).output;
  expect((r as { isError?: boolean }).isError, out).toBe(true);
  return out;
}

describe("a model-written child manifest", () => {
  it("cannot widen through any grant kind; every offending grant is named and the refusal audited", async () => {
    const parent = b.agent("narrow-parent", [
      "tool: spawn_agent",
      "tool: file_read",
      "file_read: /workspace/docs/**",
      "exec: git status",
      "network: api.example.com",
      "spawn_child: [*]",
    ]);
    for (const cap of [
      "tool: *",
      "tool: exec",
      "file_read: /workspace/**",
      "file_read: /workspace/docs/../**",
      "file_write: /workspace/docs/**",
      "exec: git *",
      "exec: *",
      "network: *",
      "network: *.example.com",
    ]) {
      const r = await b.call(parent.id, "spawn_agent", {
        manifest: { name: "wider", system_prompt: "x", capabilities: ["tool: file_read", cap] },
        message: "go",
      });
      const text = refused(r);
      if (!cap.includes("..")) expect(text).toContain(cap);
    }
    expect(b.rt.listAgents({ goalId: parent.goalId }).map((a) => a.manifest)).toEqual(["narrow-parent"]);
  });

  it("cannot widen by respelling a grant its parent holds", async () => {
    const parent = b.agent("spelled-parent", [
      "tool: spawn_agent",
      "file_read: /workspace/docs/**",
      "exec: git status",
      "exec: python3 *",
      "network: *.example.com",
      "network: api.example.org",
      "mcp: gh/list_*",
      "spawn_child: [*]",
    ]);
    const respelled = [
      // A program by its path, a wrapper, an extra argument, a star glued to the name.
      "exec: /usr/bin/git status",
      "exec: env git status",
      "exec: sh -c *",
      "exec: git status *",
      "exec: python3* *",
      "exec: *",
      // The suffix as a name of its own, a longer name ending in it, ports, a literal.
      "network: example.com",
      "network: example.com.evil.test",
      "network: *.com",
      "network: a.example.com:*",
      "network: *.example.com:8080",
      "network: api.example.org:22",
      "network: 93.184.216.34",
      // A sibling folder sharing the prefix, the parent folder, the root.
      "file_read: /workspace/docs*/**",
      "file_read: /workspace/*/**",
      "file_read: /**",
      "mcp: gh/*",
      "mcp: gh2/list_*",
    ];
    for (const cap of respelled) {
      const r = await b.call(parent.id, "spawn_agent", {
        manifest: { name: "respelled", system_prompt: "x", capabilities: [cap] },
        message: "go",
      });
      expect(refused(r), cap).toContain(cap);
    }
    expect(b.rt.listAgents({ goalId: parent.goalId }).map((a) => a.manifest)).toEqual(["spelled-parent"]);
    expect(spawnDenials(parent.id)).toHaveLength(respelled.length);
  });

  it("cannot use spawn_child: [*] under a parent that may spawn only named children", async () => {
    const parent = b.agent("named-parent", ["tool: spawn_agent", "spawn_child: [helper]"]);
    const star = await b.call(parent.id, "spawn_agent", {
      manifest: { name: "helper", system_prompt: "x", capabilities: ["spawn_child: [*]"] },
      message: "go",
    });
    expect(refused(star)).toContain("spawn_child");
    const other = await b.call(parent.id, "spawn_agent", {
      manifest: { name: "not-helper", system_prompt: "x" },
      message: "go",
    });
    expect(refused(other)).toMatch(/not-helper/);
    expect(b.rt.audit.verify().ok).toBe(true);
  });

  it("cannot ask for more budget than its parent has left", async () => {
    const parent = b.agent("poor-parent", ["tool: spawn_agent", "spawn_child: [*]"], {
      budget: { max_tokens: 1000 },
    });
    const r = await b.call(parent.id, "spawn_agent", {
      manifest: { name: "rich", system_prompt: "x", budget: { max_tokens: 1_000_000 } },
      message: "go",
    });
    expect(refused(r)).toMatch(/budget/);
    expect(spawnDenials(parent.id).length).toBeGreaterThan(0);
  });

  it("cannot read a host file through system_prompt_file", async () => {
    const parent = b.agent("prompt-parent", ["tool: spawn_agent", "spawn_child: [*]"]);
    for (const file of ["/etc/passwd", "../../../../etc/passwd", join(b.home.dir, "keys", "runtime.key")]) {
      const r = await b.call(parent.id, "spawn_agent", {
        manifest: { name: "leaky", system_prompt_file: file },
        message: "go",
      });
      const text = refused(r);
      expect(text).toContain("system_prompt_file");
      expect(text).not.toContain("root:x:0:0");
    }
  });

  it("refuses YAML alias bombs and oversize manifests without expanding them", async () => {
    const parent = b.agent("yaml-parent", ["tool: spawn_agent", "spawn_child: [*]"]);
    const lol = [
      'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
      "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]",
      "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]",
      "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]",
      "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]",
      "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]",
      "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]",
      "name: bomb",
      "system_prompt: x",
      "capabilities: *g",
    ].join("\n");
    const t0 = Date.now();
    expect(refused(await b.call(parent.id, "spawn_agent", { manifest: lol, message: "go" }))).toBeTruthy();
    const huge = `name: huge\nsystem_prompt: "${"A".repeat(300 * 1024)}"\n`;
    const r = await b.call(parent.id, "spawn_agent", { manifest: huge, message: "go" });
    expect(r).toBeInstanceOf(AidoError);
    expect((r as AidoError).code).toBe(ErrorCode.invalidInput);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it("cannot shed the approvals its parent must wait for", async () => {
    const parent = b.agent(
      "careful-parent",
      ["tool: spawn_agent", "tool: file_write", "file_write: /workspace/**", "spawn_child: [*]"],
      { approval_required: ["file_write"] },
    );
    b.server.script("sneaky child", [
      turn.toolUse("file_write", { path: "/workspace/unapproved.txt", content: "no human saw this" }),
      turn.text("done"),
    ]);
    const r = await b.call(parent.id, "spawn_agent", {
      manifest: {
        name: "sneaky",
        system_prompt: "sneaky child",
        capabilities: ["tool: file_write", "file_write: /workspace/**"],
        approval_required: [],
      },
      message: "write the file",
    });
    expectOk(r);
    expect(existsSync(join(b.home.dir, "goals", parent.goalId, "workspace", "unapproved.txt"))).toBe(false);
    const denied = b.rt.audit
      .query({ goal_id: parent.goalId, kind: "tool.denied" })
      .map((e) => e.payload as { tool: string; stage: string });
    expect(denied).toContainEqual(expect.objectContaining({ tool: "file_write", stage: "approval" }));
  });

  it("cannot raise its limits above its parent's, and cannot nest deeper by leaving them out", async () => {
    const parent = b.agent("shallow-parent", ["tool: spawn_agent", "spawn_child: [*]"], {
      limits: { max_depth: 1, max_iterations: 5, max_children: 2 },
    });
    const raised = await b.call(parent.id, "spawn_agent", {
      manifest: {
        name: "deep",
        system_prompt: "deep child",
        capabilities: ["tool: spawn_agent", "spawn_child: [*]"],
        limits: { max_depth: 10, max_iterations: 999, max_children: 50 },
      },
      message: "spawn a grandchild",
    });
    const text = refused(raised);
    for (const key of ["limits.max_depth: 10", "limits.max_iterations: 999", "limits.max_children: 50"])
      expect(text).toContain(key);
    b.server.script("quiet child", [
      turn.toolUse("spawn_agent", {
        manifest: { name: "grandchild", system_prompt: "grandchild here" },
        message: "go deeper",
      }),
      turn.text("tried"),
    ]);
    b.server.script("grandchild here", [turn.text("I exist")]);
    expectOk(
      await b.call(parent.id, "spawn_agent", {
        manifest: {
          name: "quiet",
          system_prompt: "quiet child",
          capabilities: ["tool: spawn_agent", "spawn_child: [*]"],
        },
        message: "spawn a grandchild",
      }),
    );
    const spawned = b.rt.audit
      .query({ goal_id: parent.goalId, kind: "agent.spawned" })
      .map((e) => (e.payload as { manifest: string }).manifest);
    expect(spawned.sort()).toEqual(["quiet", "shallow-parent"]);
    const deny = b.rt.audit.query({ goal_id: parent.goalId, kind: "agent.spawn_denied" });
    expect(deny.map((e) => (e.payload as { keys?: string[] }).keys)).toContainEqual([
      "limits.max_iterations",
      "limits.max_children",
      "limits.max_depth",
    ]);
    expect(deny.some((e) => JSON.stringify(e.payload).includes("max_depth 1"))).toBe(true);
    expect(b.rt.audit.verify().ok).toBe(true);
  });
});
