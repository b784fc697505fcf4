// OPEN (red team): a command outlives its exec call. The executor ends a call by killing its
// process group and then the processes that left it, found as orphans of init (ppid 1, not
// in session 1). A command that `exec`s into python3 is the executor's direct child; a
// clone(CLONE_PARENT) from there makes a second child *of the executor*, which then leaves
// the session with setsid(). It is no orphan (its parent, the executor, lives on), so neither
// this call's sweep nor the next call's sees it: it keeps running inside the agent's domain
// — writing into the agent's folders after the call ended, unwatched by the quota's poll —
// until the container goes. (A process that forks and exits in a loop, taking a new session
// each time, also slips through the sweep often: scanning /proc cannot catch a moving pid.)
// Not fixed here: the sweep lives in the executor and the exec helper, which are in the image
// (see the report: a reaper in the call's own Landlock domain, kill(-1) scoped to it).

import { chownSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import { type Bench, expectOk, openBench } from "./fixture.js";

let b: Bench;
beforeAll(async () => {
  b = await openBench({}, (c) => {
    c.policy.snapshotBeforeMutation = false;
  });
}, 180_000);
afterAll(async () => {
  await b?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("a command that makes itself a child of the executor", () => {
  it("does not keep running after its call", async () => {
    const a = b.agent("lingerer", [
      "tool: exec",
      "file_read: /workspace/public/**",
      "file_write: /workspace/out/**",
      "exec: python3 *",
    ]);
    const sandbox = (await b.rt.backend.acquire(a.goalId)) as DockerSandbox;
    await sandbox.ready();
    const ws = join(b.home.config.goalsDir, a.goalId, "workspace");
    const { uid, gid } = statSync(ws);
    for (const d of ["public", "out"]) {
      mkdirSync(join(ws, d));
      chownSync(join(ws, d), uid, gid);
    }
    // clone(CLONE_PARENT | SIGCHLD) through libc's syscall(): x86_64 number 56.
    const py = [
      "import ctypes,os,time",
      "libc=ctypes.CDLL(None, use_errno=True)",
      "if libc.syscall(56, 0x8000|17, 0, 0, 0, 0) == 0:",
      "    os.setsid()",
      "    n=0",
      "    while True:",
      "        n+=1; open('/workspace/out/beat','w').write(str(n)+' '+str(os.getppid())); time.sleep(0.1)",
      "time.sleep(0.3)",
    ].join("\n");
    const r = expectOk(
      await b.call(a.id, "exec", { command: `exec python3 -c "${py}"`, cwd: "/workspace/public" }),
    );
    expect(r.isError, r.output).toBe(false);
    // The agent's next call sweeps again.
    expectOk(await b.call(a.id, "exec", { command: "python3 -c 'print(1)'", cwd: "/workspace/public" }));
    await sleep(1000);
    const beat = () => readFileSync(join(ws, "out", "beat"), "utf8");
    const first = beat();
    await sleep(1000);
    // Still beating a second later, as a child of the executor.
    expect(`${beat()} (executor ${sandbox.executorPid})`).toBe(`${first} (executor ${sandbox.executorPid})`);
  });
});
