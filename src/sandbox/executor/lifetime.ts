// sandbox/executor/lifetime.ts — how the processes of an exec call end. A call is one
// unit: nothing it started may outlive it.
//
// With a reaper (Landlock ABI >= 6: `aido-landlock --reap`, see sandbox-image/
// aido-landlock.c) the helper stays as the call's root, a child subreaper in the call's own
// Landlock domain: every process the command starts stays below it, and when the command
// ends it kills everything left in its domain (kill(-1) reaches that domain only) before it
// exits. The executor ends a call early (timeout, cancel, the host going away) by sending
// the reaper SIGTERM, which makes it do the same; if it has not exited after
// REAPER_GRACE_MS, the call's process group gets SIGKILL.
//
// Without one (ABI < 6, or an image without the helper) the call's process group gets
// SIGKILL, and the orphan sweep below kills processes that left the group (setsid, a double
// fork). The sweep is a fallback there: a process that forks and exits in a loop can slip
// past a scan of /proc, and a process a command clones as the executor's own child
// (CLONE_PARENT) is no orphan at all. With a reaper, orphans go to the reaper, not to init,
// and the sweep only sees what a reaper that died (an OOM kill, the SIGKILL fallback) left.
//
// The sweep never kills what may belong to a call still running: an orphan is killed only
// if it started before every running call did (a call's processes start after it), so a
// running call's `setsid sleep 100 &` is left to that call. What is spared is swept when the
// calls that might own it have ended.

import { readdirSync, readFileSync } from "node:fs";

/** How long the reaper has to end its call before the call's process group is killed. */
const REAPER_GRACE_MS = 1000;
/** Sweep passes after a call: a process forking away between passes is met by the next. */
const SWEEP_PASSES = 8;

export function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

/** Field `index` (1-based, as in proc(5)) of /proc/<pid>/stat; undefined when it is gone. */
function statFields(pid: number): string[] | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ..." — comm may hold spaces and parentheses: cut at the last ")".
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** A process's start time in clock ticks since boot (proc(5) field 22). */
function startTicks(pid: number): number | undefined {
  const f = statFields(pid);
  const v = f === undefined ? Number.NaN : Number(f[19]);
  return Number.isFinite(v) ? v : undefined;
}

interface Call {
  /** The helper's pid: the reaper, and the leader of the call's process group. */
  pid: number;
  reaper: boolean;
  /** When the call's first process started (ticks since boot): nothing of it is older. */
  started: number;
  cancelled: boolean;
  ending?: NodeJS.Timeout;
}

/** Running calls: call id -> its processes, so a timeout, a cancel or the end can stop them. */
export class Running {
  private readonly calls = new Map<number, Call>();

  add(callId: number, pid: number, reaper: boolean): void {
    // The process exists (at worst as a zombie) until the executor reaps it, after this.
    const started = startTicks(pid) ?? 0;
    this.calls.set(callId, { pid, reaper, started, cancelled: false });
  }

  remove(callId: number): void {
    const c = this.calls.get(callId);
    if (c?.ending) clearTimeout(c.ending);
    this.calls.delete(callId);
  }

  /** End call `callId` early (see the header); false when no such call runs. */
  stop(callId: number, why: "timeout" | "cancel" | "shutdown"): boolean {
    const c = this.calls.get(callId);
    if (!c) return false;
    if (why === "cancel") c.cancelled = true;
    if (!c.reaper) {
      killGroup(c.pid, "SIGKILL");
      return true;
    }
    try {
      process.kill(c.pid, "SIGTERM");
    } catch {
      // exited already
    }
    c.ending ??= setTimeout(() => killGroup(c.pid, "SIGKILL"), REAPER_GRACE_MS);
    c.ending.unref();
    return true;
  }

  cancelled(callId: number): boolean {
    return this.calls.get(callId)?.cancelled ?? false;
  }

  get size(): number {
    return this.calls.size;
  }

  /** The start of the oldest running call; Infinity when none runs. */
  horizon(): number {
    let h = Number.POSITIVE_INFINITY;
    for (const c of this.calls.values()) h = Math.min(h, c.started);
    return h;
  }

  /**
   * The host is going away: end every call, wait for them (at most the grace and a little),
   * then kill the groups of any that did not end.
   */
  async stopAll(): Promise<void> {
    const ids = [...this.calls.keys()];
    for (const id of ids) this.stop(id, "shutdown");
    const deadline = Date.now() + REAPER_GRACE_MS + 200;
    while (this.calls.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.calls.values()) killGroup(c.pid, "SIGKILL");
  }
}

/**
 * Kill what finished calls left behind by leaving their process group: a process
 * reparented to init (ppid 1) that is not the container's main process (session 1) and
 * started before every running call (see the header). Repeated while a pass finds some.
 */
export function sweepOrphans(running: Running, self: number = process.pid): void {
  for (let pass = 0; pass < SWEEP_PASSES; pass++) {
    const horizon = running.horizon();
    let names: string[];
    try {
      names = readdirSync("/proc");
    } catch {
      return;
    }
    let killed = 0;
    for (const name of names) {
      if (!/^\d+$/.test(name)) continue;
      const pid = Number(name);
      if (pid === 1 || pid === self) continue;
      const f = statFields(pid);
      if (!f) continue;
      // After "comm)": state ppid pgrp session ... starttime (the 20th from here).
      const [ppid, pgrp, session, started] = [Number(f[1]), Number(f[2]), Number(f[3]), Number(f[19])];
      if (ppid !== 1 || session === 1 || !(started < horizon)) continue;
      killGroup(pgrp, "SIGKILL");
      try {
        process.kill(pid, "SIGKILL");
        killed++;
      } catch {
        // already gone
      }
    }
    if (killed === 0) return;
  }
}
