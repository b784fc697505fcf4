// sandbox/lazy.ts — a SandboxHandle that acquires the goal's container on first use.
// Many tool calls (memory, skills, spawning) never touch the container; a goal whose
// agents only think should not pay a container start.

import { cancelledError } from "./executor-session.js";
import type { ExecRequest, SandboxHandle } from "./types.js";

/** The goal's acquire under way (or done), shared by the calls that wait for it. */
interface Acquiring {
  promise: Promise<SandboxHandle>;
  settled: boolean;
  /** Calls waiting for it that can still leave (their signal not aborted); Infinity: one cannot. */
  waiting: number;
  /** Handed to the acquire: aborted when every call that waited for it has left. */
  stop: AbortController;
}

/**
 * The first call of a goal frozen by its node's fence waits for the thaw in acquire, which no one
 * call can end (it is every call's waiting on it): each call leaves with its own cancellation as
 * its signal aborts, and the acquire goes on for the calls still waiting. Once none is left (each
 * cancelled: goal.cancel, the agent stopped) the acquire is given up too (its signal, which the
 * backend's wait for the thaw takes), and the next call starts a fresh one. Before, the acquire
 * took no signal: it waited for the thaw for nobody, then made the goal a container nobody
 * asked for any more. A call with no signal keeps the acquire going. Nothing of a call was sent
 * while it waited here: a write given up here did not happen.
 */
export function lazySandbox(
  goalId: string,
  acquire: (signal: AbortSignal) => Promise<SandboxHandle>,
): SandboxHandle {
  let pending: Acquiring | undefined;
  /** The handle the last acquire gave, for the one question asked without waiting for one. */
  let ready: SandboxHandle | undefined;
  const start = (): Acquiring => {
    const stop = new AbortController();
    const a: Acquiring = { promise: undefined as never, settled: false, waiting: 0, stop };
    a.promise = acquire(stop.signal).catch((e) => {
      if (pending === a) pending = undefined; // let the next call try again
      throw e;
    });
    a.promise.then(
      (h) => {
        a.settled = true;
        ready = h;
      },
      () => (a.settled = true),
    );
    return a;
  };
  const get = (op: string, signal: AbortSignal | undefined): Promise<SandboxHandle> => {
    if (signal?.aborted) return Promise.reject(cancelledError(op));
    pending ??= start();
    const a = pending;
    if (a.settled) return a.promise;
    if (!signal) {
      a.waiting = Number.POSITIVE_INFINITY;
      return a.promise;
    }
    a.waiting++;
    return new Promise<SandboxHandle>((resolve, reject) => {
      const onAbort = () => {
        reject(cancelledError(op));
        a.waiting--;
        if (a.waiting > 0 || a.settled) return;
        // The last call waiting for it left: given up, and forgotten at once, so a call that comes
        // now starts its own acquire rather than waiting for this one's cancellation.
        if (pending === a) pending = undefined;
        a.stop.abort(cancelledError("acquire"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      a.promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  };
  return {
    goalId,
    realpath: async (path, opts) => (await get("realpath", opts?.signal)).realpath(path, opts),
    // Not acquired yet: false, as the handle says before its executor has answered.
    confinesWithPrivateTmp: () => ready?.confinesWithPrivateTmp?.() ?? false,
    exec: async (req: ExecRequest) => (await get("exec", req.signal)).exec(req),
    readFile: async (path, opts) => (await get("readFile", opts?.signal)).readFile(path, opts),
    writeFile: async (path, content, opts) =>
      (await get("writeFile", opts?.signal)).writeFile(path, content, opts),
    editFile: async (path, a, b, all, opts) =>
      (await get("editFile", opts?.signal)).editFile(path, a, b, all, opts),
    list: async (path, opts) => (await get("list", opts?.signal)).list(path, opts),
    stat: async (path, opts) => (await get("stat", opts?.signal)).stat(path, opts),
    grep: async (pattern, path, glob, max, opts) =>
      (await get("grep", opts?.signal)).grep(pattern, path, glob, max, opts),
  };
}
