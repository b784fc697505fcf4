// tools/exec-merge.ts — the command and the scripts it runs (exec-scripts.ts) as one analysis,
// which the policy judges at once: every command, pipeline, redirection and directory change,
// indices shifted so each script's stay its own.

import type { CommandAnalysis } from "../security/shell.js";

/** One analysis holding the command's and its scripts' commands, for the policy to judge at once. */
export function mergeAnalyses(first: CommandAnalysis, rest: readonly CommandAnalysis[]): CommandAnalysis {
  if (rest.length === 0) return first;
  const out: CommandAnalysis = {
    source: first.source,
    commands: [],
    pipelines: [],
    redirects: [],
    assignedNames: [],
    assignedValues: [],
    functions: [],
    dirs: [],
    wrapperFiles: [],
    helpers: [],
    paths: [],
  };
  let groupBase = 0;
  for (const a of [first, ...rest]) {
    const base = out.commands.length;
    let maxGroup = 0;
    for (const c of a.commands) {
      maxGroup = Math.max(maxGroup, c.group, c.parentGroup ?? 0);
      out.commands.push({
        ...c,
        group: c.group + groupBase,
        parentGroup: c.parentGroup === undefined ? undefined : c.parentGroup + groupBase,
        dirScope: c.dirScope + base,
      });
    }
    // A script's cd moves its own commands; applied to later ones too, it only widens what is judged.
    out.dirs.push(
      ...a.dirs.map((d) => ({
        ...d,
        at: d.at + base,
        certain: d.certain.map(([from, to]): [number, number] => [from + base, to + base]),
      })),
    );
    out.wrapperFiles.push(
      ...a.wrapperFiles.map((f) => ({ ...f, at: f.at + base, dirScope: f.dirScope + base })),
    );
    out.helpers.push(...a.helpers.filter((h) => !out.helpers.includes(h)));
    out.paths = [...(out.paths ?? []), ...(a.paths ?? [])];
    out.pipelines.push(...a.pipelines.map((p) => p.map((stage) => stage.map((k) => k + base))));
    out.functions.push(...a.functions.map((f) => ({ name: f.name, body: f.body.map((k) => k + base) })));
    out.redirects.push(...a.redirects);
    out.assignedNames.push(...a.assignedNames);
    out.assignedValues.push(...a.assignedValues);
    groupBase += maxGroup + 1;
  }
  return out;
}

/**
 * `analysis` with the commands at `sourced` (`. s.sh` whose script changes directory: dash
 * runs it in the same shell, so its cd moves the commands after it) counted as a cd to a
 * folder known only at run time, like `cd -`: a relative path after one is refused, not
 * judged in the folder the command was in. (The script's cd is not followed: it may be in a
 * subshell, a branch or a function, or made from a run-time value.)
 */
export function movedBySourced(analysis: CommandAnalysis, sourced: readonly number[]): CommandAnalysis {
  if (sourced.length === 0) return analysis;
  const dirs = sourced.map((i) => ({
    target: "-",
    dynamic: true,
    physical: false,
    at: i + 1,
    repeats: false,
    certain: [] as [number, number][],
  }));
  return { ...analysis, dirs: [...analysis.dirs, ...dirs].sort((a, b) => a.at - b.at) };
}

/**
 * `analysis` with every command whose name is known only at run time (`x=export; $x HOME=/w`,
 * `$(echo cd) /w`, `eval "$c"`) counted as one that may set HOME, TMPDIR and IFS (`~`, `$HOME`
 * unresolved, mktemp refused: exec-known.ts) and move to a folder known only at run time (a
 * relative path after it refused): the judge cannot see what it does (an `exec: *` grant runs it).
 */
export function runTimeNamed(analysis: CommandAnalysis): CommandAnalysis {
  // Run by a program (`nice $x`, `env $x`), it is a child process: it cannot move this shell.
  const inShell = (c: CommandAnalysis["commands"][number]) => c.wrappers.every((w) => SHELL_RUNNERS.has(w));
  const at = analysis.commands.flatMap((c, i) => (c.argDynamic[0] === true && inShell(c) ? [i] : []));
  if (at.length === 0) return analysis;
  const moved = movedBySourced(analysis, at);
  return { ...moved, assignedNames: [...moved.assignedNames, ...RUN_TIME_SET] };
}

/** Wrappers that run a command in the shell itself, where a builtin it names (cd, export) acts. */
const SHELL_RUNNERS: ReadonlySet<string> = new Set(["eval", "command"]);

/** What a command known only at run time may set, for the judge. */
const RUN_TIME_SET = ["HOME", "TMPDIR", "IFS"];
