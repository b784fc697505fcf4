// tools/exec-script-sites.ts — where a command names a script file (`sh x.sh`, `. x.sh`,
// `./x.sh`) and which shell a script's `#!` line asks for; exec-scripts.ts judges and pins them.

import { AidoError, ErrorCode } from "../errors.js";
import { basename, type SimpleCommand } from "../security/shell.js";
import { isDataOnly, judgedByName } from "../security/shell-programs.js";
import { dashOptions, isShellName, otherShellRefusal, STDIN_PATHS } from "../security/shell-sh.js";
import { type Arg, isSystemProgramPath } from "../security/shell-unfold.js";

/** Where a command names a script: args[at] is the file; args[from..at] are the words the pin replaces. */
export interface Site {
  kind: "shell" | "source" | "path";
  at: number;
  from: number;
  path: string;
}

export const refuse = (message: string): AidoError =>
  new AidoError(ErrorCode.policyDenied, message, { rule: "script-unjudgeable" });

export const POSIX_SHELLS = new Set(["sh", "dash"]);

/** What a command (as argv) does with a script file, if anything. */
export function siteOf(args: Arg[]): Site | "stdin" | "dynamic" | undefined {
  const head = args[0];
  if (head === undefined || head.dynamic) return undefined;
  if (POSIX_SHELLS.has(basename(head.value))) {
    const scan = dashOptions(args);
    // Refused shell options and run-time words are refused by the analysis itself.
    if (typeof scan === "string" || scan.dynamicAt !== undefined || scan.seen.has("c")) return undefined;
    const script = args[scan.next];
    if (scan.seen.has("s") || script === undefined) return "stdin";
    if (script.dynamic) return "dynamic";
    if (STDIN_PATHS.has(script.value)) return "stdin";
    const from = scan.next > 1 && args[scan.next - 1]!.value === "--" ? scan.next - 1 : scan.next;
    return { kind: "shell", at: scan.next, from, path: script.value };
  }
  if (head.value === ".") {
    const file = args[1];
    if (file === undefined) return undefined;
    if (file.dynamic) return "dynamic";
    if (STDIN_PATHS.has(file.value)) return "stdin";
    return { kind: "source", at: 1, from: 0, path: file.value };
  }
  if (head.value.includes("/")) return { kind: "path", at: 0, from: 0, path: head.value };
  return undefined;
}

/**
 * The shell a `#!` line names, as argv: sh or dash (no `#!`: dash runs the file itself);
 * null when the file is for another interpreter (python3...). A `#!` naming another shell is refused.
 */
export function shebangShell(text: string, path: string): string[] | null {
  if (!text.startsWith("#!")) return ["/bin/sh"];
  const line = text.slice(2, text.indexOf("\n") < 0 ? undefined : text.indexOf("\n")).trim();
  const space = line.search(/\s/);
  let program = space < 0 ? line : line.slice(0, space);
  let rest = space < 0 ? "" : line.slice(space).trim();
  if (basename(program) === "env") {
    // `#!/usr/bin/env sh`: env looks the shell up in PATH, as the pinned command will.
    if (rest.startsWith("-")) throw refuse(`cannot judge the shebang "#!${line}" of ${path} (env options)`);
    if (rest === "" || /\s/.test(rest)) return null;
    program = rest;
    rest = "";
  }
  const shell = basename(program);
  if (!isShellName(shell)) return null;
  if (!POSIX_SHELLS.has(shell))
    throw refuse(`the script ${path} starts with "#!${line}": ${otherShellRefusal(shell)}`);
  const argv = rest === "" ? [program] : [program, rest];
  const options = dashOptions(argv.map((value) => ({ value, dynamic: false })));
  if (typeof options === "string") throw refuse(`the script ${path} starts with "#!${line}": ${options}`);
  return argv;
}

/**
 * A command named by a path outside the system's program folders (`/workspace/b`) that
 * resolves to a system program was judged by the name written, not by the program: a link
 * `b` to bash ran bash code unread, `g` to git pushed past a `git push *` rule, `r` to rm
 * dodged the rules that read rm's operands. Refused, unless the name is the program's own
 * and nothing is judged by it (`/workspace/tools/ls`), or the program is an interpreter
 * (a virtualenv's `bin/python` is python3.11: its grant decides whatever it is called).
 */
export function linkedProgram(written: string, real: string, where: string): void {
  if (isSystemProgramPath(written)) return;
  const name = basename(written);
  const program = basename(real);
  if (isDataOnly(program)) return;
  if (name !== program || judgedByName(program)) {
    throw refuse(
      `${where} runs the system program ${real} through ${written}; call it by its own name (${program}) so that it is judged as what it is`,
    );
  }
}

/** A command's words as the wrapper tables see them. */
export function argsOf(c: SimpleCommand): Arg[] {
  return c.argv.map((value, i) => ({ value, dynamic: c.argDynamic[i] === true }));
}
