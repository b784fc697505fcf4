// tools/exec-removals.ts — which words of an exec command name an entry it takes out of its
// folder (rm, rmdir, unlink, find -delete, mv's sources: security/shell-operands.ts
// removedOperands), for exec-paths.ts to judge as removals: the caller's private folder itself
// needs a grant (exec-resolver.ts). Here: what a command find runs removes of what find found,
// and the run-time words that name the shell's folder ($PWD) or the one before it ($OLDPWD).

import { AidoError, ErrorCode } from "../errors.js";
import type { CommandAnalysis } from "../security/shell.js";
import { removedOperands } from "../security/shell-operands.js";
import { type KnownVars, knownPart } from "./exec-known.js";

/** The shell's folder: `$PWD`, `${PWD}`, `$(pwd)`, `` `pwd -P` ``. */
const CWD = String.raw`\$PWD|\$\{PWD\}|\$\(pwd(?: -[LP])?\)|` + "`pwd(?: -[LP])?`";
/** A word (its double quotes taken out) that is the shell's folder, then a fixed rest. */
const CWD_LEAD = new RegExp(`^(?:${CWD})(/[^$\`*?[\\]~\\\\'"]*)?$`);
/** A word that starts with the folder the shell was in before its last cd. */
const OLDPWD_LEAD = /^"?(?:\$OLDPWD|\$\{OLDPWD\})(?![A-Za-z0-9_])/;

/**
 * The path, from the folder the shell is in, that a run-time word names when it is that folder
 * with a fixed rest: `"$PWD"` is `.`, `"$PWD/"` `./`, `"$PWD"/..` `./..`, `$(pwd)/x` `./x`
 * (dash's $PWD is the path cd went to; a program resolves `..` after it physically, as from the
 * real folder). Undefined for any other word.
 */
export function cwdPath(written: string): string | undefined {
  if (/['\\]/.test(written)) return undefined;
  const m = CWD_LEAD.exec(written.replaceAll('"', ""));
  return m ? `.${m[1] ?? ""}` : undefined;
}

/** Refuse a removed word that starts with $OLDPWD: the folder before the last cd, which the judge does not follow. */
export function refuseOldPwd(written: string, via: string): void {
  if (!OLDPWD_LEAD.test(written)) return;
  throw new AidoError(
    ErrorCode.policyDenied,
    `cannot judge what ${via} removes ("${written}"): $OLDPWD is the folder the shell was in before its last cd, known only at run time; give the path`,
    { rule: "unjudgeable" },
  );
}

/**
 * Whether a command that find (at `index`) runs removes a word known only at run time that is not
 * a known path whole (`-exec sh -c 'rm -rf "$1"' sh {} \;`, `-exec mv {} D \;`): that word is
 * what find found, its starting points among it, so find is judged as deleting them
 * (findDeletes `runsRemoval`). The commands it runs carry "find" among their wrappers, in its
 * group or in code nested in it (a shell's -c code: a group whose parent chain leads to find's).
 */
export function runsRuntimeRemoval(analysis: CommandAnalysis, index: number, vars: KnownVars): boolean {
  const cmds = analysis.commands;
  const group = cmds[index]!.group;
  const parentOf = new Map(cmds.map((c) => [c.group, c.parentGroup]));
  const inFind = (g: number | undefined): boolean => {
    const seen = new Set<number>();
    for (; g !== undefined && !seen.has(g); g = parentOf.get(g)) {
      if (g === group) return true;
      seen.add(g);
    }
    return false;
  };
  return cmds.some(
    (c, j) =>
      j !== index &&
      c.wrappers.includes("find") &&
      inFind(c.group) &&
      removedOperands(c).some((k) => c.argDynamic[k] && knownPart(c.argv[k]!, vars)?.whole !== true),
  );
}
