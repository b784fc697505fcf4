// The executor's operations, end to end through a real container: exec (argv, shell,
// limits on output and time), files (atomic write, edit, read windows), listing, glob,
// grep and realpath, with several calls in flight on the one session.

import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isAidoError } from "../../src/errors.js";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

let fx: SandboxFixture;
let sb: DockerSandbox;
let hostWorkspace: string;

beforeAll(async () => {
  fx = makeSandboxFixture();
  sb = await fx.backend.acquire("exec-goal");
  hostWorkspace = join(fx.config.goalsDir, "exec-goal", "workspace");
});
afterAll(async () => {
  await fx?.cleanup();
});

describe("exec", () => {
  it("runs argv without a shell and a command string through /bin/dash -c", async () => {
    const shell = await sb.exec({ confinement: "unconfined", command: "readlink /proc/$$/exe" });
    expect(shell.stdout).toBe("/usr/bin/dash\n");
    const a = await sb.exec({ confinement: "unconfined", argv: ["echo", "$HOME", "a b"] });
    expect(a.stdout).toBe("$HOME a b\n");
    const b = await sb.exec({ confinement: "unconfined", command: "echo $HOME; exit 3" });
    expect(b).toMatchObject({
      stdout: "/tmp\n",
      exitCode: 3,
      signal: null,
      timedOut: false,
      truncated: false,
    });
  });

  it("honours cwd, env and stdin", async () => {
    await sb.exec({ confinement: "unconfined", command: "mkdir -p /workspace/sub" });
    const r = await sb.exec({
      confinement: "unconfined",
      command: "pwd; echo $GREETING; cat",
      cwd: "sub",
      env: { GREETING: "hi" },
      stdin: "fed",
    });
    expect(r.stdout).toBe("/workspace/sub\nhi\nfed");
  });

  it("reports a missing program as exit 127 and a missing cwd as an error naming it", async () => {
    expect((await sb.exec({ confinement: "unconfined", argv: ["no-such-program"] })).exitCode).toBe(127);
    await expect(
      sb.exec({ confinement: "unconfined", command: "true", cwd: "/workspace/nope" }),
    ).rejects.toThrow(/\/workspace\/nope/);
  });

  it("cuts an output flood with a visible marker and keeps both ends", async () => {
    const r = await sb.exec({
      confinement: "unconfined",
      command: "echo START; yes | head -c 50000000; echo; echo END",
      maxOutputBytes: 10_000,
    });
    expect(r.truncated).toBe(true);
    expect(r.stdout.startsWith("START\n")).toBe(true);
    expect(r.stdout.trimEnd().endsWith("END")).toBe(true);
    expect(r.stdout).toMatch(/\n\[\.\.\. truncated \d+ bytes \.\.\.\]\n/);
    expect(r.stdout.length).toBeLessThan(10_200);
  });

  it("kills the whole process group on timeout, grandchildren included", async () => {
    const r = await sb.exec({ confinement: "unconfined", command: "sleep 100 & sleep 100", timeoutMs: 500 });
    expect(r.timedOut).toBe(true);
    expect(r.stderr).toMatch(/timed out after 500 ms/);
    const ps = await sb.exec({ confinement: "unconfined", command: "ps -eo args" });
    expect(ps.stdout).not.toMatch(/sleep 100/);
  });

  it("does not leave background processes behind after a command ends", async () => {
    await sb.exec({ confinement: "unconfined", command: "sleep 100 >/dev/null 2>&1 &" });
    const ps = await sb.exec({ confinement: "unconfined", command: "ps -eo args" });
    expect(ps.stdout).not.toMatch(/sleep 100/);
  });

  it("gives every command (and what it starts) an OOM score that puts it before the executor", async () => {
    const r = await sb.exec({
      confinement: "unconfined",
      command: "cat /proc/self/oom_score_adj; sh -c 'cat /proc/self/oom_score_adj'",
    });
    expect(r.stdout).toBe("1000\n1000\n");
  });

  it("serves several calls in flight on one session", async () => {
    const started = Date.now();
    const results = await Promise.all([
      sb.exec({ confinement: "unconfined", command: "sleep 1; echo slow" }),
      sb.stat("/workspace"),
      sb.exec({ confinement: "unconfined", argv: ["echo", "fast"] }),
    ]);
    expect(results[0].stdout).toBe("slow\n");
    expect(results[1]?.type).toBe("dir");
    expect(results[2].stdout).toBe("fast\n");
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe("files", () => {
  it("writes atomically: creates parents, replaces whole, leaves no temp file", async () => {
    await sb.writeFile("/workspace/deep/er/f.txt", "one\n");
    await sb.writeFile("/workspace/deep/er/f.txt", "two\n");
    expect(readFileSync(join(hostWorkspace, "deep/er/f.txt"), "utf8")).toBe("two\n");
    expect(readdirSync(join(hostWorkspace, "deep/er"))).toEqual(["f.txt"]);
  });

  it("writes a file the host user can read", async () => {
    await sb.writeFile("/workspace/host-readable.txt", "x");
    const st = statSync(join(hostWorkspace, "host-readable.txt"));
    expect(st.mode & 0o044).toBe(0o044);
    expect(st.uid).toBe(1000);
  });

  it("keeps a rewritten file's permission bits but never its set-id bits", async () => {
    const host = join(hostWorkspace, "setid.sh");
    writeFileSync(host, "#!/bin/sh\n");
    chmodSync(host, 0o6755);
    await sb.writeFile("/workspace/setid.sh", "#!/bin/sh\necho hi\n", { expect: "/workspace/setid.sh" });
    expect(statSync(host).mode & 0o7777).toBe(0o755);
    chmodSync(host, 0o4750);
    await sb.editFile("/workspace/setid.sh", "hi", "ho", false);
    expect(statSync(host).mode & 0o7777).toBe(0o750);
  });

  it("replaces a symlink on write instead of writing through it", async () => {
    await sb.writeFile("/workspace/target.txt", "original");
    await sb.exec({ confinement: "unconfined", command: "ln -s /workspace/target.txt /workspace/link.txt" });
    await sb.writeFile("/workspace/link.txt", "new");
    expect(readFileSync(join(hostWorkspace, "target.txt"), "utf8")).toBe("original");
    expect((await sb.stat("/workspace/link.txt"))?.type).toBe("file");
  });

  it("edits a string that occurs exactly once", async () => {
    await sb.writeFile("/workspace/e.txt", "alpha beta gamma");
    expect(await sb.editFile("/workspace/e.txt", "beta", "BETA", false)).toEqual({ replacements: 1 });
    expect((await sb.readFile("/workspace/e.txt")).content).toBe("alpha BETA gamma");
  });

  it("refuses an edit whose old_string is missing or ambiguous, leaving the file untouched", async () => {
    await sb.writeFile("/workspace/amb.txt", "x $& x");
    const missing = await sb.editFile("/workspace/amb.txt", "nope", "y", false).catch((e) => e);
    expect(isAidoError(missing, "invalid_input")).toBe(true);
    expect(missing.message).toMatch(/not found/);
    const twice = await sb.editFile("/workspace/amb.txt", "x", "y", false).catch((e) => e);
    expect(twice.message).toMatch(/occurs 2 times/);
    expect(readFileSync(join(hostWorkspace, "amb.txt"), "utf8")).toBe("x $& x");
    expect(await sb.editFile("/workspace/amb.txt", "x", "$&y", true)).toEqual({ replacements: 2 });
    expect(readFileSync(join(hostWorkspace, "amb.txt"), "utf8")).toBe("$&y $& $&y");
  });

  it("reads a window of lines and caps bytes", async () => {
    await sb.writeFile("/workspace/lines.txt", "l1\nl2\nl3\nl4\n");
    expect(await sb.readFile("/workspace/lines.txt", { offset: 1, limit: 2 })).toEqual({
      content: "l2\nl3\n",
      truncated: true,
      size: 12,
    });
    expect((await sb.readFile("/workspace/lines.txt", { maxBytes: 4 })).content).toBe("l1\nl");
    const missing = await sb.readFile("/workspace/none.txt").catch((e) => e);
    expect(isAidoError(missing, "not_found")).toBe(true);
  });

  it("lists, stats and greps (with a glob filter) without following symlinks", async () => {
    await sb.writeFile("/workspace/tree/a.ts", "const needle = 1;\n");
    await sb.writeFile("/workspace/tree/sub/b.md", "no\nneedle here\n");
    await sb.exec({
      confinement: "unconfined",
      command: "ln -s /etc /workspace/tree/etc-link; printf 'needle\\0' > /workspace/tree/bin.dat",
    });
    expect((await sb.list("/workspace/tree")).map((e) => `${e.name}:${e.type}`)).toEqual([
      "a.ts:file",
      "bin.dat:file",
      "etc-link:symlink",
      "sub:dir",
    ]);
    expect(await sb.stat("/workspace/tree/none")).toBeNull();
    expect((await sb.grep("needle", "/workspace/tree", "**/*.{ts,md}")).map((m) => m.path)).toEqual([
      "/workspace/tree/a.ts",
      "/workspace/tree/sub/b.md",
    ]);
    expect(await sb.grep("needle", "/workspace/tree", "su?/[a-c].md")).toHaveLength(1);
    const hits = await sb.grep("needle", "/workspace/tree");
    expect(hits).toEqual([
      { path: "/workspace/tree/a.ts", line: 1, text: "const needle = 1;" },
      { path: "/workspace/tree/sub/b.md", line: 2, text: "needle here" },
    ]);
    expect(await sb.grep("needle", "/workspace/tree", "*.md")).toHaveLength(1);
    expect(await sb.grep("needle", "/workspace/tree", undefined, 1)).toHaveLength(1);
    await expect(sb.grep("(", "/workspace")).rejects.toThrow(/invalid regular expression/);
  });

  it("stops a catastrophic regular expression instead of hanging the executor", async () => {
    await sb.writeFile("/workspace/redos.txt", `${"a".repeat(40)}!\n`);
    const slow = sb.grep("^(a+)+$", "/workspace/redos.txt", undefined, undefined, { timeoutMs: 1000 });
    await expect(slow).rejects.toThrow(/took longer than 1000 ms/);
    expect((await sb.exec({ confinement: "unconfined", argv: ["echo", "alive"] })).stdout).toBe("alive\n");
  });
});

describe("realpath", () => {
  it("resolves a symlink made by exec to where it really points", async () => {
    await sb.exec({ confinement: "unconfined", command: "ln -sfn /etc /workspace/escape" });
    expect(await sb.realpath("/workspace/escape/passwd")).toBe("/etc/passwd");
    expect(await sb.realpath("/workspace/escape/../x")).toBe("/x");
  });

  it("removes . and .. and appends a missing tail normalised", async () => {
    expect(await sb.realpath("/workspace/./a/../b/missing/../c")).toBe("/workspace/b/c");
    expect(await sb.realpath("rel/file")).toBe("/workspace/rel/file");
    await sb.exec({
      confinement: "unconfined",
      command: "mkdir -p /workspace/real && ln -sfn real /workspace/rl",
    });
    expect(await sb.realpath("/workspace/rl/new/../f")).toBe("/workspace/real/f");
  });

  it("stops at a symlink loop with an error", async () => {
    await sb.exec({
      confinement: "unconfined",
      command: "ln -sfn loop2 /workspace/loop1; ln -sfn loop1 /workspace/loop2",
    });
    await expect(sb.realpath("/workspace/loop1/x")).rejects.toThrow(/too many levels/);
  });
});
