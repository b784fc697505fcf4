// sandbox/lazy.ts — a SandboxHandle that acquires the goal's container on first use.
// Many tool calls (memory, skills, spawning) never touch the container; a goal whose
// agents only think should not pay a container start.

import type { ExecRequest, SandboxHandle } from "./types.js";

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
    realpath: async (path) => (await get()).realpath(path),
    exec: async (req: ExecRequest) => (await get()).exec(req),
    readFile: async (path, opts) => (await get()).readFile(path, opts),
    writeFile: async (path, content, opts) => (await get()).writeFile(path, content, opts),
    editFile: async (path, a, b, all, opts) => (await get()).editFile(path, a, b, all, opts),
    list: async (path, opts) => (await get()).list(path, opts),
    stat: async (path, opts) => (await get()).stat(path, opts),
    grep: async (pattern, path, glob, max, opts) => (await get()).grep(pattern, path, glob, max, opts),
  };
}
