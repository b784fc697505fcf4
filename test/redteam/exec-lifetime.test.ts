// Red team: a command must not outlive its exec call. The attacks: a command that `exec`s
// into python3 and clones itself with CLONE_PARENT (a sibling, as the child of whatever
// started the command) and then leaves its session with setsid(); one that forks and exits
// in a loop, taking a new session each time, so a scan of /proc never finds the same pid
// twice; and both again under a timeout. Each once escaped the executor's process-group
// kill and its orphan sweep and kept writing into the agent's folders after the call.
// Now (Landlock ABI >= 6, as on this machine) the exec helper stays as the call's reaper:
// a child subreaper in the call's own domain, which the command can neither signal nor
// ptrace, and which kills everything left in that domain (kill(-1) is scoped to it) when
// the command ends or the executor ends the call. So every process a call made is gone
// when its answer arrives, and a call never touches another call's processes.

import { chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import { expectOk, noSnapshots, useBench } from "./fixture.js";

const b = useBench(noSnapshots);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const py = (lines: string[]) => `exec python3 -c "${lines.join("\n")}"`;

/** An agent that reads public/ and writes out/, with its workspace folders made. */
async function lingerer(name: string): Promise<{ id: string; ws: string; sandbox: DockerSandbox }> {
  const a = b.agent(name, [
    "tool: exec",
    "file_read: /workspace/public/**",
    "file_write: /workspace/out/**",
    "exec: python3 *",
    "exec: ps *",
  ]);
  const sandbox = (await b.rt.backend.acquire(a.goalId)) as DockerSandbox;
  await sandbox.ready();
  const ws = join(b.home.config.goalsDir, a.goalId, "workspace");
  const { uid, gid } = statSync(ws);
  for (const d of ["public", "out"]) {
    mkdirSync(join(ws, d));
    chownSync(join(ws, d), uid, gid);
  }
  return { id: a.id, ws, sandbox };
}

/** The heartbeat a leftover would keep writing: unchanged over a second means nothing runs. */
async function expectNoHeartbeat(ws: string): Promise<void> {
  const beat = () =>
    existsSync(join(ws, "out", "beat")) ? readFileSync(join(ws, "out", "beat"), "utf8") : "";
  const first = beat();
  await sleep(1000);
  expect(beat()).toBe(first);
}

// clone(CLONE_PARENT | SIGCHLD) through libc's syscall(): x86_64 number 56.
const CLONE_PARENT_SETSID = [
  "import ctypes,os,time",
  "libc=ctypes.CDLL(None, use_errno=True)",
  "if libc.syscall(56, 0x8000|17, 0, 0, 0, 0) == 0:",
  "    os.setsid()",
  "    n=0",
  "    while True:",
  "        n+=1; open('/workspace/out/beat','w').write(str(n)+' '+str(os.getppid())); time.sleep(0.1)",
];

/** The command itself ends once its clone has beaten (however busy the machine is). */
const WAIT_FOR_BEAT = "while not os.path.exists('/workspace/out/beat'): time.sleep(0.01)";

describe("a command that makes itself a sibling and leaves its session", () => {
  it("is gone when its call returns", async () => {
    const a = await lingerer("lingerer");
    const r = expectOk(
      await b.call(a.id, "exec", {
        command: py([...CLONE_PARENT_SETSID, WAIT_FOR_BEAT]),
        cwd: "/workspace/public",
      }),
    );
    expect(r.isError, r.output).toBe(false);
    // It did run (it wrote a beat) and it stopped with the call.
    expect(readFileSync(join(a.ws, "out", "beat"), "utf8")).toMatch(/^\d+ \d+$/);
    await expectNoHeartbeat(a.ws);
    const ps = expectOk(await b.call(a.id, "exec", { command: "ps -eo args", cwd: "/workspace/public" }));
    expect(ps.output).not.toContain("python3");
  });

  it("is gone when its call times out", async () => {
    const a = await lingerer("lingerer-timeout");
    const r = expectOk(
      await b.call(a.id, "exec", {
        command: py([...CLONE_PARENT_SETSID, "time.sleep(100)"]),
        cwd: "/workspace/public",
        timeout_ms: 1500,
      }),
    );
    expect(r.output).toMatch(/^timed out after 1500 ms/);
    await expectNoHeartbeat(a.ws);
  });
});

describe("a command that forks and exits in a loop, a new session each time", () => {
  it("leaves no process behind", async () => {
    const a = await lingerer("hopper");
    const r = expectOk(
      await b.call(a.id, "exec", {
        command: py([
          "import os,time",
          "def hop(n):",
          "    while True:",
          "        if os.fork(): os._exit(0)",
          "        os.setsid(); n+=1",
          "        if n % 50 == 0: open('/workspace/out/beat','w').write(str(n))",
          "if os.fork() == 0: hop(0)",
          "time.sleep(0.5)",
        ]),
        cwd: "/workspace/public",
      }),
    );
    expect(r.isError, r.output).toBe(false);
    await expectNoHeartbeat(a.ws);
  });
});

describe("two calls of one goal at once", () => {
  it("end each other's processes in neither direction", async () => {
    const a = await lingerer("overlap");
    // A's orphan (its parent exits at once) writes only once B has ended (the test then
    // drops out/go from the host); A itself waits for that write.
    const first = b.call(a.id, "exec", {
      command: py([
        "import os,time",
        "wait=lambda p: [time.sleep(0.02) for _ in range(1000) if not os.path.exists(p)]",
        "if os.fork() == 0:",
        "    if os.fork() == 0:",
        "        os.setsid(); open('/workspace/out/ready','w').close(); wait('/workspace/out/go')",
        "        open('/workspace/out/late','w').write('still here')",
        "    os._exit(0)",
        "wait('/workspace/out/late')",
      ]),
      cwd: "/workspace/public",
    });
    for (let i = 0; i < 500 && !existsSync(join(a.ws, "out", "ready")); i++) await sleep(20);
    expectOk(await b.call(a.id, "exec", { command: "python3 -c 'print(1)'", cwd: "/workspace/public" }));
    writeFileSync(join(a.ws, "out", "go"), "");
    expect(expectOk(await first).isError).toBe(false);
    expect(readFileSync(join(a.ws, "out", "late"), "utf8")).toBe("still here");
  });
});
