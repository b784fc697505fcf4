// tools/exec-known.ts — what a run-time word of an exec command (`~/x`, `$HOME/x`,
// `/workspace/secret/*`) is known to name before it runs, for exec-paths.ts to judge: the
// values of HOME and TMPDIR the exec will have (the caller's private folder when it runs
// confined with it, what a command sets for a script it runs), and the fixed folder in front
// of the first expansion or glob.

import { CLEARED_ENVIRONMENT } from "../security/policy-variables.js";

/**
 * $HOME in every goal container (sandbox/container-spec.ts), which `~` stands for unless a
 * command sets HOME, or its exec runs confined with the caller's private folder.
 */
export const CONTAINER_HOME = "/tmp";

/**
 * HOME and TMPDIR as the code judged starts with them: a value; null when unset (a program's
 * $TMPDIR default is then /tmp, and dash leaves a `~` as written); undefined when not known
 * (a command set it from a run-time value, or around the script in a way not followed).
 */
export interface StartVars {
  home: string | null | undefined;
  tmpdir: string | null | undefined;
  /** IFS is set where it starts: a sourced script runs in the shell of the code that set it. */
  splits?: boolean;
}

/**
 * What an exec command starts with: HOME and TMPDIR in the caller's private folder when it runs
 * confined with it (sandbox/executor/exec.ts), else the container's HOME (/tmp) and no TMPDIR.
 */
export function execStartVars(privateTmp: string | undefined): StartVars {
  return privateTmp === undefined
    ? { home: CONTAINER_HOME, tmpdir: null }
    : { home: privateTmp, tmpdir: privateTmp };
}

/**
 * A value an assignment gives that the text shows whole: no expansion, quote, glob or tilde,
 * nor a blank (an unquoted `$HOME/x` with HOME="/a /w" is the words /a and /w/x).
 */
const STATIC_VALUE = /^[^$`\\'"*?[\]~\s]*$/;

/**
 * What a script starts with when a command (`siteAssigns`: its `NAME=value` settings) runs it
 * (`sh s.sh`, or `. s.sh`: `sourced`) from code that started with `parent` and assigns
 * `assignedNames` (CommandAnalysis.assignedNames, with what scripts it sources assign): the
 * value the command's own `HOME=D` gives when the text shows it whole and nothing else in the
 * code sets, exports or unsets it; not known when something does, or when the code clears the
 * environment (`env -i`: which command it clears is not followed); else what it started with. IFS set by the code splits a
 * sourced script's words too; dash resets it for a script it runs (seen in the image).
 */
export function scriptStartVars(
  parent: StartVars,
  assignedNames: readonly string[],
  siteAssigns: readonly string[],
  sourced: boolean,
): StartVars {
  const one = (name: "HOME" | "TMPDIR", inherited: string | null | undefined): string | null | undefined => {
    // A cleared environment, or the name assigned or unset anywhere but by these settings
    // (`HOME=/a env -u HOME sh s.sh`: the script has no HOME): not known.
    if (assignedNames.includes(CLEARED_ENVIRONMENT)) return undefined;
    const sets = siteAssigns.filter((a) => a.startsWith(`${name}=`));
    if (assignedNames.filter((n) => n === name).length > sets.length) return undefined;
    const set = sets.at(-1);
    if (set !== undefined) {
      const value = set.slice(name.length + 1);
      // An empty TMPDIR is not one place: mktemp then uses /tmp, tempfile `/` (seen in the image).
      if (name === "TMPDIR" && value === "") return undefined;
      // One that starts with `-` makes `~` an option of the program handed it (`cp F ~` with
      // HOME=--target-directory=D copies into D; `cd ~` with HOME=- is `cd -`): not a path.
      return STATIC_VALUE.test(value) && !value.startsWith("-") ? value : undefined;
    }
    return inherited;
  };
  const vars: StartVars = { home: one("HOME", parent.home), tmpdir: one("TMPDIR", parent.tmpdir) };
  return sourced && (parent.splits || assignedNames.includes("IFS")) ? { ...vars, splits: true } : vars;
}

/**
 * What the words of code that started with `start` and assigns `assignedNames` see: `~`/$HOME
 * and $TMPDIR where known (set or unset anywhere in it: not known, since which words come after
 * is not followed), and where a program's $TMPDIR default (mktemp, tempfile) lands: /tmp
 * when it is unset or the environment is cleared (`env -i mktemp`: no TMPDIR), undefined when
 * not known.
 */
export function knownVars(start: StartVars, assignedNames: readonly string[]): KnownVars {
  const cleared = assignedNames.includes(CLEARED_ENVIRONMENT);
  const sets = (name: string) => cleared || assignedNames.includes(name);
  const tmpdirDefault = cleared
    ? "/tmp"
    : sets("TMPDIR") || start.tmpdir === undefined
      ? undefined
      : (start.tmpdir ?? "/tmp");
  return {
    home: sets("HOME") ? undefined : (start.home ?? undefined),
    tmpdir: sets("TMPDIR") ? undefined : (start.tmpdir ?? undefined),
    tmpdirDefault,
    splits: start.splits === true || assignedNames.includes("IFS"),
  };
}

/** What `~`/$HOME and $TMPDIR are known to be before the command runs (undefined: not known). */
export interface KnownVars {
  home: string | undefined;
  tmpdir: string | undefined;
  /**
   * Where a program's $TMPDIR default (mktemp, tempfile) lands: TMPDIR's value, /tmp when it is
   * unset (or the environment cleared); undefined when not known (refused where it matters).
   */
  tmpdirDefault?: string | undefined;
  /**
   * The command sets IFS: an unquoted `$HOME` or `$TMPDIR` is split into fields at run time
   * (`IFS=/` makes `$HOME/f` the words "", "tmp", "agent-<id>/f", paths in the working
   * folder), so it names nothing known. `~` and a quoted one are not split.
   */
  splits?: boolean;
}

/**
 * `$HOME`, `${HOME}`, `"$HOME"`, `"${HOME}"` (or TMPDIR) at the start of a word, before a `/` or
 * its end; braced, with a default too (`${TMPDIR:-/tmp}`, `${HOME-x}`, `:=`, `=`), which is the
 * variable's value when it is set (not empty, for `:`): knownPart.
 */
const LEADING_VAR =
  /^(?:\$(HOME|TMPDIR)|\$\{(HOME|TMPDIR)(?::?[-=][^}$`"'\\]*)?\}|"\$(HOME|TMPDIR)"|"\$\{(HOME|TMPDIR)(?::?[-=][^}$`"'\\]*)?\}")(?=\/|$)/;

/** Text that expands, globs or is quoted: a word with none of it is the path it names. */
export const RUN_TIME_TEXT = /[$`*?[\]\\'"~]/;

/**
 * What a run-time word (as written) is known to name before it runs: `~/x`, `$HOME/x` and
 * `$TMPDIR/x` with what `vars` knows of them (else unknown), or the folder in front of the
 * first expansion or glob (`/workspace/secret/*` lies in /workspace/secret). `whole`: the
 * word is that path exactly.
 */
export function knownPart(written: string, vars: KnownVars): { path: string; whole: boolean } | undefined {
  let text = written;
  const leading = LEADING_VAR.exec(text);
  const variable = leading?.slice(1).find((v) => v !== undefined);
  const tilde = text === "~" || text.startsWith("~/") || variable !== undefined;
  if (tilde) {
    if (vars.splits && (leading?.[1] ?? leading?.[2]) !== undefined) return undefined;
    const value = variable === "TMPDIR" ? vars.tmpdir : vars.home;
    // `${HOME:-D}` is D when HOME is empty: not the value.
    if (value === undefined || (value === "" && leading?.[0].includes(":"))) return undefined;
    text = value + text.slice(leading ? leading[0].length : 1);
  } else if (/^["'][/.]/.test(text)) text = text.slice(1);
  const stop = text.search(RUN_TIME_TEXT);
  // No expansion in the text: it is run-time for a reason the text does not show (find's {}).
  if (stop < 0) return tilde ? { path: text, whole: true } : undefined;
  const fixed = text.slice(0, stop);
  if (!(fixed.startsWith("/") || fixed.startsWith("./") || fixed.startsWith("../"))) return undefined;
  const dir = fixed.slice(0, fixed.lastIndexOf("/") + 1);
  return dir === "/" || dir === "" ? undefined : { path: dir, whole: false };
}

/** A word (its double quotes taken out) that is a variable whole, then a fixed rest: `$d`, `${d}/`, `"$d"/x`. */
const VAR_LEAD =
  /^\$(?:([A-Za-z_][A-Za-z0-9_]*|[0-9@*])|\{([A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*])\})(\/[^$`*?[\]~\\'"]*)?$/;

/** The variable a removed word is whole (and the fixed rest after it); undefined for any other word. */
export function wholeVariable(written: string): { name: string; rest: string } | undefined {
  if (/['\\]/.test(written)) return undefined;
  const m = VAR_LEAD.exec(written.replaceAll('"', ""));
  const name = m?.[1] ?? m?.[2];
  return m && name !== undefined ? { name, rest: m[3] ?? "" } : undefined;
}
