// tools/paths.ts — how path tools name what they touch. needs() resolves a path inside the
// container (sandbox.realpath: symlinks followed there, ".." removed) and declares the
// canonical result; run() resolves it again and refuses unless the result is among the
// needs the gate judged, then acts on the canonical path, passing it to the sandbox as
// `expect`: the executor refuses unless the path still resolves to it and acts without
// following any symlink along it. A symlink swapped in between (while an approval waited,
// or by a parallel exec, even mid-operation) is refused instead of followed.

import { z } from "zod";
import { AidoError, ErrorCode } from "../errors.js";
import type { Need, ToolContext } from "../gate/types.js";
import type { SandboxHandle } from "../sandbox/types.js";

export const WORKSPACE = "/workspace";
export const PATH_MAX = 4096;

export const pathSchema = z
  .string()
  .min(1)
  .max(PATH_MAX)
  .refine((p) => !p.includes("\0"), "path must not contain NUL");

/** Relative paths are relative to /workspace. */
export function absolute(path: string): string {
  return path.startsWith("/") ? path : `${WORKSPACE}/${path}`;
}

export async function canonical(sandbox: SandboxHandle, path: string, signal?: AbortSignal): Promise<string> {
  return sandbox.realpath(absolute(path), signal ? { signal } : {});
}

/** In run(): the canonical path again, refused unless a judged need of `kind` names it. */
export async function confirmJudged(
  ctx: ToolContext,
  kinds: readonly ("file_read" | "file_write")[],
  path: string,
): Promise<string> {
  const now = await canonical(ctx.sandbox, path, ctx.signal);
  const judged: readonly Need[] = ctx.judged ?? [];
  for (const kind of kinds) {
    if (!judged.some((n) => n.kind === kind && n.path === now)) {
      throw new AidoError(
        ErrorCode.capabilityDenied,
        `${path} now resolves to ${now}, which was not the path checked for ${kind}; refused`,
        { path, resolved: now, kind },
      );
    }
  }
  return now;
}
