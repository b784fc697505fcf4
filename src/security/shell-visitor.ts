// security/shell-visitor.ts — the visitor behind analyzeCommand (shell.ts). It walks the
// POSIX syntax tree explicitly and fails closed: each node type, field, word part and
// operator it accepts is one whose dash semantics were checked in the sandbox image
// (test/sandbox/dash-dialect.test.ts); anything else is refused with a reason naming the
// construct. Every simple command anywhere is listed with what the analysis knows of it,
// wrappers and program options are unfolded (shell-wrappers.ts, shell-programs.ts), and
// code a shell runs (`sh -c`, eval, trap, a quoted here-document) is parsed and visited in
// turn, as POSIX sh.

import type { CommandAnalysis, DirChange } from "./shell-analysis.js";
import { cannotJudge, cannotParse, onlyFields, parseShell, type ShNode, TOKEN } from "./shell-ast.js";
import { builtinEffect, checkFunctionName } from "./shell-builtins.js";
import { checkStdinProgram, heredocInSubstitution, SAME_SHELL, stdinMoved } from "./shell-heredocs.js";
import { checkContinuations, checkText } from "./shell-lexical.js";
import { optionsRunPrograms, unfolderFor } from "./shell-programs.js";
import { type Redirect, redirectOf } from "./shell-redirects.js";
import { appendedCommand, runtimeOptions } from "./shell-runtime-args.js";
import { type Arg, basename, isSystemProgramPath, type UnfoldStep } from "./shell-unfold.js";
import {
  describeCommand,
  type Launch,
  range,
  recordChdir,
  recordCommand,
  recordWrapperFiles,
} from "./shell-visitor-record.js";
import { ShellSource, type WordHooks, wordValue } from "./shell-words.js";

/** Wrappers and `sh -c` strings nested deeper than this are refused. */
export const MAX_UNFOLD_DEPTH = 8;
/** Compound commands and substitutions nested deeper than this are refused (stack safety). */
export const MAX_SYNTAX_DEPTH = 64;
export { MAX_SIMPLE_COMMANDS } from "./shell-visitor-record.js";

export interface Ctx {
  src: ShellSource;
  /** The source is the exec's own command text: word spans can be pinned. */
  topLevel: boolean;
  depth: number;
  syntaxDepth: number;
  wrappers: string[];
  privileged: boolean;
  parentGroup: number | undefined;
  stdinPiped: boolean;
  redirects: Redirect[];
  /** "loop": inside a loop body; "floating": a function body or trap action, run at any time. */
  scope: "plain" | "loop" | "floating";
  /** Directories a wrapper moved this code to (env -C DIR sh -c '...'). */
  localDirs: Arg[];
  /** Inside `$(...)`: the byte offset of its closing parenthesis. */
  substitutionEnd: number | undefined;
  /** The shell running this code reads its program from its stdin (`sh <<'EOF'`). */
  programOnStdin: boolean;
}

export class Analyzer {
  readonly out: CommandAnalysis;
  private groups = 0;

  constructor(source: string) {
    this.out = {
      source,
      commands: [],
      pipelines: [],
      redirects: [],
      assignedNames: [],
      assignedValues: [],
      functions: [],
      dirs: [],
      wrapperFiles: [],
      helpers: [],
    };
  }

  program(code: string, ctx: Omit<Ctx, "src" | "syntaxDepth" | "substitutionEnd">): void {
    checkText(code);
    const file = parseShell(code);
    checkContinuations(code, file);
    onlyFields(file, ["Name", "Stmts", "Last"], "a program");
    const full: Ctx = { ...ctx, src: new ShellSource(code), syntaxDepth: 0, substitutionEnd: undefined };
    for (const s of file.Stmts as ShNode[]) this.stmt(s, full);
  }

  private deeper(ctx: Ctx, extra: Partial<Ctx> = {}): Ctx {
    if (ctx.syntaxDepth >= MAX_SYNTAX_DEPTH) {
      throw cannotParse(`commands nest deeper than ${MAX_SYNTAX_DEPTH} levels`);
    }
    return { ...ctx, ...extra, syntaxDepth: ctx.syntaxDepth + 1 };
  }

  private hooks(ctx: Ctx, parentGroup: number | undefined): WordHooks {
    return {
      substitution: (stmts, end) => {
        const inner = this.deeper(ctx, { parentGroup, redirects: [], substitutionEnd: end });
        for (const s of stmts) this.stmt(s, inner);
      },
      assigns: (name) => this.out.assignedNames.push(name),
    };
  }

  /** Visit a statement; returns the directory changes that certainly happened if it succeeds. */
  private stmt(s: ShNode, ctx: Ctx): DirChange[] {
    onlyFields(s, ["Cmd", "Redirs", "Negated", "Background", "Semicolon", "Position"], "a statement");
    const start = this.out.commands.length;
    const dirsBefore = this.out.dirs.length;
    const cmd = s.Cmd as ShNode | null;
    const group = cmd?.type === "CallExpr" ? ++this.groups : undefined;
    const hooks = this.hooks(ctx, group ?? ctx.parentGroup);
    let stdinPiped = ctx.stdinPiped;
    let stdinCode: Arg | undefined;
    let movesStdin = false;
    const own: Redirect[] = [];
    for (const r of s.Redirs as ShNode[]) {
      if (ctx.substitutionEnd !== undefined) heredocInSubstitution(r, ctx.substitutionEnd);
      // dash applies redirections left to right: the last one on descriptor 0 is what a
      // shell there reads its program from. A here-document on another descriptor is data
      // there (`echo CODE | sh 3<<'EOF'` runs the pipe, not the document), and `<&3` makes
      // stdin a descriptor that may hold anything.
      const red = redirectOf(r, ctx.src, hooks);
      movesStdin ||= (red.kind === "file" ? red.redirect.fd : red.fd) === 0;
      if (red.kind === "dup") {
        if (red.fd === 0 && !red.closes) [stdinPiped, stdinCode] = [true, undefined];
        continue;
      }
      if (red.kind === "heredoc") {
        if (red.fd === 0) [stdinPiped, stdinCode] = [false, red.code];
        continue;
      }
      if (red.redirect.fd === 0) stdinCode = undefined;
      if (red.redirect.read && red.redirect.fd === 0) stdinPiped = false;
      own.push(red.redirect);
    }
    this.out.redirects.push(...own);
    const redirects = [...ctx.redirects, ...own];
    const certain = cmd ? this.command(cmd, { ...ctx, stdinPiped, redirects }, group, stdinCode) : [];
    if (movesStdin && ctx.programOnStdin) stdinMoved(this.out.commands.slice(start));
    if (s.Background) {
      for (let i = start; i < this.out.commands.length; i++) this.out.commands[i]!.background = true;
    }
    if (s.Negated || s.Background || own.length > 0) return [];
    // A lone `cd X` (the builtin itself, not one inside sh -c) that succeeded moved this shell.
    const only = this.out.commands.length === start + 1 ? this.out.commands[start] : undefined;
    const isCd = only && only.wrappers.length === 0 && (only.argv[0] === "cd" || only.argv[0] === "chdir");
    if (isCd && this.out.dirs.length === dirsBefore + 1 && ctx.scope !== "floating") {
      return [this.out.dirs[dirsBefore]!];
    }
    return certain;
  }

  private command(cmd: ShNode, ctx: Ctx, group: number | undefined, stdinCode: Arg | undefined): DirChange[] {
    const stmts = (list: unknown, c: Ctx) => {
      for (const s of list as ShNode[]) this.stmt(s, c);
    };
    switch (cmd.type) {
      case "CallExpr":
        onlyFields(cmd, ["Assigns", "Args"], "a simple command");
        this.call(cmd, ctx, group!, stdinCode);
        return [];
      case "BinaryCmd": {
        onlyFields(cmd, ["Op", "X", "Y", "OpPos"], "a command list");
        const inner = this.deeper(ctx);
        if (cmd.Op === TOKEN.pipe) this.pipeline(cmd, inner);
        else if (cmd.Op === TOKEN.andStmt) {
          // `X && Y`: Y runs only if X succeeded, so the cd's X certainly made hold for all of Y.
          const cx = this.stmt(cmd.X as ShNode, inner);
          const from = this.out.commands.length;
          const cy = this.stmt(cmd.Y as ShNode, inner);
          for (const d of cx) d.certain.push([from, this.out.commands.length]);
          return [...cx, ...cy];
        } else if (cmd.Op === TOKEN.orStmt) {
          this.stmt(cmd.X as ShNode, inner);
          this.stmt(cmd.Y as ShNode, inner);
        } else throw cannotJudge("the |& operator (bash)");
        return [];
      }
      case "Subshell":
      case "Block":
        onlyFields(cmd, ["Stmts", "Lparen", "Rparen", "Lbrace", "Rbrace"], "a group");
        stmts(cmd.Stmts, this.deeper(ctx));
        return [];
      case "IfClause":
        this.ifClause(cmd, this.deeper(ctx));
        return [];
      case "WhileClause":
        onlyFields(cmd, ["Cond", "Do", "Until", "WhilePos", "DoPos", "DonePos"], "a while loop");
        this.loop(ctx, (c) => {
          stmts(cmd.Cond, c);
          stmts(cmd.Do, c);
        });
        return [];
      case "ForClause":
        this.forClause(cmd, ctx);
        return [];
      case "CaseClause": {
        onlyFields(cmd, ["Word", "Items", "Case", "In", "Esac"], "a case statement");
        const inner = this.deeper(ctx);
        const hooks = this.hooks(inner, ctx.parentGroup);
        wordValue(cmd.Word as ShNode, inner.src, hooks);
        for (const item of cmd.Items as ShNode[]) {
          onlyFields(item, ["Op", "Patterns", "Stmts", "OpPos"], "a case item");
          if (item.Op !== TOKEN.dblSemicolon && item.Op !== 0)
            throw cannotJudge("a case item ending in ;& or ;;&");
          for (const p of item.Patterns as ShNode[]) wordValue(p, inner.src, hooks);
          stmts(item.Stmts, inner);
        }
        return [];
      }
      case "FuncDecl":
        this.funcDecl(cmd, ctx);
        return [];
      default:
        throw cannotJudge(describeCommand(cmd.type));
    }
  }

  private ifClause(cmd: ShNode, ctx: Ctx): void {
    onlyFields(cmd, ["Cond", "Then", "Else", "Position", "ThenPos", "FiPos"], "an if statement");
    for (const s of cmd.Cond as ShNode[]) this.stmt(s, ctx);
    for (const s of cmd.Then as ShNode[]) this.stmt(s, ctx);
    if (cmd.Else) this.ifClause(cmd.Else as ShNode, ctx);
  }

  private forClause(cmd: ShNode, ctx: Ctx): void {
    onlyFields(cmd, ["Loop", "Do", "ForPos", "DoPos", "DonePos"], "a for loop");
    const loop = cmd.Loop as ShNode;
    if (loop.type !== "WordIter") throw cannotJudge("a C-style for loop (bash)");
    onlyFields(loop, ["Name", "Items", "InPos"], "a for loop");
    // `for PATH in /workspace; do ...` assigns its variable like PATH=... would.
    const loopName = String((loop.Name as ShNode).Value);
    this.out.assignedNames.push(loopName);
    const hooks = this.hooks(ctx, ctx.parentGroup);
    const items = loop.Items as ShNode[];
    // `for f; do` goes over "$@" (taken so for `for f in; do` too, which goes over nothing).
    if (items.length === 0) this.out.assignedValues.push(`${loopName}="$@"`);
    for (const w of items) this.out.assignedValues.push(`${loopName}=${wordValue(w, ctx.src, hooks).value}`);
    this.loop(ctx, (c) => {
      for (const s of cmd.Do as ShNode[]) this.stmt(s, c);
    });
  }

  /** A loop body runs again after its last command: directory changes in it apply to all of it. */
  private loop(ctx: Ctx, body: (c: Ctx) => void): void {
    const from = this.out.commands.length;
    const firstDir = this.out.dirs.length;
    body(this.deeper(ctx, { scope: ctx.scope === "floating" ? "floating" : "loop" }));
    const end = this.out.commands.length;
    for (let i = from; i < end; i++) {
      const c = this.out.commands[i]!;
      c.dirScope = Math.max(c.dirScope, end);
    }
    // Every wrapper file recorded since the body began is in it (even one whose wrapper ran nothing).
    for (const f of this.out.wrapperFiles) if (f.at >= from) f.dirScope = Math.max(f.dirScope, end);
    for (const d of this.out.dirs.slice(firstDir)) d.repeats = true;
  }

  private funcDecl(cmd: ShNode, ctx: Ctx): void {
    onlyFields(cmd, ["Name", "Body", "Parens", "Position"], "a function definition");
    const name = String((cmd.Name as ShNode).Value);
    checkFunctionName(name, (n) => unfolderFor(n) !== undefined);
    const bodyStart = this.out.commands.length;
    const firstDir = this.out.dirs.length;
    this.stmt(cmd.Body as ShNode, this.deeper(ctx, { stdinPiped: false, redirects: [], scope: "floating" }));
    for (const d of this.out.dirs.slice(firstDir)) d.repeats = true;
    this.out.functions.push({ name, body: range(bodyStart, this.out.commands.length) });
  }

  private pipeline(cmd: ShNode, ctx: Ctx): void {
    const stages: ShNode[] = [];
    const flatten = (s: ShNode): void => {
      const c = s.Cmd as ShNode | null;
      const isPipe = c && c.type === "BinaryCmd" && c.Op === TOKEN.pipe;
      if (isPipe && (s.Redirs as ShNode[]).length === 0 && !s.Negated && !s.Background) {
        flatten(c.X as ShNode);
        flatten(c.Y as ShNode);
      } else stages.push(s);
    };
    flatten(cmd.X as ShNode);
    flatten(cmd.Y as ShNode);
    const indices: number[][] = [];
    stages.forEach((stage, i) => {
      const from = this.out.commands.length;
      this.stmt(stage, { ...ctx, stdinPiped: i > 0 ? true : ctx.stdinPiped });
      indices.push(range(from, this.out.commands.length));
    });
    this.out.pipelines.push(indices);
  }

  private call(ce: ShNode, ctx: Ctx, group: number, stdinCode: Arg | undefined): void {
    const hooks = this.hooks(ctx, group);
    const assigns: string[] = [];
    for (const a of ce.Assigns as ShNode[]) {
      onlyFields(a, ["Name", "Value"], "an assignment");
      const name = String((a.Name as ShNode).Value);
      this.out.assignedNames.push(name);
      const value = a.Value ? wordValue(a.Value as ShNode, ctx.src, hooks, { assignment: true }).value : "";
      assigns.push(`${name}=${value}`);
    }
    const args: Arg[] = [];
    for (const w of ce.Args as ShNode[]) {
      const v = wordValue(w, ctx.src, hooks);
      const span = ctx.topLevel ? { start: w.start as number, end: w.end as number } : undefined;
      const dynamic = v.dynamic || v.glob;
      args.push({
        value: v.value,
        dynamic,
        ...(v.optionSafe ? { optionSafe: true } : {}),
        ...(dynamic ? { fields: v.fields } : {}),
        ...(span ? { span } : {}),
      });
    }
    if (args.length === 0) {
      // `d=$TMPDIR` on its own sets the shell's variable (before a command, only its environment).
      this.out.assignedValues.push(...assigns);
      return;
    }
    this.unfold(args, ctx.depth, {
      ctx,
      group,
      redirects: ctx.redirects,
      stdinPiped: ctx.stdinPiped,
      stdinCode,
      wrappers: ctx.wrappers,
      privileged: ctx.privileged,
      openArgs: false,
      assigns,
      localDirs: ctx.localDirs,
    });
  }

  private unfold(args: Arg[], depth: number, at: Launch): void {
    if (depth > MAX_UNFOLD_DEPTH) {
      throw cannotParse(`wrappers and sh -c nest deeper than ${MAX_UNFOLD_DEPTH} levels`);
    }
    const head = args[0]!;
    if (head.dynamic) {
      recordCommand(this.out, args, at, undefined);
      return;
    }
    const effect = head.value.includes("/") ? undefined : builtinEffect(args);
    if (effect) {
      this.out.assignedNames.push(...effect.assigns);
      if (effect.chdir) recordChdir(this.out, effect.chdir, at);
    }
    const name = basename(head.value);
    // `./timeout` or `/workspace/sh` is whatever file the agent put there, not the wrapper.
    const known = !head.value.includes("/") || isSystemProgramPath(head.value);
    if (known && optionsRunPrograms(name)) runtimeOptions(name, args, at.wrappers);
    const step: UnfoldStep | undefined = known ? unfolderFor(name)?.(args) : undefined;
    if (!step) {
      recordCommand(this.out, args, at, undefined);
      return;
    }
    if (step.refuse !== undefined) throw cannotJudge(step.refuse);
    if (step.stdinProgram && at.openArgs && step.keepSelf) {
      throw cannotJudge(
        `${name} run by ${at.wrappers.at(-1)} takes its script from the arguments added at run time`,
      );
    }
    if (at.openArgs) appendedCommand(name, step, at.wrappers);
    // Code a program hands to `/bin/sh -c` starts a shell; eval and trap run it in this one.
    const shell = step.code.length > 0 && !["eval", "trap", "sh", "dash", "."].includes(name) ? ["sh"] : [];
    for (const h of [...(step.helpers ?? []), ...shell])
      if (!this.out.helpers.includes(h)) this.out.helpers.push(h);
    const useStdin = step.stdinProgram === true && at.stdinCode !== undefined;
    if (step.keepSelf && !useStdin) recordCommand(this.out, args, at, step);
    else recordWrapperFiles(this.out, name, step, at);
    const inner: Launch = {
      ...at,
      wrappers: [...at.wrappers, name],
      privileged: at.privileged || step.privileged === true,
      openArgs: at.openArgs || step.openArgs === true,
      assigns: [...at.assigns, ...(step.assigns ?? [])],
      stdinPiped: at.stdinPiped || step.feedsRun === true,
      localDirs: [...at.localDirs, ...(step.dirs ?? []), ...(step.runDirs ?? [])],
      stdinCode: undefined,
    };
    for (const a of step.assigns ?? []) this.out.assignedNames.push(a.slice(0, a.indexOf("=")));
    this.out.assignedNames.push(...(step.unsets ?? []));
    for (const run of step.run) this.unfold(run, depth + 1, inner);
    if (useStdin && at.stdinCode!.dynamic) {
      throw cannotJudge(
        `a here-document with expansions or backslashes fed to ${name}; quote its delimiter (<<'EOF') so the text that runs is the text judged`,
      );
    }
    if (useStdin) checkStdinProgram(name, at.stdinCode!);
    const code = useStdin ? [...step.code, at.stdinCode!] : step.code;
    // Each value a positional parameter may have, like an assignment's (`sh -c 'rm -rf $0' "$TMPDIR"`).
    for (const [n, a] of (step.positional ?? []).entries()) this.out.assignedValues.push(`${n}=${a.value}`);
    // The code starts with its environment's settings as its variables (`d=D sh -c 'cp e "$d"'`).
    if (code.length > 0) this.out.assignedValues.push(...inner.assigns);
    for (const c of code) {
      if (c.dynamic) {
        recordCommand(this.out, [{ value: c.value, dynamic: true }], inner, undefined);
        continue;
      }
      if (depth + 1 > MAX_UNFOLD_DEPTH) {
        throw cannotParse(`wrappers and sh -c nest deeper than ${MAX_UNFOLD_DEPTH} levels`);
      }
      this.program(c.value, {
        topLevel: false,
        depth: depth + 1,
        wrappers: inner.wrappers,
        privileged: inner.privileged,
        parentGroup: at.group,
        stdinPiped: inner.stdinPiped,
        redirects: at.redirects,
        scope: step.deferred ? "floating" : at.ctx.scope,
        localDirs: inner.localDirs,
        // eval, trap and . run their code in this shell, which may read its program from stdin.
        programOnStdin: (useStdin && c === at.stdinCode) || (SAME_SHELL.has(name) && at.ctx.programOnStdin),
      });
    }
  }
}
