// security/shell.ts — turns an `exec` command string into the simple commands it will run.
// Prefix matching a shell string is how `ls; rm -rf /` passes an `ls *` grant, so the
// string is parsed (mvdan-sh, the parser behind shfmt) and every command anywhere inside
// is listed: pipelines, lists, subshells, blocks, $(...), backticks, <(...), if/while/
// for/case bodies, functions, and what wrappers run (sudo, env, timeout, xargs, sh -c,
// find -exec, ...). Whatever cannot be parsed, or nests too deep, throws policy_denied:
// a command we cannot read is a command we do not run.

import { AidoError } from "../errors.js";
import { cannotParse, children, parseShell, type ShNode } from "./shell-ast.js";
import { ShellSource, wordValue } from "./shell-words.js";
import { type Arg, type UnfoldStep, WRAPPERS } from "./shell-wrappers.js";

export { cannotParse };

/** Wrappers and `sh -c` strings nested deeper than this are refused. */
export const MAX_UNFOLD_DEPTH = 8;
/** Longer command strings are refused before parsing. */
// Parsing is synchronous and roughly linear (~15 ms per KB here): 16 KB bounds the pause.
export const MAX_COMMAND_BYTES = 16 * 1024;
/** More simple commands than this in one string are refused. */
export const MAX_SIMPLE_COMMANDS = 2048;

export interface Redirect {
  /** The operator as written: `>`, `>>`, `>|`, `&>`, `&>>`, `<>`, `>&`, `<`, `<&`. */
  op: string;
  target: string;
  /** The target is only known at run time. */
  dynamic: boolean;
  /** The redirection opens its target for writing. */
  write: boolean;
}

export interface SimpleCommand {
  /** Words after quote removal and brace expansion; run-time words are kept as written. */
  argv: string[];
  /** Per argv entry: its value is only known at run time (expansion or glob). */
  argDynamic: boolean[];
  /** The command name itself is only known at run time. */
  dynamic: boolean;
  /** File redirections that apply to it (its own and those of enclosing blocks). */
  redirects: Redirect[];
  /** `NAME=value` settings it runs with (leading assignments, env, sudo). */
  assigns: string[];
  /** Wrappers it was unfolded from, outermost first, by basename (`["sudo", "env"]`). */
  wrappers: string[];
  /** Reached through sudo, doas, su, runuser or pkexec. */
  privileged: boolean;
  /** More arguments are appended at run time (xargs, find -exec). */
  openArgs: boolean;
  /** Its stdin is the output of an earlier pipeline stage. */
  stdinPiped: boolean;
  /** A shell whose program is its stdin (no -c, no script operand, no here-document). */
  stdinProgram: boolean;
  background: boolean;
  /** Commands unfolded from one written command share a group. */
  group: number;
  /** Group of the command in whose words (or redirections) this one's substitution sits. */
  parentGroup: number | undefined;
}

export interface FunctionDef {
  name: string;
  /** Indices into `commands` of the commands in its body. */
  body: number[];
}

export interface CommandAnalysis {
  source: string;
  commands: SimpleCommand[];
  /** Each pipeline as its stages, each stage as indices into `commands`. */
  pipelines: number[][][];
  /** Every file redirection anywhere, including ones with no command (`> /etc/x`). */
  redirects: Redirect[];
  /** Every variable name assigned or exported anywhere. */
  assignedNames: string[];
  functions: FunctionDef[];
}

interface Ctx {
  src: ShellSource;
  depth: number;
  wrappers: string[];
  privileged: boolean;
  parentGroup: number | undefined;
  stdinPiped: boolean;
  redirects: Redirect[];
}

interface Launch {
  ctx: Ctx;
  group: number;
  redirects: Redirect[];
  stdinPiped: boolean;
  /** Program text a shell would read from a here-document or here-string. */
  stdinCode: Arg | undefined;
  wrappers: string[];
  privileged: boolean;
  openArgs: boolean;
  assigns: string[];
}

// mvdan.cc/sh/v3 token values for redirection operators (syntax/tokens.go).
const REDIRECT_OPS: Record<number, string> = {
  54: ">",
  55: ">>",
  56: "<",
  57: "<>",
  58: "<&",
  59: ">&",
  60: ">|",
  61: "<<",
  62: "<<-",
  63: "<<<",
  64: "&>",
  65: "&>>",
};
const WRITE_OPS = new Set([">", ">>", ">|", "&>", "&>>", "<>", ">&"]);
const PIPE_OPS = new Set([12, 13]);

class Analyzer {
  readonly out: CommandAnalysis;
  private groups = 0;

  constructor(source: string) {
    this.out = { source, commands: [], pipelines: [], redirects: [], assignedNames: [], functions: [] };
  }

  program(code: string, ctx: Omit<Ctx, "src">): void {
    const file = parseShell(code);
    const full: Ctx = { ...ctx, src: new ShellSource(code) };
    for (const s of file.Stmts as ShNode[]) this.stmt(s, full);
  }

  private stmt(s: ShNode, ctx: Ctx): void {
    const start = this.out.commands.length;
    const cmd = s.Cmd as ShNode | null;
    const kind = cmd ? cmd.type : "";
    const group = kind === "CallExpr" ? ++this.groups : undefined;
    const subCtx: Ctx = { ...ctx, parentGroup: group ?? ctx.parentGroup, redirects: [] };
    let stdinPiped = ctx.stdinPiped;
    let stdinCode: Arg | undefined;
    const own: Redirect[] = [];
    for (const r of s.Redirs as ShNode[]) {
      const op = REDIRECT_OPS[r.Op as number] ?? "?";
      if (r.Word) this.nested(r.Word, subCtx);
      if (r.Hdoc) this.nested(r.Hdoc, subCtx);
      if (op === "<<" || op === "<<-") {
        stdinPiped = false;
        stdinCode = heredocText(r.Hdoc as ShNode | null, ctx.src);
        continue;
      }
      const target = wordValue(r.Word as ShNode, ctx.src);
      if (op === "<<<") {
        stdinPiped = false;
        stdinCode = { value: target.values.join(" "), dynamic: target.dynamic };
        continue;
      }
      if (op === "<") stdinPiped = false;
      // `>&2` and `<&-` duplicate descriptors; `>& file` is `&> file`.
      if ((op === ">&" || op === "<&") && !target.dynamic && /^(\d+-?|-)$/.test(target.values[0] ?? ""))
        continue;
      const value = target.values.join(" ");
      own.push({ op, target: value, dynamic: target.dynamic || target.glob, write: WRITE_OPS.has(op) });
    }
    this.out.redirects.push(...own);
    const redirects = [...ctx.redirects, ...own];
    if (cmd) {
      const inner: Ctx = { ...ctx, stdinPiped, redirects };
      switch (kind) {
        case "CallExpr":
          this.call(cmd, inner, group!, stdinCode);
          break;
        case "BinaryCmd":
          if (PIPE_OPS.has(cmd.Op as number)) this.pipeline(cmd, inner);
          else {
            this.stmt(cmd.X as ShNode, inner);
            this.stmt(cmd.Y as ShNode, inner);
          }
          break;
        case "FuncDecl": {
          const bodyStart = this.out.commands.length;
          this.stmt(cmd.Body as ShNode, { ...inner, stdinPiped: false, redirects: [] });
          const body = range(bodyStart, this.out.commands.length);
          this.out.functions.push({ name: String((cmd.Name as ShNode).Value), body });
          break;
        }
        case "DeclClause":
          for (const a of cmd.Args as ShNode[]) if (a.Name) this.out.assignedNames.push(String(a.Name.Value));
          this.nested(cmd, inner);
          break;
        case "CoprocClause":
          // A coprocess reads what the rest of the script writes to it: a pipe.
          this.nested(cmd, { ...inner, stdinPiped: true });
          break;
        default:
          this.nested(cmd, inner);
      }
    }
    if (s.Background)
      for (let i = start; i < this.out.commands.length; i++) this.out.commands[i]!.background = true;
  }

  private pipeline(cmd: ShNode, ctx: Ctx): void {
    const stages: ShNode[] = [];
    const flatten = (s: ShNode): void => {
      const c = s.Cmd as ShNode | null;
      const isPipe = c && c.type === "BinaryCmd" && PIPE_OPS.has(c.Op as number);
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
    const subCtx: Ctx = { ...ctx, parentGroup: group, redirects: [] };
    const assigns: string[] = [];
    for (const a of ce.Assigns as ShNode[]) {
      const name = String(a.Name?.Value ?? "");
      this.out.assignedNames.push(name);
      const value = a.Value ? wordValue(a.Value as ShNode, ctx.src).values.join(" ") : "";
      assigns.push(`${name}=${value}`);
      this.nested(a, subCtx);
    }
    const args: Arg[] = [];
    for (const w of ce.Args as ShNode[]) {
      const v = wordValue(w, ctx.src);
      for (const value of v.values) args.push({ value, dynamic: v.dynamic || v.glob });
      this.nested(w, subCtx);
    }
    if (args.length === 0) return;
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
    });
  }

  private unfold(args: Arg[], depth: number, at: Launch): void {
    if (depth > MAX_UNFOLD_DEPTH)
      throw cannotParse(`wrappers and sh -c nest deeper than ${MAX_UNFOLD_DEPTH} levels`);
    const head = args[0]!;
    const name = basename(head.value);
    const step: UnfoldStep | undefined = head.dynamic ? undefined : WRAPPERS.get(name)?.(args);
    if (!step) {
      this.push(args, at, false);
      return;
    }
    const useStdin = step.stdinProgram === true && at.stdinCode !== undefined;
    if (step.keepSelf && !useStdin) this.push(args, at, step.stdinProgram === true);
    const inner: Launch = {
      ...at,
      wrappers: [...at.wrappers, name],
      privileged: at.privileged || step.privileged === true,
      openArgs: at.openArgs || step.openArgs === true,
      assigns: [...at.assigns, ...(step.assigns ?? [])],
    };
    for (const a of inner.assigns.slice(at.assigns.length))
      this.out.assignedNames.push(a.slice(0, a.indexOf("=")));
    for (const run of step.run) this.unfold(run, depth + 1, inner);
    const code = useStdin ? [...step.code, at.stdinCode!] : step.code;
    for (const c of code) {
      if (c.dynamic) {
        this.push([{ value: c.value, dynamic: true }], inner, false);
        continue;
      }
      if (depth + 1 > MAX_UNFOLD_DEPTH) {
        throw cannotParse(`wrappers and sh -c nest deeper than ${MAX_UNFOLD_DEPTH} levels`);
      }
      this.program(c.value, {
        depth: depth + 1,
        wrappers: inner.wrappers,
        privileged: inner.privileged,
        parentGroup: at.group,
        stdinPiped: at.stdinPiped,
        redirects: at.redirects,
      });
    }
  }

  private push(args: Arg[], at: Launch, stdinProgram: boolean): void {
    if (this.out.commands.length >= MAX_SIMPLE_COMMANDS) {
      throw cannotParse(`more than ${MAX_SIMPLE_COMMANDS} simple commands`);
    }
    this.out.commands.push({
      argv: args.map((a) => a.value),
      argDynamic: args.map((a) => a.dynamic),
      dynamic: args[0]!.dynamic,
      redirects: at.redirects,
      assigns: at.assigns,
      wrappers: at.wrappers,
      privileged: at.privileged,
      openArgs: at.openArgs,
      stdinPiped: at.stdinPiped,
      stdinProgram,
      background: false,
      group: at.group,
      parentGroup: at.ctx.parentGroup,
    });
  }

  /** Every statement and substitution below a node that is not itself a Stmt. */
  private nested(node: ShNode, ctx: Ctx): void {
    for (const n of children(node)) {
      if (n.type === "Stmt") this.stmt(n, ctx);
      else if (n.type === "CmdSubst" || n.type === "ProcSubst") {
        // Commands in >(...) read a pipe; <(...) inherits stdin: both are treated as piped.
        const piped = n.type === "ProcSubst" || ctx.stdinPiped;
        for (const s of n.Stmts as ShNode[]) this.stmt(s, { ...ctx, redirects: [], stdinPiped: piped });
      } else this.nested(n, ctx);
    }
  }
}

function heredocText(hdoc: ShNode | null, src: ShellSource): Arg {
  if (!hdoc) return { value: "", dynamic: false };
  const parts = hdoc.Parts as ShNode[];
  if (parts.every((p) => p.type === "Lit"))
    return { value: parts.map((p) => p.Value).join(""), dynamic: false };
  return { value: src.slice(hdoc), dynamic: true };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

export function basename(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? path : path.slice(slash + 1);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Parse without the cache. Throws policy_denied "cannot parse command: ..." when it cannot judge.
 * `maxBytes` raises the size cap for script files an exec runs (tools/exec-scripts.ts).
 */
export function analyzeCommandUncached(command: string, maxBytes = MAX_COMMAND_BYTES): CommandAnalysis {
  if (command.includes("\0")) throw cannotParse("it contains a NUL byte");
  if (Buffer.byteLength(command, "utf8") > maxBytes) {
    throw cannotParse(`it is longer than ${maxBytes} bytes`);
  }
  const a = new Analyzer(command);
  a.program(command, {
    depth: 0,
    wrappers: [],
    privileged: false,
    parentGroup: undefined,
    stdinPiped: false,
    redirects: [],
  });
  return deepFreeze(a.out);
}

const CACHE_SIZE = 512;
const cache = new Map<string, CommandAnalysis | AidoError>();

/**
 * The simple commands a shell string runs. Results (and refusals) for identical strings
 * come from a small LRU cache; the returned analysis is frozen.
 */
export function analyzeCommand(command: string): CommandAnalysis {
  let hit = cache.get(command);
  if (hit !== undefined) {
    cache.delete(command);
  } else {
    try {
      hit = analyzeCommandUncached(command);
    } catch (e) {
      if (!(e instanceof AidoError)) throw e;
      hit = e;
    }
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
  }
  cache.set(command, hit);
  if (hit instanceof AidoError) throw hit;
  return hit;
}
