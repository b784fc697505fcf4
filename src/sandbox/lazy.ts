// sandbox/lazy.ts — a SandboxHandle that acquires the goal's container on first use.
// Many tool calls (memory, skills, spawning) never touch the container; a goal whose
// agents only think should not pay a container start.

import { cancelledError } from "./executor-session.js";
import type { ExecRequest, SandboxHandle } from "./types.js";

/**
 * `acquiring`, or the call's cancellation as `signal` aborts first. The first call of a goal
 * frozen by its node's fence waits for the thaw in acquire, which no one call can end (it is
 * every call's): before, an exec cancelled meanwhile (goal.cancel, the agent stopped) stayed
 * pending until the thaw or the goal's removal, and a file call still does. The acquire goes
 * on for the calls after it. Nothing of the call was sent yet: a write given up here did not
 * happen.
 */
function orCancelled(
  acquiring: Promise<SandboxHandle>,
  signal: AbortSignal | undefined,
  op: string,
): Promise<SandboxHandle> {
  if (!signal) return acquiring;
  if (signal.aborted) return Promise.reject(cancelledError(op));
  return new Promise<SandboxHandle>((resolve, reject) => {
    const onAbort = () => reject(cancelledError(op));
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
    realpath: async (path, opts) => (await orCancelled(get(), opts?.signal, "realpath")).realpath(path, opts),
    exec: async (req: ExecRequest) => (await orCancelled(get(), req.signal, "exec")).exec(req),
    readFile: async (path, opts) => (await orCancelled(get(), opts?.signal, "readFile")).readFile(path, opts),
    writeFile: async (path, content, opts) =>
      (await orCancelled(get(), opts?.signal, "writeFile")).writeFile(path, content, opts),
    editFile: async (path, a, b, all, opts) =>
      (await orCancelled(get(), opts?.signal, "editFile")).editFile(path, a, b, all, opts),
    list: async (path, opts) => (await orCancelled(get(), opts?.signal, "list")).list(path, opts),
    stat: async (path, opts) => (await orCancelled(get(), opts?.signal, "stat")).stat(path, opts),
    grep: async (pattern, path, glob, max, opts) =>
      (await orCancelled(get(), opts?.signal, "grep")).grep(pattern, path, glob, max, opts),
  };
}
