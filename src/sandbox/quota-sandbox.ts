// sandbox/quota-sandbox.ts — every write a tool makes to the host, held to the goal's
// quota (sandbox.workspace_max_mb, measured by quota.ts). It wraps the goal's
// SandboxHandle, so no tool can write around it:
//   - file_write / file_edit under /workspace or /output: refused (quota_exceeded) when
//     the growth they can cause would pass the cap; nothing is written then;
//   - exec: runs with maxFileBytes = the room left less the filesystem's own blocks for a
//     file that size (fileRoom; RLIMIT_FSIZE in the container: no single file can outgrow
//     the room; 0 when the goal is at or over the cap, so files can still be deleted),
//     while the goal is measured every POLL_MS; a measure past the cap (and past where
//     the goal stood when the command started) cancels it through `signal`. Between two
//     measures a command may write past the cap: at most what it writes in one interval,
//     each file below the room it started with.
// Reads go straight through.

import { AidoError, ErrorCode } from "../errors.js";
import { isWithin } from "../fs/within.js";
import {
  chargeOf,
  fileRoom,
  formatMib,
  MIN_ENTRY_BYTES,
  type QuotaUsage,
  type WorkspaceQuota,
} from "./quota.js";
import type { ExecRequest, ExecResult, FileOpOptions, SandboxHandle } from "./types.js";

/** The container folders that are the goal's host folders. */
const COUNTED = ["/workspace", "/output"];

const counted = (path: string) => COUNTED.some((root) => isWithin(root, path));

export function quotaSandbox(inner: SandboxHandle, quota: WorkspaceQuota): SandboxHandle {
  const goalId = inner.goalId;

  /** The size of the regular file at `path` now (0 if absent or not a file). */
  /**
   * `signal`: the call's cancel. The look is made before the write is sent, so a call cancelled
   * while it waits (its goal frozen by its node's fence) ends at once, nothing written; before, it
   * waited for the thaw and only the write then saw the cancel.
   */
  const sizeNow = async (path: string, opts: FileOpOptions | undefined): Promise<number | undefined> => {
    const st = await inner.stat(path, {
      ...(opts?.expect ? { expect: opts.expect } : {}),
      ...(opts?.signal ? { signal: opts.signal } : {}),
    });
    return st?.type === "file" ? st.size : st ? 0 : undefined;
  };

  return {
    goalId,
    realpath: (path, opts) => inner.realpath(path, opts),
    ...(inner.confinesWithPrivateTmp
      ? { confinesWithPrivateTmp: () => inner.confinesWithPrivateTmp!() }
      : {}),
    readFile: (path, opts) => inner.readFile(path, opts),
    list: (path, opts) => inner.list(path, opts),
    stat: (path, opts) => inner.stat(path, opts),
    grep: (pattern, path, glob, max, opts) => inner.grep(pattern, path, glob, max, opts),

    async writeFile(path, content, opts) {
      if (counted(path)) {
        const before = await sizeNow(path, opts);
        const growth = chargeOf(Buffer.byteLength(content)) - (before === undefined ? 0 : chargeOf(before));
        await quota.admit(goalId, growth, `file_write of ${path}`);
      }
      return inner.writeFile(path, content, opts);
    },

    async editFile(path, oldString, newString, replaceAll, opts) {
      const delta = Buffer.byteLength(newString) - Buffer.byteLength(oldString);
      if (counted(path) && delta > 0) {
        // The most the edit can grow the file: every occurrence replaced.
        const size = (await sizeNow(path, opts)) ?? 0;
        const times = replaceAll ? Math.floor(size / Math.max(1, Buffer.byteLength(oldString))) : 1;
        await quota.admit(goalId, chargeOf(size + delta * times) - chargeOf(size), `file_edit of ${path}`);
      }
      return inner.editFile(path, oldString, newString, replaceAll, opts);
    },

    async exec(req: ExecRequest): Promise<ExecResult> {
      const start = await quota.usage(goalId);
      const room = fileRoom(Math.max(0, quota.maxBytes - start.bytes));
      const cancel = new AbortController();
      const outer = req.signal;
      const relay = () => cancel.abort(outer?.reason);
      if (outer?.aborted) relay();
      else outer?.addEventListener("abort", relay, { once: true });
      let overAt: QuotaUsage | undefined;
      const stopWatching = quota.watch(goalId, (u) => {
        if (overAt || u.bytes <= quota.maxBytes || u.bytes <= start.bytes) return;
        overAt = u;
        cancel.abort(quota.stopped(goalId, u));
      });
      try {
        const r = await inner.exec({
          ...req,
          maxFileBytes: Math.min(room, req.maxFileBytes ?? room),
          signal: cancel.signal,
        });
        stopWatching();
        if (overAt) throw quota.stopped(goalId, overAt);
        quota.forget(goalId);
        return (await reachedRoom(r, quota, goalId)) ? withRoomNote(r, quota) : r;
      } catch (e) {
        if (overAt && !(e instanceof AidoError && e.code === ErrorCode.quotaExceeded))
          throw quota.stopped(goalId, overAt);
        throw e;
      } finally {
        stopWatching();
        outer?.removeEventListener("abort", relay);
        quota.forget(goalId);
      }
    },
  };
}

/**
 * The command failed against the cap: a file hit RLIMIT_FSIZE (SIGXFSZ, which a shell
 * reports as exit 153, or EFBIG: "File too large"), or it failed and the goal has less
 * than a block of room left. A failed command costs one measure; a successful one none.
 */
async function reachedRoom(r: ExecResult, quota: WorkspaceQuota, goalId: string): Promise<boolean> {
  if (r.exitCode === 0 && r.signal === null) return false;
  if (r.signal === "SIGXFSZ" || r.exitCode === 128 + 25 || /File too large/.test(r.stderr)) return true;
  return (await quota.room(goalId)) < MIN_ENTRY_BYTES;
}

function withRoomNote(r: ExecResult, quota: WorkspaceQuota): ExecResult {
  const note = `\n[aido: a file reached the room this goal had left under sandbox.workspace_max_mb (${formatMib(quota.maxBytes)} in all); delete files to make room]\n`;
  return { ...r, stderr: r.stderr + note };
}
