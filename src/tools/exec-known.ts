// tools/exec-known.ts — what a run-time word of an exec command (`~/x`, `$HOME/x`,
// `/workspace/secret/*`) is known to name before it runs, for exec-paths.ts to judge: the
// values of HOME and TMPDIR the exec will have (the caller's private folder when it runs
// confined with it), and the fixed folder in front of the first expansion or glob.

/** What `~`/$HOME and $TMPDIR are known to be before the command runs (undefined: not known). */
export interface KnownVars {
  home: string | undefined;
  tmpdir: string | undefined;
  /**
   * The command sets IFS: an unquoted `$HOME` or `$TMPDIR` is split into fields at run time
   * (`IFS=/` makes `$HOME/f` the words "", "tmp", "agent-<id>/f", paths in the working
   * folder), so it names nothing known. `~` and a quoted one are not split.
   */
  splits?: boolean;
}

/** `$HOME`, `${HOME}`, `"$HOME"`, `"${HOME}"` (or TMPDIR) at the start of a word, before a `/` or its end. */
const LEADING_VAR =
  /^(?:\$(HOME|TMPDIR)|\$\{(HOME|TMPDIR)\}|"\$(HOME|TMPDIR)"|"\$\{(HOME|TMPDIR)\}")(?=\/|$)/;

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
    if (value === undefined) return undefined;
    text = value + text.slice(leading ? leading[0].length : 1);
  } else if (/^["'][/.]/.test(text)) text = text.slice(1);
  const stop = text.search(/[$`*?[\]\\'"~]/);
  // No expansion in the text: it is run-time for a reason the text does not show (find's {}).
  if (stop < 0) return tilde ? { path: text, whole: true } : undefined;
  const fixed = text.slice(0, stop);
  if (!(fixed.startsWith("/") || fixed.startsWith("./") || fixed.startsWith("../"))) return undefined;
  const dir = fixed.slice(0, fixed.lastIndexOf("/") + 1);
  return dir === "/" || dir === "" ? undefined : { path: dir, whole: false };
}
