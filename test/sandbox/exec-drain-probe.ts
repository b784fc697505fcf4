// test/sandbox/exec-drain-probe.ts — run inside a goal's container (bundled by
// exec-drain.test.ts, started through the sandbox's own exec): the executor's opExec, with
// its event loop held up the way a loaded executor's is, at the one moment that matters.
//
// The output of a command is written before it exits, but the executor may learn of the
// exit before it has read that output: libuv reaps every child on any SIGCHLD, and a
// SIGCHLD of another call can be handled in a loop iteration whose poll did not yet see
// this call's pipe as readable. If the loop then stalls for longer than the pipe grace (a
// loaded machine, 29 other calls' exit handlers), the grace timer runs before the next
// poll. Here a SIGUSR2 handler stands for the stall: it runs in the same signal dispatch
// just before a SIGCHLD the probe sends itself, busy until the command has exited (so the
// SIGCHLD after it reaps the command with its output still unread in the pipe), and queues
// a second stall for after the exit handler. Prints one JSON line: each round's stdout.

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { type ExecEnvironment, HELPER, opExec } from "../../src/sandbox/executor/exec.js";
import { Running } from "../../src/sandbox/executor/lifetime.js";

/** Remembers the pid of the call's first process, so the stall can wait for its exit. */
class Watched extends Running {
  pid = 0;
  override add(callId: number, pid: number, reaper: boolean): void {
    this.pid = pid;
    super.add(callId, pid, reaper);
  }
}

function busy(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // the loaded machine
  }
}

/** Busy until `pid` is a zombie (exited, not yet reaped), at most `ms`. */
function busyUntilExited(pid: number, ms: number): boolean {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) return true;
    } catch {
      return false;
    }
  }
  return false;
}

/**
 * A process that left the call's group floods the pipes and never stops: without a reaper
 * (Landlock ABI < 6) nothing kills it when the command ends (here it is the probe's own
 * call's reaper's orphan, not init's, so the sweep spares it too). The call still ends.
 */
async function flood(env: ExecEnvironment): Promise<void> {
  const r = await opExec(
    {
      // The command ends once the flood has left its group (a kill of the group before that
      // would take the flood with it).
      command:
        "rm -f /tmp/flooding; echo started; setsid sh -c ': > /tmp/flooding; exec yes' & " +
        "while [ ! -e /tmp/flooding ]; do sleep 0.01; done",
      confinement: "unconfined",
      cwd: "/workspace",
      maxOutputBytes: 10_000,
    },
    0,
    { ...env, reaper: false },
    new Running(),
  );
  const { durationMs, truncated } = r;
  process.stdout.write(`${JSON.stringify({ durationMs, truncated, head: r.stdout.slice(0, 8) })}\n`);
  // The probe's exit ends its own call, whose reaper kills the flood.
  process.exit(0);
}

async function main(): Promise<void> {
  const abi = Number(spawnSync(HELPER, ["--abi"], { encoding: "utf8" }).stdout.trim());
  const env: ExecEnvironment = {
    helper: true,
    landlockAbi: abi,
    reaper: abi >= 6,
    systemRules: [],
    mountedSkills: [],
  };
  if (process.argv[2] === "flood") return flood(env);
  const rounds = Number(process.argv[2] ?? "5");
  const running = new Watched();
  const stdouts: string[] = [];
  let exitedUnread = 0;
  for (let i = 0; i < rounds; i++) {
    const onStall = () => {
      if (busyUntilExited(running.pid, 20_000)) exitedUnread++;
      setImmediate(() => busy(600));
    };
    process.once("SIGUSR2", onStall);
    const call = opExec(
      { command: "sleep 0.2; echo judged-text", confinement: "unconfined", cwd: "/workspace" },
      i,
      env,
      running,
    );
    process.kill(process.pid, "SIGUSR2");
    process.kill(process.pid, "SIGCHLD");
    const r = await call;
    stdouts.push(r.stdout);
  }
  process.stdout.write(`${JSON.stringify({ abi, exitedUnread, stdouts })}\n`);
}

void main();
