// Strict tool names: a manifest's approval_required and the `tool: NAME` rules of config
// policy.confirm / policy.deny must name real tools. A typo there would silently remove a
// human check or a deny rule, so it is refused, naming the typo, where it is, and the
// nearest tool name — from a file, over the socket, from a model's spawn_agent, and when
// the config loads (the CLI exits 2).

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { loadConfig } from "../../src/config.js";
import { ErrorCode, isAidoError } from "../../src/errors.js";
import { loadManifestFile, ManifestError, parseManifestValue } from "../../src/manifest/load.js";
import { BUILTIN_TOOL_NAMES } from "../../src/tools/names.js";
import { type Harness, openHarness } from "../agent/harness.js";
import { captureIo } from "../cli/io.js";
import { manifest, rpcError, startFixture } from "../daemon/fixture.js";
import { makeTempHome } from "../support/home.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import { useProviderServer } from "../support/provider-suite.js";

let server: ProviderServer;
let h: Harness | undefined;
const cleanups: (() => Promise<void> | void)[] = [];

useProviderServer({
  started: (s) => {
    server = s;
  },
  afterEach: async () => {
    await h?.close();
    h = undefined;
    for (const c of cleanups.splice(0)) await c();
  },
});

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected an error");
}

describe("the tool names a manifest may require approval for", () => {
  it("is exactly the runtime's tool registry", async () => {
    h = await openHarness(server);
    expect([...h.rt.tools.keys()].sort()).toEqual([...BUILTIN_TOOL_NAMES].sort());
  });

  it("refuses a typo in a manifest file, naming the file, line, key path and the nearest tool", () => {
    const home = makeTempHome();
    cleanups.push(home.cleanup);
    const file = join(home.dir, "writer.yaml");
    writeFileSync(file, "name: writer\napproval_required:\n  - file_write\n  - file_wirte\n");
    const e = thrown(() => loadManifestFile(file));
    expect(e).toBeInstanceOf(ManifestError);
    expect(e.message).toContain(`${file}:4: approval_required.1: unknown tool "file_wirte"`);
    expect(e.message).toContain('did you mean "file_write"?');
  });

  it("accepts an external MCP tool by its shape, mcp__<server>__<tool>", () => {
    const m = parseManifestValue(
      { name: "a", approval_required: ["mcp__github__create_issue"] },
      "goal.submit manifest",
    );
    expect(m.approval_required).toEqual(["mcp__github__create_issue"]);
  });

  it("refuses a name that is no tool at all, and an mcp__ name that is not mcp__<server>__<tool>", () => {
    for (const name of ["launch_missiles", "mcp__github", "mcp__Git_Hub__x", "mcp__github__"]) {
      const e = thrown(() =>
        parseManifestValue({ name: "a", approval_required: [name] }, "goal.submit manifest"),
      );
      expect(e.message).toContain(`approval_required.0: unknown tool "${name}"`);
      expect(e.message).not.toContain("did you mean");
    }
  });

  it("makes `aido manifest validate` exit 1 naming the typo", async () => {
    const home = makeTempHome();
    cleanups.push(home.cleanup);
    const file = join(home.dir, "bad.yaml");
    writeFileSync(file, "name: bad\napproval_required: [exce]\n");
    const c = captureIo();
    expect(await runCli(["manifest", "validate", file], c.io, home.env)).toBe(1);
    expect(c.err.join("\n")).toContain(
      `${file}:2: approval_required.0: unknown tool "exce" (did you mean "exec"?)`,
    );
  });

  it("refuses a goal.submit manifest with a typo over the socket (-32602)", async () => {
    const fx = await startFixture(server);
    cleanups.push(() => fx.close());
    const c = await fx.client();
    const e = await rpcError(
      c.call("goal.submit", {
        goal: "x",
        manifest: manifest("writer", { approval_required: ["memory_stor"] }),
      }),
    );
    expect(e.rpcCode).toBe(-32602);
    expect(e.message).toContain(
      'approval_required.0: unknown tool "memory_stor" (did you mean "memory_store"?)',
    );
  });

  it("refuses a child manifest a model writes with a typo, and tells the model why", async () => {
    h = await openHarness(server);
    const lead = server.script('manifest "lead"', [
      turn.toolUse("spawn_agent", {
        manifest: { name: "helper", system_prompt: "help", approval_required: ["spawn_agnet"] },
        message: "go",
      }),
      turn.text("done"),
    ]);
    const r = await h.rt.spawnAndRun(
      { name: "lead", system_prompt: "lead", capabilities: ["tool: spawn_agent", "spawn_child: [helper]"] },
      "Delegate.",
    );
    expect(r.stop_reason).toBe("complete");
    const result = lead.requests[1]!.body.messages.at(-1).content[0];
    expect(result.is_error).toBe(true);
    expect(result.content).toContain('unknown tool "spawn_agnet" (did you mean "spawn_agent"?)');
    expect(h.rt.listAgents({ includeStopped: true }).map((a) => a.manifest)).toEqual(["lead"]);
  });
});

describe("the tool names of config policy rules", () => {
  it("refuses `tool: NAME` rules that name no tool, with the file, line, key path and nearest tool", () => {
    const home = makeTempHome();
    cleanups.push(home.cleanup);
    const file = join(home.dir, "config.yaml");
    writeFileSync(
      file,
      'policy:\n  deny: ["tool: *", "git push *"]\n  confirm:\n    - "tool: exec"\n    - "tool: file_wirte"\n',
    );
    const e = thrown(() => loadConfig({ env: home.env, projectDir: home.dir }));
    expect(isAidoError(e, ErrorCode.configInvalid)).toBe(true);
    expect(e.message).toContain(
      `${file}:5: policy.confirm.1: unknown tool "file_wirte" (did you mean "file_write"?)`,
    );
    writeFileSync(file, 'policy:\n  deny: ["tool:web_fecth"]\n');
    expect(thrown(() => loadConfig({ env: home.env, projectDir: home.dir })).message).toContain(
      'policy.deny.0: unknown tool "web_fecth" (did you mean "web_fetch"?)',
    );
  });

  it("makes every CLI command exit 2 with the message", async () => {
    const home = makeTempHome();
    cleanups.push(home.cleanup);
    writeFileSync(join(home.dir, "config.yaml"), 'policy:\n  confirm: ["tool: file_wirte"]\n');
    const c = captureIo();
    expect(await runCli(["goals"], c.io, home.env)).toBe(2);
    expect(c.err.join("\n")).toContain(
      'policy.confirm.0: unknown tool "file_wirte" (did you mean "file_write"?)',
    );
  });
});
