// sandbox.workspace_max_mb through tool.invoke on the socket, real container: writes that
// would take the goal's files on the host past the cap are refused before anything is
// written (file_write, file_edit, snapshot_restore), with quota_exceeded (-32002) and a
// tool.failed audit entry; a write that replaces a file pays only its growth; deleting
// with exec works at the cap. (The cap on exec's own writes — RLIMIT_FSIZE and the cancel
// while it runs — is shown in test/redteam/quota.test.ts.)

import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { daemonBuiltinTools } from "../../src/daemon/tools.js";
import { requireDocker } from "../support/docker.js";
import { manifest, rpcError, useDaemonPerTest } from "./fixture.js";

beforeAll(() => requireDocker());
const suite = useDaemonPerTest();

const KB = 1024;
const grants = [
  "tool: *",
  "file_write: /workspace/**",
  "file_read: /workspace/**",
  "file_write: /output/**",
  "file_read: /output/**",
  "exec: rm *",
];
const worker = manifest("filler", { capabilities: grants });

async function open(): Promise<{ c: AidoClient; agent: string; goal: string }> {
  const fx = await suite.start({
    runtime: { backend: undefined, builtinTools: daemonBuiltinTools },
    config: (cfg) => {
      cfg.sandbox.workspaceMaxMb = 1;
      cfg.grantCeilings = [grants];
    },
  });
  const c = await fx.client();
  const a = await c.call("agent.spawn", { manifest: worker });
  return { c, agent: a.agent_id, goal: a.goal_id };
}

describe("sandbox.workspace_max_mb", () => {
  it("refuses a file_write or file_edit that would pass the cap, writes nothing, and audits it", async () => {
    const { c, agent, goal } = await open();
    const invoke = (tool: string, input: Record<string, unknown>) =>
      c.call("tool.invoke", { agent_id: agent, tool, input });
    const host = (p: string) => join(suite.fx.home.config.goalsDir, goal, p);
    await invoke("file_write", { path: "/workspace/a.txt", content: "x".repeat(700 * KB) });

    const e = await rpcError(
      invoke("file_write", { path: "/workspace/b.txt", content: "y".repeat(700 * KB) }),
    );
    expect(e.rpcCode).toBe(-32002);
    expect(e.code).toBe("quota_exceeded");
    expect(e.message).toMatch(
      /^file_write of \/workspace\/b\.txt would add 0\.7 MiB: goal s_\S+'s files on the host would pass sandbox\.workspace_max_mb \(1 MiB; 0\.7 MiB used/,
    );
    expect(existsSync(host("workspace/b.txt"))).toBe(false);

    // Replacing a file costs only what it grows by.
    await invoke("file_write", { path: "/workspace/a.txt", content: "z".repeat(800 * KB) });
    expect(statSync(host("workspace/a.txt")).size).toBe(800 * KB);
    // /output counts too.
    const out = await rpcError(invoke("file_write", { path: "/output/o.md", content: "o".repeat(300 * KB) }));
    expect(out.code).toBe("quota_exceeded");

    // An edit is judged by the most it can grow the file: every occurrence replaced.
    const edit = await rpcError(
      invoke("file_edit", { path: "/workspace/a.txt", old_string: "z", new_string: "zz", replace_all: true }),
    );
    expect(edit.code).toBe("quota_exceeded");
    expect(readFileSync(host("workspace/a.txt"), "utf8")).toBe("z".repeat(800 * KB));

    // At the cap, deleting still works; then the room is back.
    await invoke("exec", { command: "rm /workspace/a.txt" });
    await invoke("file_write", { path: "/workspace/b.txt", content: "y".repeat(700 * KB) });
    expect(existsSync(host("workspace/b.txt"))).toBe(true);

    const failed = await c.call("audit.query", { agent_id: agent, kind: "tool.failed" });
    expect(failed.entries.map((x) => (x.payload as { code?: string }).code)).toEqual([
      "quota_exceeded",
      "quota_exceeded",
      "quota_exceeded",
    ]);
  }, 120_000);

  it("refuses a snapshot_restore that would bring the goal past the cap, and allows one that frees room", async () => {
    const { c, agent, goal } = await open();
    const invoke = (tool: string, input: Record<string, unknown>) =>
      c.call("tool.invoke", { agent_id: agent, tool, input });
    const host = (p: string) => join(suite.fx.home.config.goalsDir, goal, p);
    await invoke("file_write", { path: "/workspace/small.txt", content: "s" });
    const small = (await invoke("snapshot_create", { label: "small" })).data as { id: string };
    // What an exec can leave between two measures: the goal over its cap (made here on the
    // host, as a command in the container would have written it).
    writeFileSync(host("workspace/over.bin"), Buffer.alloc(1536 * KB));
    const over = (await invoke("snapshot_create", { label: "over" })).data as { id: string };
    await invoke("exec", { command: "rm /workspace/over.bin" });
    const e = await rpcError(invoke("snapshot_restore", { id: over.id }));
    expect(e.code).toBe("quota_exceeded");
    expect(e.message).toContain(`snapshot_restore of ${over.id} would add`);
    expect(existsSync(host("workspace/over.bin"))).toBe(false);
    // Over the cap again, a restore to the small snapshot frees room and goes through.
    writeFileSync(host("workspace/over.bin"), Buffer.alloc(1536 * KB));
    const r = await invoke("snapshot_restore", { id: small.id });
    expect(r.is_error).toBe(false);
    expect(existsSync(host("workspace/over.bin"))).toBe(false);
  }, 120_000);
});
