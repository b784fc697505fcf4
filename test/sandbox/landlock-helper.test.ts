// The Landlock helper (sandbox-image/aido-landlock.c) on its own, in the real image: it
// reports the kernel's ABI, honours its rules and nothing else, gives no rule to a path
// with a symlink in it, scopes signals and abstract sockets, refuses every way of making a
// setuid/setgid file, reserving disk past the size limit or writing extended attributes,
// caps file size, makes no Unix socket with --no-unix-sockets, and refuses bad arguments
// with exit 2 and a message.
// Each command runs through an unconfined exec (itself already under the helper's seccomp
// filter); the helper under test is called explicitly inside it.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import type { ExecResult } from "../../src/sandbox/types.js";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

let fx: SandboxFixture;
let sb: DockerSandbox;

const HELPER = "/opt/aido/aido-landlock";
/** Enough of the root file system for dash, coreutils and python3 to start. */
const SYSTEM = ["--read", "/usr", "--read", "/etc", "--write-file", "/dev/null"];

const sh = (command: string): Promise<ExecResult> => sb.exec({ command, confinement: "unconfined" });
const helper = (args: string[]): Promise<ExecResult> =>
  sb.exec({ argv: [HELPER, ...args], confinement: "unconfined" });

beforeAll(async () => {
  fx = makeSandboxFixture();
  sb = await fx.backend.acquire("helper-goal");
  await sh(
    "mkdir -p /workspace/pub /workspace/secret /workspace/out && echo public > /workspace/pub/a.txt && " +
      "echo secret > /workspace/secret/k.txt && ln -sfn /workspace/secret /workspace/lnk && " +
      "ln -sfn /workspace /workspace/out/up",
  );
});
afterAll(async () => {
  await fx?.cleanup();
});

describe("aido-landlock", () => {
  it("reports the kernel's Landlock ABI, and the executor says the same in its hello", async () => {
    const r = await helper(["--abi"]);
    expect(r.exitCode).toBe(0);
    const abi = Number(r.stdout.trim());
    // This machine's kernel: ABI 7 (signal and abstract socket scoping need >= 6).
    expect(abi).toBeGreaterThanOrEqual(6);
    expect(sb.landlockAbi).toBe(abi);
  });

  it("honours read, write and file rules and nothing else", async () => {
    const r = await helper([
      ...SYSTEM,
      "--read",
      "/workspace/pub",
      "--write",
      "/workspace/out",
      "--read-file",
      "/workspace/secret/k.txt",
      "--",
      "/bin/dash",
      "-c",
      "cat /workspace/pub/a.txt; cat /workspace/secret/k.txt; echo made > /workspace/out/n.txt && echo wrote; " +
        "echo no > /workspace/pub/b.txt; ls /workspace; echo no > /workspace/secret/k.txt",
    ]);
    expect(r.stdout).toBe("public\nsecret\nwrote\n");
    expect(r.stderr).toMatch(/cannot create \/workspace\/pub\/b\.txt: Permission denied/);
    expect(r.stderr).toMatch(/ls: cannot open directory '\/workspace': Permission denied/);
    expect(r.stderr).toMatch(/cannot create \/workspace\/secret\/k\.txt: Permission denied/);
  });

  it("--read-data and --read-data-file read a file but execute nothing there (the loader still maps it)", async () => {
    await sh("cp /bin/true /workspace/pub/t && cp /bin/true /workspace/secret/t && chmod +x /workspace/*/t");
    const r = await helper([
      ...SYSTEM,
      "--read-data",
      "/workspace/pub",
      "--read-data-file",
      "/workspace/secret/t",
      "--",
      "/bin/dash",
      "-c",
      "cat /workspace/pub/a.txt; /workspace/pub/t && echo ran-pub; /workspace/secret/t && echo ran-file; " +
        "cmp -s /workspace/pub/t /bin/true && echo read-ok; " +
        "/lib64/ld-linux-x86-64.so.2 /workspace/pub/t && echo loader-ran",
    ]);
    expect(r.stdout).toBe("public\nread-ok\nloader-ran\n");
    expect(r.stderr).toMatch(/\/workspace\/pub\/t: Permission denied/);
    expect(r.stderr).toMatch(/\/workspace\/secret\/t: Permission denied/);
  });

  it("gives no rule to a path with a symlink anywhere in it, and says so", async () => {
    const r = await helper([
      ...SYSTEM,
      "--read",
      "/workspace/lnk",
      "--read",
      "/workspace/out/up/secret",
      "--",
      "/bin/dash",
      "-c",
      "cat /workspace/secret/k.txt /workspace/lnk/k.txt",
    ]);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("no rule for /workspace/lnk (a symlink is in the path)");
    expect(r.stderr).toContain("no rule for /workspace/out/up/secret (a symlink is in the path)");
    expect(r.stderr).toMatch(/k\.txt: Permission denied/);
  });

  it("refuses a folder rule on a file and a file rule on a folder", async () => {
    const r = await helper([
      ...SYSTEM,
      "--read",
      "/workspace/pub/a.txt",
      "--read-file",
      "/workspace/secret",
      "--",
      "/bin/dash",
      "-c",
      "cat /workspace/pub/a.txt /workspace/secret/k.txt",
    ]);
    expect(r.stderr).toContain("no rule for /workspace/pub/a.txt (not a folder)");
    expect(r.stderr).toContain("no rule for /workspace/secret (a folder where a file was expected)");
    expect(r.stdout).toBe("");
  });

  it("scopes signals and abstract unix sockets to the domain", async () => {
    const r = await sh(
      // A listener outside the inner domain on an abstract socket, which the outer command
      // (its own call) may signal and the inner one may not.
      `python3 -c "import socket,time; s=socket.socket(socket.AF_UNIX); s.bind('\\0aido-test'); s.listen(); time.sleep(20)" & ` +
        "L=$!; sleep 0.5; kill -0 $L && echo signal-outside-ok; " +
        `${HELPER} ${SYSTEM.join(" ")} -- /bin/dash -c "kill -0 $L || echo signal-refused; ` +
        `python3 -c \\"import socket; s=socket.socket(socket.AF_UNIX); s.connect(chr(0)+'aido-test')\\" 2>&1 | tail -1"; kill $L`,
    );
    expect(r.stdout).toContain("signal-outside-ok");
    expect(r.stdout).toContain("signal-refused");
    expect(r.stdout).toMatch(/PermissionError: \[Errno 1\] Operation not permitted/);
  });

  it("--reap exits like its program: the same exit code, or the same signal", async () => {
    const r = await sh(
      `${HELPER} --reap ${SYSTEM.join(" ")} -- /bin/dash -c 'exit 7'; echo code=$?; ` +
        `${HELPER} --reap ${SYSTEM.join(" ")} -- /bin/dash -c 'kill -USR1 $$'; echo code=$?`,
    );
    expect(r.stdout).toBe("code=7\ncode=138\n"); // 128 + SIGUSR1
  });

  it("--reap kills what its program left, however it left, and nothing outside its call", async () => {
    const r = await sh(
      "sleep 101 & " +
        `${HELPER} --reap ${SYSTEM.join(" ")} -- python3 -c "` +
        [
          "import ctypes,os,subprocess",
          "subprocess.Popen(['sleep', '102'])",
          "subprocess.Popen(['setsid', 'sleep', '103'])",
          "if ctypes.CDLL(None).syscall(56, 0x8000|17, 0, 0, 0, 0) == 0:", // CLONE_PARENT
          "    os.setsid(); os.execvp('sleep', ['sleep', '104'])",
        ].join("\n") +
        '"; sleep 0.2; ps -eo args | grep "^sleep 10" | sort',
    );
    expect(r.stdout).toBe("sleep 101\n");
  });

  it("--oom-score-adj sets the score before anything starts: the reaper and its program share it", async () => {
    const r = await sh(
      `${HELPER} --unconfined --reap --oom-score-adj 1000 -- /bin/dash -c 'cat /proc/$PPID/oom_score_adj /proc/self/oom_score_adj'`,
    );
    expect(r.stdout).toBe("1000\n1000\n");
  });

  it("--reap's program can neither signal nor ptrace its reaper", async () => {
    const r = await sh(
      `${HELPER} --reap ${SYSTEM.join(" ")} -- python3 -c "` +
        [
          "import ctypes,os,signal",
          "l=ctypes.CDLL(None, use_errno=True)",
          "try: os.kill(os.getppid(), signal.SIGTERM); print('signalled')",
          "except OSError as e: print('kill', e.errno)",
          "print('ptrace', l.ptrace(16, os.getppid(), 0, 0), ctypes.get_errno())", // PTRACE_ATTACH
          "print('alive')",
        ].join("\n") +
        '"',
    );
    expect(r.stdout).toBe("kill 1\nptrace -1 1\nalive\n");
  });

  it("--reap ends the call on SIGTERM: the program and all it started are killed", async () => {
    const r = await sh(
      `${HELPER} --reap ${SYSTEM.join(" ")} -- /bin/dash -c 'setsid sleep 105 & sleep 106' & R=$!; ` +
        "sleep 0.3; kill -TERM $R; wait $R; echo code=$?; ps -eo args | grep -c '^sleep 10'",
    );
    expect(r.stdout).toBe("code=137\n0\n"); // the program's SIGKILL, re-raised
  });

  it("refuses every way of making a setuid or setgid file", async () => {
    const py = (code: string) => `python3 -c "${code}" 2>&1 | tail -1`;
    const r = await sh(
      [
        "cd /workspace/out",
        "touch f && chmod u+s f; chmod g+s f",
        "cp -p /usr/bin/passwd p",
        "install -m 4755 /dev/null i",
        "mkdir -m 2755 d",
        py("import os; os.open('o', os.O_CREAT|os.O_WRONLY, 0o4755)"),
        py("import os; os.mknod('m', 0o104755)"),
        py("import os; os.chmod('f', 0o6777)"),
        // openat2 carries its mode in memory the filter cannot read: it is refused outright.
        py(
          "import ctypes; print('openat2', ctypes.CDLL(None, use_errno=True).syscall(437, -100, b'x', 0, 0), ctypes.get_errno())",
        ),
        py(
          "import ctypes; print('io_uring', ctypes.CDLL(None, use_errno=True).syscall(425, 8, 0), ctypes.get_errno())",
        ),
        "find /workspace/out -perm /6000 | wc -l",
      ].join("; "),
    );
    expect(r.stderr).toMatch(/chmod: changing permissions of 'f': Operation not permitted/);
    expect(r.stderr).toMatch(/install: cannot change permissions of 'i': Operation not permitted/);
    expect(r.stderr).toMatch(/mkdir: cannot create directory .d.: Operation not permitted/);
    expect(r.stdout).toContain("openat2 -1 38");
    expect(r.stdout).toContain("io_uring -1 38");
    expect(r.stdout.match(/PermissionError: \[Errno 1\] Operation not permitted/g)).toHaveLength(3);
    expect(r.stdout.trim().endsWith("\n0")).toBe(true);
  });

  it("refuses fallocate in any mode but 0 (EOPNOTSUPP), and bounds mode 0 by --fsize", async () => {
    const r = await sh(
      `${HELPER} --unconfined --fsize 65536 -- python3 -c "` +
        [
          "import os,ctypes",
          "l=ctypes.CDLL(None, use_errno=True)",
          "fd=os.open('/workspace/out/fa', os.O_CREAT|os.O_WRONLY, 0o644)",
          "def fa(mode, n):",
          "    ctypes.set_errno(0); return '%d/%d' % (l.fallocate(fd, mode, ctypes.c_long(0), ctypes.c_long(n)), ctypes.get_errno())",
          // KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE, COLLAPSE_RANGE, ZERO_RANGE, INSERT_RANGE, UNSHARE_RANGE
          "print([fa(m, 1<<20) for m in (1, 3, 8, 0x10, 0x20, 0x40)])",
          "print(fa(0, 1<<30), fa(0, 4096), os.fstat(fd).st_size)",
        ].join("\n") +
        '"',
    );
    expect(r.stdout).toBe(
      `${JSON.stringify(Array(6).fill("-1/95")).replaceAll('"', "'").replaceAll(",", ", ")}\n-1/27 0/0 4096\n`,
    );
  });

  it("refuses to write or remove extended attributes, in every form (ENOTSUP)", async () => {
    const r = await sh(
      "touch /workspace/out/x; ln -sf x /workspace/out/xl; " +
        `${HELPER} --unconfined -- python3 -c "` +
        [
          "import os,ctypes",
          "l=ctypes.CDLL(None, use_errno=True)",
          "fd=os.open('/workspace/out/x', os.O_RDONLY)",
          "def t(f):",
          "    try: f(); return 'ok'",
          "    except OSError as e: return str(e.errno)",
          "def raw(nr, *a):",
          "    ctypes.set_errno(0); return '%d/%d' % (l.syscall(nr, *a), ctypes.get_errno())",
          "x=b'/workspace/out/x'",
          "print(t(lambda: os.setxattr('/workspace/out/x', 'user.a', b'1')),",
          "  t(lambda: os.setxattr('/workspace/out/xl', 'user.a', b'1', follow_symlinks=False)),",
          "  t(lambda: os.setxattr(fd, 'user.a', b'1')),",
          "  t(lambda: os.removexattr('/workspace/out/x', 'user.a')),",
          "  t(lambda: os.removexattr('/workspace/out/xl', 'user.a', follow_symlinks=False)),",
          "  t(lambda: os.removexattr(fd, 'user.a')))",
          // setxattrat (463) and removexattrat (466), Linux 6.13
          "print(raw(463, -100, x, 0, b'user.a', 0, 0), raw(466, -100, x, 0, b'user.a'))",
          "print(os.listxattr('/workspace/out/x'))",
        ].join("\n") +
        '"',
    );
    expect(r.stdout).toBe("95 95 95 95 95 95\n-1/95 -1/95\n[]\n");
  });

  it("caps the size a file can grow to with --fsize", async () => {
    const r = await sh(
      `${HELPER} --unconfined --fsize 4096 -- dd if=/dev/zero of=/workspace/out/big bs=1k count=64; ` +
        "echo status=$?; stat -c %s /workspace/out/big",
    );
    expect(r.stdout).toMatch(/status=153\n4096\n/); // 128 + SIGXFSZ
  });

  it("lets no file grow with --fsize 0, while deleting still works", async () => {
    const r = await sh(
      "printf keep > /workspace/out/old; " +
        `${HELPER} --unconfined --fsize 0 -- dd if=/dev/zero of=/workspace/out/new bs=1 count=1; echo write=$?; ` +
        `${HELPER} --unconfined --fsize 0 -- rm /workspace/out/old; echo rm=$?; ` +
        "stat -c %s /workspace/out/new; test -e /workspace/out/old || echo gone",
    );
    expect(r.stdout).toMatch(/write=153\nrm=0\n0\ngone\n/);
  });

  it.each([
    [["--bogus", "--", "true"], /unknown option "--bogus"/],
    [["--read"], /--read needs a value/],
    [["--read", "workspace", "--", "true"], /"workspace" is not a canonical absolute path/],
    [["--read", "/workspace/../etc", "--", "true"], /not a canonical absolute path/],
    [["--unconfined", "--read", "/usr", "--", "true"], /--unconfined takes no rules/],
    [["--fsize", "-1", "--", "true"], /--fsize needs a number of bytes/],
    [["--read", "/usr"], /nothing to run/],
    [["--abi", "--read", "/usr"], /--abi takes no other argument/],
    [["--oom-score-adj", "-5", "--", "true"], /--oom-score-adj needs a number from 0 to 1000, got "-5"/],
    [["--oom-score-adj", "1001", "--", "true"], /--oom-score-adj needs a number from 0 to 1000/],
  ])("refuses %j with exit 2 and a message", async (args, message) => {
    const r = await helper(args);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain("usage: aido-landlock");
  });

  it("--no-unix-sockets refuses an AF_UNIX socket and a datagram socketpair, confined or not, with or without a reaper", async () => {
    const probe = [
      "import socket",
      "def t(name, f):",
      "    try:",
      "        f(); print(name, 'ok')",
      "    except OSError as e:",
      "        print(name, e.errno)",
      "t('stream', lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK))",
      "t('dgram', lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))",
      "t('pair-dgram', lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC))",
      "t('pair-stream', lambda: socket.socketpair())",
      "t('pair-seqpacket', lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET))",
      "t('inet', lambda: socket.socket(socket.AF_INET))",
    ].join("\n");
    const refused = "stream 13\ndgram 13\npair-dgram 13\npair-stream ok\npair-seqpacket ok\ninet ok\n";
    for (const mode of [["--unconfined"], ["--unconfined", "--reap"], [...SYSTEM, "--read", "/tmp"]]) {
      const r = await helper([...mode, "--no-unix-sockets", "--", "python3", "-c", probe]);
      expect(r.stdout, `${mode.join(" ")}: ${r.stderr}`).toBe(refused);
    }
    const plain = await helper(["--unconfined", "--", "python3", "-c", probe]);
    expect(plain.stdout).toBe(
      "stream ok\ndgram ok\npair-dgram ok\npair-stream ok\npair-seqpacket ok\ninet ok\n",
    );
  });

  it("reports a program it cannot run as 127, like a shell", async () => {
    const r = await helper(["--unconfined", "--", "no-such-program"]);
    expect(r.exitCode).toBe(127);
    expect(r.stderr).toContain("aido-landlock: no-such-program: No such file or directory");
  });
});
