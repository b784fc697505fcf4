// MCP sessions as principals, over the socket and on a real Docker engine: session.open
// binds a host project folder as the session's /workspace (a tool.invoke file_write lands
// in it), refuses folders an attacker would pick (each refusal names the path and the
// reason, and is audited), and every way a session ends — session.close, agent.stop, the
// connection that opened it dropping, a daemon restart — leaves no container and leaves
// the host folder as the session left it. A snapshot_restore in the session restores the
// host folder and never follows a link out of it.

import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { requireDocker } from "../support/docker.js";
import { containersOfHome, type TempHome } from "../support/home.js";
import { rpcError, useDaemonPerTest } from "./fixture.js";
import { until as untilValue } from "./process.js";

/** Wait until `cond` holds. */
const until = (cond: () => boolean | Promise<boolean>, ms: number) =>
  untilValue(async () => ((await cond()) ? true : undefined), ms);

beforeAll(() => requireDocker());

let scratch: string | undefined;
const suite = useDaemonPerTest({
  afterEach: () => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    scratch = undefined;
  },
});

/** A project folder outside AIDO_HOME the container user can write (it runs as 1000 under a root daemon). */
function project(): string {
  scratch = mkdtempSync(join(tmpdir(), "aido-project-"));
  const dir = join(scratch, "repo");
  mkdirSync(dir);
  writeFileSync(join(dir, "README.md"), "the user's project\n");
  if (process.getuid?.() === 0) {
    chownSync(dir, 1000, 1000);
    chownSync(join(dir, "README.md"), 1000, 1000);
  }
  return dir;
}

const containersOf = (h: TempHome): string[] => containersOfHome(h.config.home);

const withDocker = () => suite.start({ runtime: { backend: undefined } });

async function auditKinds(c: AidoClient, kind: string) {
  return (await c.call("audit.query", { kind })).entries;
}

async function answerNext(human: AidoClient, decision: "allow_once" | "deny"): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const [rec] = (await human.call("approval.list", {})).approvals;
    if (rec) {
      await human.call("approval.respond", { id: rec.id, decision });
      return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("no approval request appeared");
}

describe("session.open with a host workspace", () => {
  it("binds the folder as /workspace: a file_write lands in it and stays after the session", async () => {
    const fx = await withDocker();
    const dir = project();
    const c = await fx.client();
    const s = await c.call("session.open", { workspace: dir, client: "test-client" });
    expect(s.workspace).toBe(dir);
    expect(s.session_id).toMatch(/^mcp_/);
    expect(s.manifest).toBe("mcp-session");
    expect(s.grants).toContain("file_write: /workspace/**");
    expect(s.tools).toEqual(expect.arrayContaining(["file_read", "file_write", "exec", "snapshot_restore"]));
    expect(s.tools).not.toContain("spawn_agent");
    expect(s.approval_required).toContain("exec");
    const read = await c.call("tool.invoke", {
      agent_id: s.agent_id,
      tool: "file_read",
      input: { path: "/workspace/README.md" },
    });
    expect(read.output).toContain("the user's project");
    const w = await c.call("tool.invoke", {
      agent_id: s.agent_id,
      tool: "file_write",
      input: { path: "/workspace/src/new.txt", content: "written through the gate" },
    });
    expect(w.is_error).toBe(false);
    expect(readFileSync(join(dir, "src", "new.txt"), "utf8")).toBe("written through the gate");
    expect(containersOf(fx.home)).toHaveLength(1);
    const [opened] = await auditKinds(c, "session.opened");
    expect(opened?.payload).toMatchObject({
      session_id: s.session_id,
      workspace: dir,
      manifest: "mcp-session",
      client: "test-client",
    });

    await c.call("session.close", { session_id: s.session_id });
    await until(() => containersOf(fx.home).length === 0, 10_000);
    expect(readFileSync(join(dir, "src", "new.txt"), "utf8")).toBe("written through the gate");
    await until(async () => (await auditKinds(c, "session.closed")).length === 1, 5_000);
    const [closed] = await auditKinds(c, "session.closed");
    expect(closed?.payload).toMatchObject({ session_id: s.session_id, workspace: dir });
    const after = await rpcError(
      c.call("tool.invoke", {
        agent_id: s.agent_id,
        tool: "file_read",
        input: { path: "/workspace/README.md" },
      }),
    );
    expect(after.message).toContain("stopped");
  });

  it("refuses folders an attacker would pick, naming the path and the reason (audited)", async () => {
    const fx = await suite.start();
    const c = await fx.client();
    const home = fx.home.config.home;
    scratch = mkdtempSync(join(tmpdir(), "aido-project-"));
    const file = join(scratch, "a-file");
    writeFileSync(file, "x");
    const toHome = join(scratch, "to-home");
    symlinkSync(home, toHome);
    const toProc = join(scratch, "to-proc");
    symlinkSync("/proc/self", toProc);
    const cases: [string, string][] = [
      ["relative/dir", "is not an absolute path"],
      [join(scratch, "missing"), "does not exist"],
      [file, "is not a directory"],
      ["/", "is the root of the filesystem"],
      ["/proc", "pseudo-filesystem /proc"],
      ["/sys/kernel", "pseudo-filesystem /sys"],
      [toProc, "pseudo-filesystem /proc"],
      [home, "is or lies inside AIDO_HOME"],
      [join(home, "goals"), "is or lies inside AIDO_HOME"],
      [toHome, "is or lies inside AIDO_HOME"],
      [tmpdir(), "contains AIDO_HOME"],
      ["/etc", "system folder /etc"],
      ["/etc/ssh", "system folder /etc"],
      ["/run", "system folder /run"],
      ["/var/run", "system folder /run (resolves to /run)"],
      ["/usr", "is the system folder /usr itself"],
      ["/usr/bin", "system folder /usr/bin"],
    ];
    if (!home.startsWith(tmpdir())) throw new Error("the test home is expected under the temp folder");
    mkdirSync(join(home, "goals"), { recursive: true });
    for (const [path, reason] of cases) {
      const e = await rpcError(c.call("session.open", { workspace: path }));
      expect(e.message, path).toContain(JSON.stringify(path));
      expect(e.message, path).toContain(reason);
    }
    const refused = await auditKinds(c, "session.refused");
    expect(refused).toHaveLength(cases.length);
    expect((await c.call("agent.list", {})).agents).toHaveLength(0);
  });

  it("refuses a manifest beyond the operator ceiling and a persistent one", async () => {
    const fx = await suite.start();
    const c = await fx.client();
    const wide = await rpcError(
      c.call("session.open", {
        manifest: { name: "greedy", capabilities: ["tool: exec", "exec: rm *"] },
      }),
    );
    expect(wide.code).toBe("capability_denied");
    expect(wide.message).toContain('"exec: rm *"');
    const persistent = await rpcError(
      c.call("session.open", { manifest: { name: "stays", lifecycle: "persistent" } }),
    );
    expect(persistent.message).toContain("lifecycle: persistent");
    const refused = await auditKinds(c, "session.refused");
    expect(refused.map((e) => e.payload)).toEqual([
      expect.objectContaining({ reason: persistent.message }),
      expect.objectContaining({ reason: expect.stringContaining('"exec: rm *"') }),
    ]);
  });
});

describe("a session that ends leaves no container", () => {
  it("ends when the connection that opened it drops", async () => {
    const fx = await withDocker();
    const dir = project();
    const c = await fx.client();
    const s = await c.call("session.open", { workspace: dir });
    await c.call("tool.invoke", {
      agent_id: s.agent_id,
      tool: "file_write",
      input: { path: "/workspace/kept.txt", content: "kept" },
    });
    expect(containersOf(fx.home)).toHaveLength(1);
    c.close();
    await until(() => containersOf(fx.home).length === 0, 10_000);
    const other = await fx.client();
    const agent = await other.call("agent.status", { agent_id: s.agent_id });
    expect(agent.state).toBe("stopped");
    expect(readFileSync(join(dir, "kept.txt"), "utf8")).toBe("kept");
    await until(async () => (await auditKinds(other, "session.closed")).length === 1, 5_000);
    const [closed] = await auditKinds(other, "session.closed");
    expect(closed?.payload).toMatchObject({ reason: expect.stringContaining("connection") });
  });

  it("leaves no setuid/setgid bit in the host folder (the goal's sweep covers the bind)", async () => {
    const fx = await withDocker();
    const dir = project();
    const c = await fx.client();
    const s = await c.call("session.open", { workspace: dir });
    await c.call("tool.invoke", {
      agent_id: s.agent_id,
      tool: "file_write",
      input: { path: "/workspace/tool", content: "#!/bin/sh\n" },
    });
    // Whatever made it (an exec on a kernel without the seccomp filter), a setuid file is there.
    chmodSync(join(dir, "tool"), 0o4755);
    await c.call("session.close", { session_id: s.session_id });
    await until(async () => (await auditKinds(c, "sandbox.setid_cleared")).length === 1, 10_000);
    expect(statSync(join(dir, "tool")).mode & 0o7777).toBe(0o755);
    const [cleared] = await auditKinds(c, "sandbox.setid_cleared");
    expect(cleared?.payload).toMatchObject({ paths: [join(dir, "tool")] });
  });

  it("ends on agent.stop of its agent", async () => {
    const fx = await withDocker();
    const c = await fx.client();
    const s = await c.call("session.open", { workspace: project() });
    await c.call("tool.invoke", {
      agent_id: s.agent_id,
      tool: "file_write",
      input: { path: "/workspace/x.txt", content: "x" },
    });
    await c.call("agent.stop", { agent_id: s.agent_id });
    await until(() => containersOf(fx.home).length === 0, 10_000);
    const e = await rpcError(c.call("session.close", { session_id: s.session_id }));
    expect(e.code).toBe("not_found");
  });

  it("does not survive a daemon restart", async () => {
    const fx = await withDocker();
    const dir = project();
    const c = await fx.client();
    const s = await c.call("session.open", { workspace: dir });
    await c.call("tool.invoke", {
      agent_id: s.agent_id,
      tool: "file_write",
      input: { path: "/workspace/y.txt", content: "y" },
    });
    await fx.restart();
    await until(() => containersOf(fx.home).length === 0, 10_000);
    const c2 = await fx.client();
    expect((await c2.call("agent.list", {})).agents).toHaveLength(0);
    const e = await rpcError(c2.call("session.close", { session_id: s.session_id }));
    expect(e.code).toBe("not_found");
    expect(readFileSync(join(dir, "y.txt"), "utf8")).toBe("y");
  });
});

describe("snapshots in a session's host folder", () => {
  it("snapshot_restore brings the host folder back and never follows a link out of it", async () => {
    const fx = await withDocker();
    const dir = project();
    const outside = join(scratch as string, "outside.txt");
    writeFileSync(outside, "host file outside the project\n");
    const c = await fx.client();
    const human = await fx.client();
    const s = await c.call("session.open", { workspace: dir });
    const call = (tool: string, input: Record<string, unknown>) =>
      c.call("tool.invoke", { agent_id: s.agent_id, tool, input });
    expect((await call("file_write", { path: "/workspace/notes.txt", content: "v1" })).is_error).toBe(false);
    const taken = await call("snapshot_create", { label: "good state" });
    const id = /snapshot (\S+):/.exec(taken.output)?.[1] as string;
    await call("file_write", { path: "/workspace/notes.txt", content: "v2, a mistake" });
    await call("file_edit", { path: "/workspace/README.md", old_string: "project", new_string: "broken" });
    // Someone swaps a file for a link to a host file outside the project.
    unlinkSync(join(dir, "README.md"));
    symlinkSync(outside, join(dir, "README.md"));

    const restoring = call("snapshot_restore", { id });
    await answerNext(human, "allow_once");
    const r = await restoring;
    expect(r.is_error).toBe(false);
    expect(readFileSync(join(dir, "notes.txt"), "utf8")).toBe("v1");
    expect(readFileSync(join(dir, "README.md"), "utf8")).toBe("the user's project\n");
    expect(readFileSync(outside, "utf8")).toBe("host file outside the project\n");
    await c.call("session.close", { session_id: s.session_id });
    await until(() => containersOf(fx.home).length === 0, 10_000);
  });
});
