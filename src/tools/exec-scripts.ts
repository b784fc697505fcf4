// tools/exec-scripts.ts — the script files an exec command runs. The shell analysis reads
// the command text only, so `sh /workspace/x.sh` would hide whatever x.sh holds (a sudo, a
// fork bomb, an rm -rf /). Here every script a command hands to a shell — `sh x.sh`,
// `bash -e x.sh args`, `. x.sh`, `source x.sh`, and `./x.sh` or `/workspace/x.sh` when the
// file starts with a shell shebang or with no shebang at all (the shell then runs it
// itself) — is read through the sandbox (size-capped), analysed like a command
// (recursively, depth-limited) and judged with it: its commands become exec needs, its
// redirections file needs, the file a file_read need, and its analysis is merged into the
// one the policy judges.
//
// Then the command is pinned: each script operand is replaced by the judged text as a
// quoted `-c` argument (`sh x.sh a` runs as `sh -c '<judged text>' x.sh a`), so what runs
// is byte for byte what was judged. A script rewritten between the check and the run, by a
// parallel exec or by the command itself, changes nothing. A script run that cannot be
// pinned this way (inside `sh -c '...'`, eval, a here-document) is refused.

import { posix } from "node:path";
import { AidoError, ErrorCode, errorMessage, isAidoError } from "../errors.js";
import type { Need } from "../gate/types.js";
import type { SandboxHandle } from "../sandbox/types.js";
import { execNeeds } from "../security/policy.js";
import { isSystemPath } from "../security/policy-rules.js";
import { analyzeCommandUncached, basename, type CommandAnalysis } from "../security/shell.js";
import { children, parseShell, type ShNode } from "../security/shell-ast.js";
import { ShellSource, wordValue } from "../security/shell-words.js";
import { type Arg, isShellName, scanOptions, WRAPPERS } from "../security/shell-wrappers.js";

/** A script larger than this is refused (parsing costs ~13 ms per KB, synchronously). */
export const SCRIPT_MAX_BYTES = 64 * 1024;
/** Scripts that run scripts: deeper than this is refused. */
export const SCRIPT_MAX_DEPTH = 4;
/** Distinct scripts one exec call may run. */
export const SCRIPTS_MAX = 16;
/** The pinned command is one argv string for /bin/sh -c: it must stay under Linux's MAX_ARG_STRLEN (128 KiB). */
export const PINNED_MAX_BYTES = 120 * 1024;

const STDIN_PATHS = new Set(["-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"]);
const SHELL_VALUE_OPTIONS = { value: ["o", "O", "rcfile", "init-file"] };
const DIR_CHANGERS = new Set(["cd", "pushd", "popd"]);

/** Where a command names a script: args[at] is the file; args[from..at] are the words the pin replaces. */
interface Site {
  kind: "shell" | "source" | "path";
  at: number;
  from: number;
  path: string;
}

/** A script as judged: its canonical path, its (already pinned) text, the shell that runs it. */
interface Judged {
  path: string;
  text: string;
  /** For `./x.sh`: the shebang's shell as argv (or /bin/sh when there is no shebang). */
  interpreter: string[];
}

export interface ScriptPlan {
  /** file_read of each script, and the exec and redirection needs of what it runs. */
  needs: Need[];
  /** The analysis of every script, in the order they were judged. */
  analyses: CommandAnalysis[];
  /** The command to run: every script operand replaced by the text that was judged. */
  command: string;
}

const refuse = (message: string): AidoError =>
  new AidoError(ErrorCode.policyDenied, message, { rule: "script-unjudgeable" });

/** What a command (as argv) does with a script file, if anything. */
function siteOf(args: Arg[]): Site | "stdin" | "dynamic" | undefined {
  const head = args[0];
  if (head === undefined || head.dynamic) return undefined;
  if (isShellName(basename(head.value))) {
    const scan = scanOptions(args, 1, SHELL_VALUE_OPTIONS);
    // A run-time word among the options is a run-time program: the dynamic-command rule refuses it.
    if (scan.dynamicAt !== undefined || scan.seen.has("c")) return undefined;
    const script = args[scan.next];
    if (scan.seen.has("s") || script === undefined) return "stdin";
    if (script.dynamic) return "dynamic";
    if (STDIN_PATHS.has(script.value)) return "stdin";
    const from = scan.next > 1 && args[scan.next - 1]!.value === "--" ? scan.next - 1 : scan.next;
    return { kind: "shell", at: scan.next, from, path: script.value };
  }
  if (head.value === "." || head.value === "source") {
    const file = args[1];
    if (file === undefined) return undefined;
    if (file.dynamic) return "dynamic";
    if (STDIN_PATHS.has(file.value)) return "stdin";
    return { kind: "source", at: 1, from: 0, path: file.value };
  }
  if (head.value.includes("/")) return { kind: "path", at: 0, from: 0, path: head.value };
  return undefined;
}

/** The shell a `#!` line names, as argv; null when the file is not a shell script. */
function shebangShell(text: string): string[] | null {
  if (!text.startsWith("#!")) return ["/bin/sh"];
  const line = text.slice(2, text.indexOf("\n") < 0 ? undefined : text.indexOf("\n")).trim();
  const space = line.search(/\s/);
  const program = space < 0 ? line : line.slice(0, space);
  const rest = space < 0 ? "" : line.slice(space).trim();
  if (basename(program) === "env") {
    // `#!/usr/bin/env bash`: env looks the shell up in PATH, as the pinned command will.
    if (rest.startsWith("-")) throw refuse(`cannot judge the shebang "#!${line}" (env options)`);
    return rest !== "" && !/\s/.test(rest) && isShellName(basename(rest)) ? [rest] : null;
  }
  if (!isShellName(basename(program))) return null;
  return rest === "" ? [program] : [program, rest];
}

const quote = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`;

/** Static redirection targets of every command, as file needs (canonical, resolved from cwd). */
export async function redirectNeeds(
  sandbox: SandboxHandle,
  analysis: CommandAnalysis,
  cwd: string,
): Promise<Need[]> {
  const needs: Need[] = [];
  for (const c of analysis.commands) {
    for (const r of c.redirects) {
      // `>&2`, `<&0`, `>&-`: descriptor duplication, not a file.
      if (r.dynamic || (/&$/.test(r.op) && /^(\d+|-)$/.test(r.target))) continue;
      const path = await sandbox.realpath(posix.resolve(cwd, r.target));
      needs.push({ kind: r.write ? "file_write" : "file_read", path });
      if (r.op === "<>") needs.push({ kind: "file_read", path });
    }
  }
  return needs;
}

class Planner {
  readonly needs: Need[] = [];
  readonly analyses: CommandAnalysis[] = [];
  /** kind + path as written -> the judged script, or null when the file is not a shell script. */
  private readonly judged = new Map<string, Judged | null>();
  private bytes = 0;

  constructor(
    private readonly sandbox: SandboxHandle,
    private readonly cwd: string,
  ) {}

  /** `code` (analysed as `analysis`) with every script it runs judged and pinned. */
  async pin(code: string, analysis: CommandAnalysis, depth: number, where: string): Promise<string> {
    const movesDir = analysis.commands.some((c) => !c.dynamic && DIR_CHANGERS.has(basename(c.argv[0] ?? "")));
    if (analysis.assignedNames.includes("PATH")) {
      throw refuse(`${where} sets PATH, which decides what file a command name runs; refused`);
    }
    let runs = 0;
    for (const c of analysis.commands) {
      const site = siteOf(c.argv.map((value, i) => ({ value, dynamic: c.argDynamic[i] === true })));
      if (site === undefined) continue;
      const shown = c.argv.join(" ");
      if (site === "dynamic") {
        throw refuse(
          `${where}: "${shown}" runs a script whose path is only known at run time; cannot judge it`,
        );
      }
      if (site === "stdin") {
        if (c.redirects.some((r) => !r.write && r.op === "<")) {
          throw refuse(`${where}: "${shown}" reads its program from a file redirection; run it as "sh FILE"`);
        }
        continue;
      }
      if (await this.judge(site, depth, where, movesDir)) runs++;
    }
    if (runs === 0) return code;
    return this.rewrite(code, runs, where);
  }

  private async judge(site: Site, depth: number, where: string, movesDir: boolean): Promise<Judged | null> {
    const key = `${site.kind}\0${site.path}`;
    const known = this.judged.get(key);
    if (known !== undefined) return known;
    if (!site.path.startsWith("/") && movesDir) {
      throw refuse(`${where} changes directory and runs the script ${site.path}: give its absolute path`);
    }
    const path = await this.sandbox.realpath(posix.resolve(this.cwd, site.path));
    // A program under a system path (`/usr/bin/x`) is not something the agent can write.
    if (site.kind === "path" && isSystemPath(path)) {
      this.judged.set(key, null);
      return null;
    }
    if (depth >= SCRIPT_MAX_DEPTH) throw refuse(`scripts run scripts deeper than ${SCRIPT_MAX_DEPTH} levels`);
    if (this.analyses.length >= SCRIPTS_MAX) throw refuse(`one exec may run at most ${SCRIPTS_MAX} scripts`);
    let file: { content: string; size: number };
    try {
      file = await this.sandbox.readFile(path, { maxBytes: SCRIPT_MAX_BYTES + 1, expect: path });
    } catch (e) {
      throw refuse(
        `cannot read the script ${path} (${errorMessage(e)}); a script that cannot be read cannot be judged`,
      );
    }
    if (file.size > SCRIPT_MAX_BYTES) {
      throw refuse(
        `the script ${path} is ${file.size} bytes, more than the ${SCRIPT_MAX_BYTES} that can be judged`,
      );
    }
    this.bytes += file.size;
    if (this.bytes > SCRIPT_MAX_BYTES) {
      throw refuse(`the scripts of one exec hold more than ${SCRIPT_MAX_BYTES} bytes together`);
    }
    const binary = file.content.includes("\0");
    const interpreter = site.kind === "path" && !binary ? shebangShell(file.content) : ["/bin/sh"];
    if (site.kind === "path" && (binary || interpreter === null)) {
      // A binary, or a script for another interpreter (python, node): the container is the boundary.
      this.judged.set(key, null);
      return null;
    }
    if (binary) throw refuse(`${path} is a binary file, not a script that can be judged`);
    let analysis: CommandAnalysis;
    try {
      analysis = analyzeCommandUncached(file.content, SCRIPT_MAX_BYTES);
    } catch (e) {
      if (isAidoError(e, ErrorCode.policyDenied)) throw refuse(`script ${path}: ${e.message}`);
      throw e;
    }
    this.needs.push(
      { kind: "file_read", path },
      ...execNeeds(analysis),
      ...(await redirectNeeds(this.sandbox, analysis, this.cwd)),
    );
    this.analyses.push(analysis);
    const text = await this.pin(file.content, analysis, depth + 1, `the script ${path}`);
    const judged: Judged = { path, text, interpreter: interpreter ?? ["/bin/sh"] };
    this.judged.set(key, judged);
    return judged;
  }

  /** Replace each script operand in `code` by its judged text; every run found must be pinned. */
  private rewrite(code: string, runs: number, where: string): string {
    const src = new ShellSource(code);
    const edits: { start: number; end: number; text: string }[] = [];
    const cannotPin = (why: string) =>
      refuse(
        `${where}: ${why}; a script must be run by a command written out in the exec command itself (for example "sh /workspace/x.sh args"), so the text that was checked is the text that runs`,
      );
    const visit = (args: Arg[], words: Map<Arg, ShNode>, depth: number): void => {
      const site = siteOf(args);
      if (site !== undefined && typeof site !== "string") {
        const judged = this.judged.get(`${site.kind}\0${site.path}`);
        if (judged === undefined) throw cannotPin(`the script ${site.path} was not judged`);
        if (judged !== null) {
          const first = words.get(args[site.from]!);
          const file = words.get(args[site.at]!);
          if (!first || !file) throw cannotPin(`the script ${site.path} is named by an expanded word`);
          const body = `-c ${quote(judged.text)} ${quote(site.path)}`;
          let text: string;
          if (site.kind === "shell") text = body;
          else if (site.kind === "path") text = `${judged.interpreter.map(quote).join(" ")} ${body}`;
          else if (args.length === 2) text = `eval ${quote(judged.text)}`;
          else throw cannotPin(`sourcing ${site.path} with arguments cannot be pinned`);
          edits.push({ start: first.start!, end: file.end!, text });
        }
        return;
      }
      const head = args[0];
      if (head === undefined || head.dynamic || depth > 8) return;
      for (const run of WRAPPERS.get(basename(head.value))?.(args)?.run ?? []) visit(run, words, depth + 1);
    };
    const stack: ShNode[] = [parseShell(code)];
    while (stack.length > 0) {
      const node = stack.pop()!;
      if (node.type === "CallExpr") {
        const words = new Map<Arg, ShNode>();
        const args: Arg[] = [];
        for (const w of node.Args as ShNode[]) {
          const v = wordValue(w, src);
          for (const value of v.values) {
            const a = { value, dynamic: v.dynamic || v.glob };
            if (v.values.length === 1) words.set(a, w);
            args.push(a);
          }
        }
        visit(args, words, 0);
      }
      stack.push(...children(node));
    }
    if (edits.length !== runs) throw cannotPin("it runs a script from inside sh -c, eval or a here-document");
    edits.sort((a, b) => b.start - a.start);
    let bytes = Buffer.from(code, "utf8");
    let limit = Number.POSITIVE_INFINITY;
    for (const e of edits) {
      if (e.end > limit) throw cannotPin("two script runs overlap");
      bytes = Buffer.concat([bytes.subarray(0, e.start), Buffer.from(e.text, "utf8"), bytes.subarray(e.end)]);
      limit = e.start;
    }
    return bytes.toString("utf8");
  }
}

/** Judge the scripts `command` runs and pin them (see the header). */
export async function planScripts(
  sandbox: SandboxHandle,
  command: string,
  analysis: CommandAnalysis,
  cwd: string,
): Promise<ScriptPlan> {
  const planner = new Planner(sandbox, cwd);
  const pinned = await planner.pin(command, analysis, 0, "the command");
  if (Buffer.byteLength(pinned, "utf8") > PINNED_MAX_BYTES) {
    throw refuse(`the command with its scripts written in is more than ${PINNED_MAX_BYTES} bytes`);
  }
  return { needs: planner.needs, analyses: planner.analyses, command: pinned };
}

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
      });
    }
    out.pipelines.push(...a.pipelines.map((p) => p.map((stage) => stage.map((k) => k + base))));
    out.functions.push(...a.functions.map((f) => ({ name: f.name, body: f.body.map((k) => k + base) })));
    out.redirects.push(...a.redirects);
    out.assignedNames.push(...a.assignedNames);
    groupBase += maxGroup + 1;
  }
  return out;
}
