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
    groupBase += maxGroup + 1;
  }
  return out;
}
