// The Landlock domain of an exec, through the executor in the real image: a command and
// everything it starts read and write only what the confinement allows. Written as the
// attacks of issue 10: interpreters, copies, symlinks, hard links, renames, /proc, ptrace
// and signals against the executor, other agents' processes and temp folders.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isAidoError } from "../../src/errors.js";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import type { Confinement, ExecResult } from "../../src/sandbox/types.js";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

let fx: SandboxFixture;
let sb: DockerSandbox;

/** Reads /workspace itself and public/ only, writes public/ only: the grants. */
const narrow: Confinement = {
  read: ["/workspace", "/workspace/public/**"],
  write: ["/workspace/public/**"],
  deny: [],
  denyRead: [],
  denyWrite: [],
  tmp: "/tmp/agent-narrow",
  execute: false,
};
const other: Confinement = {
  ...narrow,
  read: ["/workspace/**"],
  write: ["/workspace/**"],
  tmp: "/tmp/agent-other",
  execute: true,
};

const run = (command: string, confinement: Confinement = narrow): Promise<ExecResult> =>
  sb.exec({ command, confinement });
const setup = (command: string) => sb.exec({ command, confinement: "unconfined" });

beforeAll(async () => {
  fx = makeSandboxFixture();
  sb = await fx.backend.acquire("landlock-goal");
  await setup(
    "mkdir -p /workspace/public /workspace/secret /workspace/secrets /output && echo TOPSECRET > /workspace/secret/k.txt && " +
      "echo hello > /workspace/public/p.txt && echo x > /workspace/secrets/s.txt && echo report > /output/a.md && " +
      "echo other > /output/b.txt",
  );
});
afterAll(async () => {
  await fx?.cleanup();
});

describe("a command in the agent's Landlock domain", () => {
  it("reads what the grants allow and nothing else: cat, .. games and cd", async () => {
    expect((await run("cat /workspace/public/p.txt")).stdout).toBe("hello\n");
    for (const cmd of [
      "cat /workspace/secret/k.txt",
      "cat /workspace/public/../secret/k.txt",
      "cd /workspace/secret && cat k.txt",
      "cat /output/a.md",
    ]) {
      const r = await run(cmd);
      expect(r.stdout, cmd).toBe("");
      expect(r.stderr, cmd).toMatch(/Permission denied/);
    }
  });

  it("binds interpreters: python3 and node cannot open what the grants do not cover", async () => {
    const py = await run(`python3 -c "print(open('/workspace/secret/k.txt').read())"`);
    expect(py.stderr).toMatch(
      /PermissionError: \[Errno 13\] Permission denied: '\/workspace\/secret\/k\.txt'/,
    );
    const node = await run(`node -e "require('fs').readFileSync('/workspace/secret/k.txt')"`);
    expect(node.stderr).toMatch(/EACCES: permission denied, open '\/workspace\/secret\/k\.txt'/);
    const write = await run(`python3 -c "open('/workspace/evil.txt', 'w')"`);
    expect(write.stderr).toMatch(/PermissionError/);
    expect((await setup("ls /workspace")).stdout).not.toContain("evil.txt");
  });

  it("writes only under write grants: cp out of a secret, cp into a read-only place, mv into a denied folder", async () => {
    const results = await Promise.all([
      run("cp /workspace/secret/k.txt /workspace/public/stolen.txt"),
      run("cp /workspace/public/p.txt /workspace/copied.txt"),
      run("mv /workspace/public/p.txt /workspace/secret/p.txt"),
      run("echo x > /output/new.md"),
    ]);
    for (const r of results) expect(r.exitCode).not.toBe(0);
    const left = await setup("ls /workspace /workspace/public /workspace/secret /output");
    expect(left.stdout).not.toMatch(/stolen|copied|new\.md/);
    expect(left.stdout).toMatch(/p\.txt/);
  });

  it("does not let a symlink or a hard link made inside the domain reach the secret", async () => {
    const r = await run(
      "ln -s /workspace/secret/k.txt /workspace/public/sym && cat /workspace/public/sym; " +
        "ln /workspace/secret/k.txt /workspace/public/hard; cat /workspace/public/hard; " +
        "ln -s /workspace/secret /workspace/public/dir && cat /workspace/public/dir/k.txt",
    );
    expect(r.stdout).not.toContain("TOPSECRET");
    expect(r.stderr).toMatch(/sym: Permission denied/);
    expect(r.stderr).toMatch(
      /ln: failed to create hard link .*(Permission denied|Invalid cross-device link)/,
    );
  });

  it("does not let rename games move a secret into reach, even with write access to both folders", async () => {
    // May write all of /workspace but read only public/: moving the secret into public/
    // would give it more rights than it has where it is, which Landlock refuses (EXDEV);
    // mv's fallback, copy and delete, cannot read the source either.
    const writer: Confinement = { ...narrow, read: ["/workspace/public/**"], write: ["/workspace/**"] };
    const r = await run(
      "mv /workspace/secret/k.txt /workspace/public/k.txt; mv /workspace/secret /workspace/public/s2; " +
        "cat /workspace/public/k.txt /workspace/public/s2/k.txt",
      writer,
    );
    expect(r.stdout).not.toContain("TOPSECRET");
    expect(r.stderr).toMatch(/mv: cannot open '\/workspace\/secret\/k\.txt' for reading: Permission denied/);
    const narrowMoves = await run(
      "mv /workspace/secret /workspace/public/secret; mv /workspace/public /workspace/pub2",
    );
    expect(narrowMoves.stderr.match(/Permission denied/g)?.length).toBeGreaterThanOrEqual(2);
    const left = await setup("ls /workspace/secret /workspace/public");
    expect(left.stdout).toContain("k.txt");
    expect(left.stdout).toContain("p.txt");
  });

  it("still moves and links between folders of the same rights (the reaper's nested domain grants REFER)", async () => {
    await setup("mkdir -p /workspace/public/m1 /workspace/public/m2 && echo m > /workspace/public/m1/f");
    const r = await run(
      "mv /workspace/public/m1/f /workspace/public/m2/f && ln /workspace/public/m2/f /workspace/public/m1/h && " +
        "mv /workspace/public/m2 /workspace/public/m1/m2 && cat /workspace/public/m1/m2/f /workspace/public/m1/h",
    );
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("m\nm\n");
    const unconfined = await setup(
      "mv /workspace/public/m1 /workspace/secret/m1 && mv /workspace/secret/m1 /workspace/public/m1 && echo moved",
    );
    expect(unconfined.stdout).toBe("moved\n");
  });

  it("cannot open the executor's file descriptors, environ or memory through /proc", async () => {
    const pid = sb.executorPid;
    const r = await run(
      `ls /proc/${pid}/fd; echo forged > /proc/${pid}/fd/1; cat /proc/${pid}/environ; ` +
        `dd if=/proc/${pid}/mem bs=1 count=1 2>&1; cat /proc/${pid}/cmdline | tr '\\0' ' '`,
    );
    expect(r.stderr).toMatch(new RegExp(`cannot open directory '/proc/${pid}/fd': Permission denied`));
    expect(r.stderr).toMatch(new RegExp(`/proc/${pid}/fd/1: Permission denied`));
    expect(r.stderr).toMatch(new RegExp(`/proc/${pid}/environ: Permission denied`));
    expect(r.stdout).toMatch(/Permission denied/); // dd on mem
    // The executor is still there and still answering.
    expect((await run("echo alive")).stdout).toBe("alive\n");
  });

  it("cannot ptrace the executor or signal it", async () => {
    const pid = sb.executorPid;
    const r = await run(
      `python3 -c "import ctypes; l=ctypes.CDLL(None, use_errno=True); print('ptrace', l.ptrace(16, ${pid}, 0, 0), ctypes.get_errno())"; ` +
        `kill -9 ${pid}; kill -STOP ${pid}; echo done`,
    );
    expect(r.stdout).toContain("ptrace -1 1"); // EPERM
    expect(r.stderr).toMatch(/kill: Operation not permitted/);
    expect((await run("echo alive")).stdout).toBe("alive\n");
    expect(sb.executorPid).toBe(pid);
  });

  it("cannot reach another agent's running command through /proc or signals", async () => {
    const victim = run("echo $$ > /tmp/agent-other/pid; exec sleep 5", other);
    await new Promise((r) => setTimeout(r, 500));
    const vpid = (await setup("cat /tmp/agent-other/pid")).stdout.trim();
    const r = await run(`cat /proc/${vpid}/environ; ls /proc/${vpid}/fd; kill -9 ${vpid}; echo tried`);
    expect(r.stderr).toMatch(/environ: Permission denied/);
    expect(r.stderr).toMatch(/kill: Operation not permitted/);
    const v = await victim;
    expect(v.signal).toBeNull();
    expect(v.exitCode).toBe(0);
  });

  it("has a private temp folder: HOME and TMPDIR point there, nothing else of /tmp is reachable", async () => {
    await run("echo mine > $TMPDIR/note", other);
    const r = await run(
      "echo $HOME $TMPDIR; echo hi > $HOME/x && cat $HOME/x; ls /tmp; cat /tmp/agent-other/note",
    );
    expect(r.stdout).toBe("/tmp/agent-narrow /tmp/agent-narrow\nhi\n");
    expect(r.stderr).toMatch(/ls: cannot open directory '\/tmp': Permission denied/);
    expect(r.stderr).toMatch(/agent-other\/note: Permission denied/);
  });

  it("still runs programs: system folders read and executable, /dev/null and /proc/self usable", async () => {
    const r = await run(
      "ls /usr/bin/python3 >/dev/null && head -c 4 /dev/urandom | wc -c && cat /proc/self/status | head -1",
    );
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^4\nName:\s+cat\n$/);
  });

  it("runs no program from the goal's folders for an agent without execute: a copy, a compiled one, one in its temp folder", async () => {
    await setup(
      "cp /usr/bin/setsid /workspace/public/s && printf 'int main(){return 0;}' > /workspace/public/m.c && " +
        "printf 'echo script-ran\\n' > /workspace/public/x.sh && printf 'print(\"py-ran\")\\n' > /workspace/public/x.py && " +
        "chmod +x /workspace/public/s /workspace/public/x.sh",
    );
    const r = await run(
      "/workspace/public/s sh -c 'echo copy-ran'; cp /workspace/public/s $TMPDIR/s && $TMPDIR/s sh -c 'echo tmp-ran'; " +
        "cd /workspace/public && gcc -o a.out m.c && ./a.out && echo compiled-ran; " +
        "./x.sh; sh ./x.sh; python3 x.py",
    );
    expect(r.stdout).toBe("script-ran\npy-ran\n");
    expect(r.stderr).toMatch(/\/workspace\/public\/s: Permission denied/);
    expect(r.stderr).toMatch(/\/tmp\/agent-narrow\/s: Permission denied/);
    expect(r.stderr).toMatch(/\.\/a\.out: Permission denied/);
    expect(r.stderr).toMatch(/\.\/x\.sh: Permission denied/);
    // An agent whose grants name programs there runs them.
    const ok = await run(
      "/workspace/public/s sh -c 'echo copy-ran'; cd /workspace/public && ./a.out && echo compiled-ran",
      other,
    );
    expect(ok.stdout).toBe("copy-ran\ncompiled-ran\n");
  });

  it("subtracts deny globs: a rule per sibling, none on the folder holding the denied one", async () => {
    const denied: Confinement = { ...other, deny: ["/workspace/secrets/**"] };
    const r = await run("cat /workspace/public/p.txt; cat /workspace/secrets/s.txt; ls /workspace", denied);
    expect(r.stdout).toBe("hello\n");
    expect(r.stderr).toMatch(/secrets\/s\.txt: Permission denied/);
    // Narrower than granted, and documented: /workspace itself gets no rule.
    expect(r.stderr).toMatch(/ls: cannot open directory '\/workspace': Permission denied/);
  });

  it("applies a file pattern to the files that exist: rewrite them, create none", async () => {
    const md: Confinement = { ...narrow, read: ["/output/*.md"], write: ["/output/*.md"] };
    const r = await run(
      "cat /output/a.md; echo more >> /output/a.md; echo new > /output/c.md; cat /output/b.txt",
      md,
    );
    expect(r.stdout).toBe("report\n");
    expect(r.stderr).toMatch(/cannot create \/output\/c\.md: Permission denied/);
    expect(r.stderr).toMatch(/b\.txt: Permission denied/);
    expect((await setup("cat /output/a.md; ls /output")).stdout).toBe("report\nmore\na.md\nb.txt\n");
    // An exact file grant on a file that does not exist yet gives no rule either.
    const exact: Confinement = { ...narrow, write: ["/output/report.md"] };
    const made = await run("echo x > /output/report.md", exact);
    expect(made.stderr).toMatch(/cannot create \/output\/report\.md: Permission denied/);
  });

  it("refuses an exec whose grants expand to too many rules, saying what to grant instead", async () => {
    await setup("mkdir -p /workspace/many && cd /workspace/many && seq 1 5000 | xargs touch");
    const e = await run("true", { ...narrow, read: ["/workspace/many/*"] }).catch((x) => x);
    expect(isAidoError(e, "limit_exceeded")).toBe(true);
    expect((e as Error).message).toMatch(/more than 4096 rules.*grant whole folders/);
  });

  it("runs argv execs in the domain too", async () => {
    const r = await sb.exec({ argv: ["cat", "/workspace/secret/k.txt"], confinement: narrow });
    expect(r.stderr).toMatch(/Permission denied/);
  });
});
