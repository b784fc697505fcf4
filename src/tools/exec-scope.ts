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

import { errorMessage } from "../errors.js";
import type { SandboxHandle } from "../sandbox/types.js";
import type { SimpleCommand } from "../security/shell.js";

/** Resolutions one call's scope may need; past this, a standing answer is not reused. */
export const MAX_SCOPE_PATHS = 256;

/** A word of a command and the canonical directories it may be opened from (null: unknown). */
export interface ScopeWord {
  text: string;
  dirs: readonly string[] | null;
}

/** What the words resolve to: `joined path\0canonical path` pairs, sorted; or why they cannot all be. */
export type ScopeFiles = { resolved: string[] } | { unresolved: string };

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
): Promise<ScopeFiles> {
  const joined = new Set<string>();
  for (const w of words) {
    if (w.text.startsWith("/")) joined.add(w.text);
    else if (w.dirs === null) {
      return {
        unresolved: `the word "${w.text}" is opened from a folder known only at run time`,
      };
    } else for (const d of w.dirs) joined.add(`${d}/${w.text}`);
    if (joined.size > MAX_SCOPE_PATHS) {
      return { unresolved: `it names more than ${MAX_SCOPE_PATHS} words that could be files` };
    }
  }
  const paths = [...joined];
  const settled = await Promise.allSettled(paths.map((p) => sandbox.realpath(p)));
  const resolved: string[] = [];
  for (const [i, r] of settled.entries()) {
    if (r.status === "rejected") {
      return { unresolved: `"${paths[i]}" cannot be resolved (${errorMessage(r.reason)})` };
    }
    resolved.push(`${paths[i]}\u0000${r.value}`);
  }
  return { resolved: resolved.sort() };
}
