// tools/exec-scope.ts — the files behind the words of an exec, for the scope of a human's
// standing answer (Allow Session / Allow Always). The gate judges only the words that look
// like paths, but a program opens whatever its arguments name: `cp data.csv backup.csv`
// names two files as bare words. A standing answer on those words must not carry over to a
// later call where `backup.csv` has become a link to /output/report.md; file tools scope by
// the resolved path for the same reason ("a link with an innocent name to another file is
// that other file").
//
// So the scope of an exec call includes the canonical path (resolved in the container, from
// each directory the command may start in, as exec-paths.ts resolves paths) of every static
// word that could name a file: every non-option argument, the value of `--opt=VALUE` and of
// `NAME=VALUE`, and each tail of a short-option cluster (`-oFILE`, `-xvfARCHIVE`), which is
// where an attached value would start. Run-time words (globs, expansions) are covered by the
// part known before they run (exec-paths.ts judges it) and by the Landlock domain.
//
// Collecting the words is free (the start directories were resolved for the call's needs
// anyway); resolving them costs a round trip, so it is done only for calls that reach the
// approval stage, all at once (the executor session pipelines the requests on one stream).
// More than MAX_SCOPE_PATHS resolutions, a relative word in a directory known only at run
// time, or a word that cannot be resolved make the call's scope one no standing answer
// covers: the human is asked every time.
//
// A path is not what runs, though. A word an interpreter is handed (`python3 fix.py`, every
// file word of python3, node, perl... : which of them is its program depends on its options)
// and a program run by path (`./fix.py`, `/workspace/tool`) are code: the scope also holds
// the SHA-256 of each such file's bytes, read through the sandbox like any file the agent
// reads (only when it may read it, anchored at the canonical path). Allow Session on
// `python3 fix.py` then covers fix.py as the human saw it: once the model rewrites it (a
// file_write needs no approval), the same command is another scope and a human is asked.
// Shell scripts need none of this: their judged text is written into the command that runs
// (exec-scripts.ts). A code file that cannot be pinned — larger than CODE_MAX_BYTES, not
// UTF-8 (the read gives text, and two byte strings may decode alike), not readable by the
// agent, neither a regular file, a folder nor absent — makes the scope one no standing answer
// covers. What the code loads on its own (imports, a folder's __main__.py) is not covered.
// The text read for the digest is also what the human is shown before answering
// (security/approval-shown.ts): the approval names the code, and shows it.

import { createHash } from "node:crypto";
import { errorMessage } from "../errors.js";
import type { NeedsContext } from "../gate/types.js";
import type { SandboxHandle } from "../sandbox/types.js";
import type { CodeFile } from "../security/approval-scope.js";
import { isSystemPath } from "../security/policy-rules.js";
import type { SimpleCommand } from "../security/shell.js";

/** Resolutions one call's scope may need; past this, a standing answer is not reused. */
export const MAX_SCOPE_PATHS = 256;
/** A code file larger than this is not digested: no standing answer covers the call. */
export const CODE_MAX_BYTES = 1024 * 1024;

/** A word of a command and the canonical directories it may be opened from (null: unknown). */
export interface ScopeWord {
  text: string;
  dirs: readonly string[] | null;
  /** The file it names is run as code (an interpreter's operand, a program run by path). */
  runs?: true;
  /** Why the code the command runs cannot be pinned (exec-paths.ts unpinnedCode): no standing answer covers it. */
  unpinned?: string;
}

/**
 * What the words resolve to: `joined path\0canonical path` pairs, sorted, and the content of
 * the files run as code (when there are any); or why they cannot all be pinned down.
 */
export type ScopeFiles = { resolved: string[]; code?: CodeFile[] } | { unresolved: string };

/** The static words of `c` that could name a file (see the header), deduplicated. */
export function fileWords(c: SimpleCommand): string[] {
  const out = new Set<string>();
  const add = (w: string) => {
    if (w !== "" && w !== "-") out.add(w);
  };
  let options = true;
  for (let k = 1; k < c.argv.length; k++) {
    if (c.argDynamic[k]) continue;
    const w = c.argv[k]!;
    if (options && w === "--") {
      options = false;
      continue;
    }
    if (!options || !w.startsWith("-") || w === "-") {
      add(w);
      const eq = w.indexOf("=");
      if (eq > 0) add(w.slice(eq + 1));
    } else if (w.startsWith("--")) {
      const eq = w.indexOf("=");
      if (eq > 0) add(w.slice(eq + 1));
    } else {
      for (let i = 2; i < w.length; i++) add(w.slice(i));
    }
  }
  for (const a of c.assigns) {
    const eq = a.indexOf("=");
    if (eq > 0) add(a.slice(eq + 1));
  }
  return [...out];
}

/**
 * Resolve every word from each of its directories in the container, in one batch. Sorted
 * pairs, so two calls whose words lead to the same files have equal lists.
 */
export async function resolveScopeWords(
  sandbox: SandboxHandle,
  words: readonly ScopeWord[],
  readRefusal: NeedsContext["readRefusal"],
): Promise<ScopeFiles> {
  const joined = new Set<string>();
  const runs = new Set<string>();
  const loose = words.find((w) => w.unpinned !== undefined);
  if (loose?.unpinned !== undefined) return { unresolved: loose.unpinned };
  for (const w of words) {
    const paths = w.text.startsWith("/")
      ? [w.text]
      : w.dirs === null
        ? null
        : w.dirs.map((d) => `${d}/${w.text}`);
    if (paths === null) {
      return {
        unresolved: `the word "${w.text}" is opened from a folder known only at run time`,
      };
    }
    for (const p of paths) {
      joined.add(p);
      if (w.runs) runs.add(p);
    }
    if (joined.size > MAX_SCOPE_PATHS) {
      return { unresolved: `it names more than ${MAX_SCOPE_PATHS} words that could be files` };
    }
  }
  const paths = [...joined];
  const settled = await Promise.allSettled(paths.map((p) => sandbox.realpath(p)));
  const resolved: string[] = [];
  const code = new Set<string>();
  for (const [i, r] of settled.entries()) {
    if (r.status === "rejected") {
      return { unresolved: `"${paths[i]}" cannot be resolved (${errorMessage(r.reason)})` };
    }
    resolved.push(`${paths[i]}\u0000${r.value}`);
    // A program of the system's folders is not something the agent can rewrite.
    if (runs.has(paths[i]!) && !isSystemPath(r.value)) code.add(r.value);
  }
  if (code.size === 0) return { resolved: resolved.sort() };
  const digests = await Promise.all([...code].map((p) => codeFile(sandbox, p, readRefusal)));
  const refused = digests.find((d) => typeof d === "string");
  if (typeof refused === "string") return { unresolved: refused };
  return { resolved: resolved.sort(), code: digests as CodeFile[] };
}

/** The content of the code file at canonical `path` as it is now, or why it cannot be pinned. */
async function codeFile(
  sandbox: SandboxHandle,
  path: string,
  readRefusal: NeedsContext["readRefusal"],
): Promise<CodeFile | string> {
  const why = (reason: string) => `what it runs cannot be pinned: ${path} ${reason}`;
  try {
    const st = await sandbox.stat(path, { expect: path });
    if (st === null || st.type === "dir") return { path, sha256: null };
    if (st.type !== "file") return why(`is a ${st.type}, not a regular file`);
    if (st.size > CODE_MAX_BYTES) return why(`is larger than ${CODE_MAX_BYTES} bytes`);
    // Read on the agent's behalf only when it may read the file itself (as exec-scripts.ts does).
    if (readRefusal(path)) return why("is not readable by the agent");
    const file = await sandbox.readFile(path, { maxBytes: CODE_MAX_BYTES, expect: path });
    // U+FFFD: bytes that are not UTF-8 were replaced, so other bytes would read the same.
    if (file.truncated || file.content.includes("\uFFFD") || Buffer.byteLength(file.content) !== file.size) {
      return why("is not UTF-8 text read whole (a binary, or a file that changed as it was read)");
    }
    const sha256 = createHash("sha256").update(file.content, "utf8").digest("hex");
    return { path, sha256, text: file.content };
  } catch (e) {
    return why(`cannot be read (${errorMessage(e)})`);
  }
}
