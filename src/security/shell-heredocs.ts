// security/shell-heredocs.ts — where dash reads a here-document, and what a shell that reads
// its program from one sees. The analysis takes a here-document's text as the program of the
// shell it is given to (shell-visitor.ts); these checks refuse the cases where dash would read
// the document somewhere else (after the `)` of a substitution), or read other text than it
// as the program (a document arriving in pieces, descriptor 0 moved by `exec`). Each was seen
// in the image running commands the analysis had not listed.

import { cannotJudge, type ShNode, TOKEN } from "./shell-ast.js";
import type { Arg } from "./shell-unfold.js";

/**
 * dash hands a here-document to a command through a pipe, written whole before the command
 * starts when it is at most this long (PIPESIZE in dash's redir.c); a shell reading its program
 * from it then reads it in one go (up to 8 KiB), and a command of the program that reads stdin
 * finds it empty. A longer one arrives in pieces: `read x` at the top of a 9 KB program took
 * the line after the first 8 KiB (`echo '`), and dash ran the next one as a command while the
 * analysis had it inside the quotes.
 */
const PIPE_PROGRAM_MAX = 4096;

/** A shell reads `program` from its stdin: it must reach the shell whole. */
export function checkStdinProgram(name: string, program: Arg): void {
  if (Buffer.byteLength(program.value, "utf8") > PIPE_PROGRAM_MAX) {
    throw cannotJudge(
      `a here-document of more than ${PIPE_PROGRAM_MAX} bytes fed to ${name} as its program: dash passes a longer one through the pipe in pieces, and a command in it that reads stdin (read, head) takes the rest of the program from under the shell; use a script file`,
    );
  }
}

/** Builtins that run code in the shell that runs them. */
export const SAME_SHELL: ReadonlySet<string> = new Set(["eval", "trap", "."]);

/**
 * `exec` with redirections and no command changes the shell's own descriptors. In a program
 * the shell reads from its stdin, moving descriptor 0 moves where it reads the rest of its
 * program from: `echo CODE | sh 3<&0 <<'EOF'` then `exec 0<&3` ran CODE (and `exec <FILE`
 * runs FILE), none of it judged.
 */
export function stdinMoved(commands: readonly { argv: readonly string[] }[]): void {
  if (commands.some((c) => c.argv.length === 1 && c.argv[0] === "exec")) {
    throw cannotJudge(
      "exec moving descriptor 0 in a program a shell reads from its stdin (dash reads the rest of its program from the new descriptor 0)",
    );
  }
}

/**
 * dash reads the body of a here-document begun inside `$(...)` at the first newline after
 * its operator and, when none comes before the `)`, right after the `)`; mvdan-sh reads it
 * at the next newline. `echo $(cat <<EOF)EOF` then a line `touch x`: dash ended the
 * document at the `EOF` glued to the `)` and ran touch, the parser took the line as the
 * document. Only a body that starts inside the parentheses is read the same by both (an
 * empty body has no position: refused too).
 */
export function heredocInSubstitution(r: ShNode, end: number): void {
  if (r.Op !== TOKEN.hdoc && r.Op !== TOKEN.dashHdoc) return;
  const body = r.Hdoc as ShNode | null;
  if (body?.start !== undefined && body.start < end) return;
  throw cannotJudge(
    "a here-document inside $(...) whose text does not start before the closing ) (dash reads it right after the ), the parser on the next line); write the text inside the parentheses",
  );
}
