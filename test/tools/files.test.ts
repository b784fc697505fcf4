// The file, exec and snapshot tools against a real goal container, attacked the way a model
// would: traversal, symlinks made by exec (to files and to parent folders), a symlink swapped
// in between the check and the write, denied writes, floods of output.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isAidoError } from "../../src/errors.js";
import type { ToolDef } from "../../src/gate/types.js";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import { goalFolders } from "../../src/sandbox/folders.js";
import { WorkspaceQuota } from "../../src/sandbox/quota.js";
import { SnapshotStore } from "../../src/sandbox/snapshots.js";
import { execTool } from "../../src/tools/exec.js";
import { fileEdit, fileList, fileRead, fileWrite, grep } from "../../src/tools/files.js";
import { snapshotTools } from "../../src/tools/snapshot-tools.js";
import { makeSandboxFixture, type SandboxFixture } from "../sandbox/fixture.js";
import { judge, readsAnything } from "../support/tool-context.js";

let fx: SandboxFixture;
let sb: DockerSandbox;
const goal = "tools-goal";
const WS_GRANTS = ["tool: *", "file_read: /workspace/**", "file_write: /workspace/**", "exec: *"];

beforeAll(async () => {
  fx = makeSandboxFixture();
  sb = await fx.backend.acquire(goal);
});
afterAll(async () => {
  await fx?.cleanup();
});

const base = (outputMaxBytes = 32_768) => ({ sandbox: sb, goalId: goal, agentId: "a1", outputMaxBytes });
async function call<I>(tool: ToolDef<I>, raw: unknown, grants = WS_GRANTS, outputMaxBytes?: number) {
  const { input, ctx } = await judge(tool, raw, grants, base(outputMaxBytes));
  return tool.run(input, ctx);
}
const sh = async (command: string) => (await sb.exec({ confinement: "unconfined", command })).stdout;
const denied = (path: RegExp) => (e: unknown) =>
  isAidoError(e, "capability_denied") && path.test((e as Error).message);
const exec = execTool({ execTimeoutMs: 30_000 });

describe("path tools", () => {
  it("judges ../ traversal by the canonical path it reaches", async () => {
    expect(
      await fileRead.needs({ path: "../etc/passwd" }, { sandbox: sb, readRefusal: readsAnything }),
    ).toContainEqual({
      kind: "file_read",
      path: "/etc/passwd",
    });
    await expect(call(fileRead, { path: "sub/../../etc/passwd" })).rejects.toSatisfy(denied(/\/etc\/passwd/));
  });

  it("judges a symlink made by exec that points at /etc as /etc", async () => {
    await sh("ln -sfn /etc /workspace/etc-link");
    await expect(call(fileRead, { path: "etc-link/passwd" })).rejects.toSatisfy(denied(/\/etc\/passwd/));
  });

  it("judges a write under a symlinked parent folder by where it lands, and leaves no trace", async () => {
    await sh("mkdir -p /tmp/outside && ln -sfn /tmp/outside /workspace/parent-link");
    await expect(call(fileWrite, { path: "parent-link/x.txt", content: "pwned" })).rejects.toSatisfy(
      denied(/\/tmp\/outside\/x\.txt/),
    );
    expect(await sh("ls -A /tmp/outside")).toBe("");
  });

  it("a denied write neither creates nor truncates anything", async () => {
    await sh("printf keep > /workspace/keep.txt");
    const grants = ["tool: *", "file_read: /workspace/**", "file_write: /workspace/out/**"];
    await expect(call(fileWrite, { path: "keep.txt", content: "" }, grants)).rejects.toSatisfy(
      denied(/keep\.txt/),
    );
    await expect(call(fileWrite, { path: "new.txt", content: "x" }, grants)).rejects.toSatisfy(
      denied(/new\.txt/),
    );
    expect(await sh("cat /workspace/keep.txt; ls /workspace/new.txt 2>&1 || true")).toMatch(
      /^keep.*No such file/s,
    );
  });

  it("refuses at run time when a symlink was swapped in after the check", async () => {
    await sh("mkdir -p /workspace/data /tmp/swap");
    const { input, ctx } = await judge(fileWrite, { path: "data/x.txt", content: "late" }, WS_GRANTS, base());
    await sh("rm -rf /workspace/data && ln -s /tmp/swap /workspace/data");
    await expect(fileWrite.run(input, ctx)).rejects.toSatisfy(denied(/now resolves to \/tmp\/swap\/x\.txt/));
    expect(await sh("ls -A /tmp/swap")).toBe("");
  });

  it("writes atomically and reads back, with no temp file left", async () => {
    const w = await call(fileWrite, { path: "dir/a.txt", content: "héllo\n" });
    expect(w.output).toBe("wrote 7 bytes to /workspace/dir/a.txt");
    expect((await call(fileRead, { path: "/workspace/dir/a.txt" })).output).toBe("héllo\n");
    expect(await sh("ls -A /workspace/dir")).toBe("a.txt\n");
    expect((await call(fileList, { path: "dir" })).output).toMatch(/file\s+7\s+a\.txt/);
  });

  it("an edit whose old_string is not unique fails and leaves the file unchanged", async () => {
    await call(fileWrite, { path: "e.txt", content: "a a a\n" });
    await expect(call(fileEdit, { path: "e.txt", old_string: "a", new_string: "b" })).rejects.toThrow(
      /3 times/,
    );
    expect(await sh("cat /workspace/e.txt")).toBe("a a a\n");
    const r = await call(fileEdit, { path: "e.txt", old_string: "a", new_string: "b", replace_all: true });
    expect(r.data).toMatchObject({ replacements: 3 });
  });

  it("bounds a large file read to the output cap and says so", async () => {
    await sh("head -c 100000 /dev/zero | tr '\\0' x > /workspace/big.txt");
    const r = await call(fileRead, { path: "big.txt" }, WS_GRANTS, 1000);
    expect(Buffer.byteLength(r.output)).toBeLessThan(1100);
    expect(r.output).toMatch(/truncated: showed \d+ of 100000 bytes/);
  });

  it("greps under a folder, never through links", async () => {
    await call(fileWrite, { path: "g/one.py", content: "needle = 1\n" });
    const r = await call(grep, { pattern: "needle|root:", path: "/workspace" });
    expect(r.output).toContain("/workspace/g/one.py:1: needle = 1");
    expect(r.output).not.toContain("root:");
  });

  it("rejects NUL bytes, unknown keys and oversized paths at the schema", () => {
    expect(fileRead.input.safeParse({ path: "a\0b" }).success).toBe(false);
    expect(fileRead.input.safeParse({ path: "a", mode: 1 }).success).toBe(false);
    expect(fileWrite.input.safeParse({ path: "x".repeat(5000), content: "" }).success).toBe(false);
  });
});

describe("exec", () => {
  it("needs each unfolded command, the files it names under the mounts and the working folder", async () => {
    const input = { command: "sh -c 'cat a.txt' > /output/out && cat ./b.txt > /etc/out" };
    const needs = await exec.needs(input, { sandbox: sb, readRefusal: readsAnything });
    expect(needs).toEqual(
      expect.arrayContaining([
        { kind: "tool", name: "exec" },
        { kind: "exec", argv: ["cat", "a.txt"] },
        { kind: "file_write", path: "/output/out", via: 'the redirection >: "/output/out"' },
        { kind: "file_access", path: "/workspace/b.txt", via: 'argument 1 of cat: "./b.txt"' },
        { kind: "file_read", path: "/workspace", via: "the working folder" },
      ]),
    );
    // Outside the mounts no grant is needed; the path goes to the policy, resolved.
    expect(needs.some((n) => "path" in n && n.path === "/etc/out")).toBe(false);
    expect(exec.policyCommand?.(input)?.paths).toContainEqual({
      path: "/etc/out",
      access: "write",
      via: 'the redirection >: "/etc/out"',
    });
    await expect(call(exec, { command: "echo x > /output/out" })).rejects.toSatisfy(denied(/\/output\/out/));
  });

  it("bounds a flood of output to the cap, saying how much there was", async () => {
    const r = await call(exec, { command: "yes | head -c 5000000" }, WS_GRANTS, 4096);
    expect(Buffer.byteLength(r.output)).toBeLessThan(4096 + 200);
    expect(r.output).toMatch(/truncated/);
    expect(r.output).toMatch(/^exit code 0/);
  });

  it("reports a non-zero exit as an error result with stderr", async () => {
    const r = await call(exec, { command: "echo oops >&2; exit 3" });
    expect(r.isError).toBe(true);
    expect(r.output).toContain("exit code 3");
    expect(r.output).toContain("oops");
  });

  it("kills the command when the call's signal aborts (the agent stopping)", async () => {
    const ac = new AbortController();
    const { input, ctx } = await judge(
      exec,
      { command: "sleep 77; echo late > /workspace/late.txt" },
      WS_GRANTS,
      {
        ...base(),
        signal: ac.signal,
      },
    );
    const running = exec.run(input, ctx).catch((e) => e);
    setTimeout(() => ac.abort(), 300);
    expect(isAidoError(await running, "cancelled")).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(await sh("ps -eo args | grep -c 'sleep 7[7]'; ls /workspace")).not.toMatch(/late\.txt/);
    expect(await sh("ps -eo args | grep -c 'sleep 7[7]' || true")).toBe("0\n");
  });
});

describe("snapshot tools", () => {
  it("restores what exec changed in the container, in /workspace and /output", async () => {
    const [create, restore, list] = snapshotTools({
      store: new SnapshotStore({ goalsDir: fx.config.goalsDir, maxMb: fx.config.sandbox.snapshotsMaxMb }),
      roots: (g) => goalFolders(fx.config.goalsDir, g),
      quota: new WorkspaceQuota({ goalsDir: fx.config.goalsDir, maxMb: fx.config.sandbox.workspaceMaxMb }),
    }) as [ToolDef, ToolDef, ToolDef];
    const all = [...WS_GRANTS, "file_read: /output/**", "file_write: /output/**"];
    await sh("printf v1 > /workspace/s.txt && printf o1 > /output/o.txt");
    const made = (await call(create, { label: "v1" }, all)).data as { id: string };
    await sh("printf v2 > /workspace/s.txt && touch /workspace/extra && printf o2 > /output/o.txt");
    const r = await call(restore, { id: made.id }, all);
    expect(r.data).toMatchObject({ files_failed: [] });
    expect(await sh("cat /workspace/s.txt; ls /workspace/extra 2>/dev/null || echo gone")).toBe("v1gone\n");
    expect(await sh("cat /output/o.txt")).toBe("o1");
    expect(await sh("stat -c %u:%g /workspace/s.txt")).toBe(await sh("id -u | tr -d '\\n'; printf :; id -g"));
    expect((await call(list, {}, all)).output).toContain(`${made.id}`);
    // A caller that may write /workspace/out only restores nothing else, and says so.
    await sh("printf v3 > /workspace/s.txt");
    const narrow = await call(restore, { id: made.id }, [
      "tool: *",
      "file_read: /workspace/**",
      "file_write: /workspace/out/**",
    ]);
    expect(narrow.isError).toBe(true);
    expect(narrow.data).toMatchObject({
      files_restored: 0,
      files_failed: [
        { path: "/workspace/s.txt", reason: "no capability grants file_write on /workspace/s.txt" },
      ],
    });
    expect(await sh("cat /workspace/s.txt")).toBe("v3");
  });
});
