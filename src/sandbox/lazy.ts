// sandbox/lazy.ts — a SandboxHandle that acquires the goal's container on first use.
// Many tool calls (memory, skills, spawning) never touch the container; a goal whose
// agents only think should not pay a container start.

import { cancelledError } from "./executor-session.js";
import type { ExecRequest, SandboxHandle } from "./types.js";

/**
 * `acquiring`, or the call's cancellation as `signal` aborts first. The first call of a goal
 * frozen by its node's fence waits for the thaw in acquire, which no one call can end (it is
 * every call's): before, an exec cancelled meanwhile (goal.cancel, the agent stopped) stayed
 * pending until the thaw or the goal's removal. The acquire goes on for the calls after it.
 */
function orCancelled(
  acquiring: Promise<SandboxHandle>,
  signal: AbortSignal | undefined,
): Promise<SandboxHandle> {
  if (!signal) return acquiring;
  if (signal.aborted) return Promise.reject(cancelledError("exec"));
  return new Promise<SandboxHandle>((resolve, reject) => {
    const onAbort = () => reject(cancelledError("exec"));
    signal.addEventListener("abort", onAbort, { once: true });
    acquiring.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

export function lazySandbox(goalId: string, acquire: () => Promise<SandboxHandle>): SandboxHandle {
  let pending: Promise<SandboxHandle> | undefined;
  const get = (): Promise<SandboxHandle> => {
    pending ??= acquire().catch((e) => {
      pending = undefined; // let the next call try again
      throw e;
    });
    return pending;
  };
  return {
    goalId,
    realpath: async (path, opts) => (await get()).realpath(path, opts),
    exec: async (req: ExecRequest) => (await orCancelled(get(), req.signal)).exec(req),
    readFile: async (path, opts) => (await get()).readFile(path, opts),
    writeFile: async (path, content, opts) => (await get()).writeFile(path, content, opts),
    editFile: async (path, a, b, all, opts) => (await get()).editFile(path, a, b, all, opts),
    list: async (path, opts) => (await get()).list(path, opts),
    stat: async (path, opts) => (await get()).stat(path, opts),
    grep: async (pattern, path, glob, max, opts) => (await get()).grep(pattern, path, glob, max, opts),
  };
}
