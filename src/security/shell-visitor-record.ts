// security/shell-visitor-record.ts — what the visitor (shell-visitor.ts) records of each
// command it reaches: the simple command with where it is launched from, the files a wrapper
// opens, the directory a cd moves the shell to; and the names of constructs it refuses.

import type { CommandAnalysis } from "./shell-analysis.js";
import { cannotParse } from "./shell-ast.js";
import type { Redirect } from "./shell-redirects.js";
import type { Arg, OptionFile, UnfoldStep } from "./shell-unfold.js";
import type { Ctx } from "./shell-visitor.js";

/** More simple commands than this in one string are refused. */
export const MAX_SIMPLE_COMMANDS = 2048;

/** Where one written command is launched from, as wrappers are unfolded. */
export interface Launch {
  ctx: Ctx;
  group: number;
  redirects: Redirect[];
  stdinPiped: boolean;
  /** Program text a shell would read from a here-document. */
  stdinCode: Arg | undefined;
  wrappers: string[];
  privileged: boolean;
  openArgs: boolean;
  assigns: string[];
  localDirs: Arg[];
}

/**
 * A wrapper that is not a command of its own (xargs, strace, flock, script -c) still opens
 * the files its options name, where it runs: judged as a command in its place would be.
 */
export function recordWrapperFiles(out: CommandAnalysis, name: string, step: UnfoldStep, at: Launch): void {
  const index = out.commands.length;
  for (const f of step.files ?? []) {
    out.wrapperFiles.push({
      program: name,
      path: f.arg.value,
      dynamic: f.arg.dynamic,
      write: f.write,
      at: index,
      dirScope: at.ctx.scope === "floating" ? Number.POSITIVE_INFINITY : index,
      localDirs: at.localDirs.map((d) => ({ path: d.value, dynamic: d.dynamic })),
    });
  }
}

/** The command about to be pushed moves the shell: commands after it start in `target`. */
export function recordChdir(
  out: CommandAnalysis,
  change: { target: Arg; physical: boolean },
  at: Launch,
): void {
  out.dirs.push({
    target: change.target.value,
    dynamic: change.target.dynamic,
    physical: change.physical,
    at: out.commands.length + 1,
    repeats: at.ctx.scope !== "plain",
    certain: [],
  });
}

export function recordCommand(
  out: CommandAnalysis,
  args: Arg[],
  at: Launch,
  step: UnfoldStep | undefined,
): void {
  if (out.commands.length >= MAX_SIMPLE_COMMANDS) {
    throw cannotParse(`more than ${MAX_SIMPLE_COMMANDS} simple commands`);
  }
  const index = out.commands.length;
  const files = (step?.files ?? []).map((f: OptionFile) => ({
    path: f.arg.value,
    dynamic: f.arg.dynamic,
    write: f.write,
  }));
  out.commands.push({
    argv: args.map((a) => a.value),
    argDynamic: args.map((a) => a.dynamic),
    spans: args.map((a) => a.span ?? null),
    dataArgs: step?.data ?? [],
    dynamic: args[0]!.dynamic,
    redirects: at.redirects,
    files,
    localDirs: [...at.localDirs, ...(step?.dirs ?? [])].map((d) => ({ path: d.value, dynamic: d.dynamic })),
    assigns: at.assigns,
    wrappers: at.wrappers,
    privileged: at.privileged,
    openArgs: at.openArgs,
    stdinPiped: at.stdinPiped,
    stdinProgram: step?.stdinProgram === true,
    background: false,
    group: at.group,
    parentGroup: at.ctx.parentGroup,
    dirScope: at.ctx.scope === "floating" ? Number.POSITIVE_INFINITY : index,
  });
}

export function describeCommand(type: string): string {
  const names: Record<string, string> = {
    ArithmCmd: "an arithmetic command ((...)) (bash)",
    TestClause: "[[ ... ]] (bash); use [ ... ]",
    DeclClause: "declare/typeset (bash)",
    LetClause: "let (bash)",
    TimeClause: "the time keyword (bash)",
    CoprocClause: "coproc (bash)",
    TestDecl: "a test declaration",
  };
  return names[type] ?? `a command of type ${type}`;
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}
