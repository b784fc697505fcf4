// security/shell-redirects.ts — one redirection as dash performs it: a file opened for
// reading and/or writing on a descriptor, a descriptor duplicated (`2>&1`, `<&-`: no file),
// or a here-document. POSIX has no `&>`, `<<<` or `<(...)`; the parser refuses them and
// an operator this file does not know is refused too. A here-document's text is what a
// shell reading it would run: with a quoted delimiter (`<<'EOF'`) it is the text as
// written; unquoted, dash expands `$...` and backslashes in it first, so such a text is
// marked run-time (and refused when a shell would run it).

import { cannotJudge, onlyFields, type ShNode, TOKEN } from "./shell-ast.js";
import type { Arg } from "./shell-unfold.js";
import { refuseGluedHash, type ShellSource, type WordHooks, wordValue } from "./shell-words.js";

export interface Redirect {
  /** The operator as written: `>`, `>>`, `>|`, `<`, `<>`, `>&`, `<&`. */
  op: string;
  target: string;
  /** The target is only known at run time. */
  dynamic: boolean;
  /** The redirection opens its target for writing. */
  write: boolean;
  /** The redirection opens its target for reading. */
  read: boolean;
  /** The descriptor it opens (0 for stdin). */
  fd: number;
}

export type RedirectionOf =
  | { kind: "file"; redirect: Redirect }
  /** `fd` becomes a copy of another descriptor (`2>&1`, `<&3`), or is closed (`<&-`). */
  | { kind: "dup"; fd: number; closes: boolean }
  /** The here-document is read on `fd` (0 unless a number says otherwise: `3<<EOF`). */
  | { kind: "heredoc"; code: Arg; fd: number };

const OPS: Record<number, { op: string; read: boolean; write: boolean; fd: number }> = {
  [TOKEN.rdrOut]: { op: ">", read: false, write: true, fd: 1 },
  [TOKEN.appOut]: { op: ">>", read: false, write: true, fd: 1 },
  [TOKEN.clbOut]: { op: ">|", read: false, write: true, fd: 1 },
  [TOKEN.rdrIn]: { op: "<", read: true, write: false, fd: 0 },
  [TOKEN.rdrInOut]: { op: "<>", read: true, write: true, fd: 0 },
  [TOKEN.dplIn]: { op: "<&", read: true, write: false, fd: 0 },
  [TOKEN.dplOut]: { op: ">&", read: false, write: true, fd: 1 },
};

export function redirectOf(r: ShNode, src: ShellSource, hooks: WordHooks): RedirectionOf {
  onlyFields(r, ["Op", "N", "Word", "Hdoc", "OpPos"], "a redirection");
  const op = r.Op as number;
  const n = r.N as ShNode | null;
  // mvdan-sh reads `'x'2>&1` as 'x' and a redirection of 2; dash reads the word x2 and a
  // redirection of stdout: the command would not be the one judged.
  if (n && r.start !== undefined && !/^$|[\s;&|()<>]/.test(src.before(r))) {
    throw cannotJudge(
      "a descriptor number glued to the word before it (dash reads the digits as part of the word)",
    );
  }
  // dash takes a single digit for a descriptor and reads more as a word: `sh 10>&1` ran the
  // file ./10 as a script, judged as a bare `sh` with descriptor 10 redirected.
  if (n && /^\d{2,}$/.test(String(n.Value))) {
    throw cannotJudge(
      `a descriptor number of more than one digit (${n.Value}): dash reads it as a word, an argument of the command`,
    );
  }
  if (op === TOKEN.hdoc || op === TOKEN.dashHdoc) {
    return { kind: "heredoc", code: heredoc(r, src, hooks), fd: n ? Number(n.Value) : 0 };
  }
  const known = OPS[op];
  if (!known) throw cannotJudge("a redirection operator that is not POSIX sh");
  const fd = n ? Number(n.Value) : known.fd;
  if (!Number.isInteger(fd)) throw cannotJudge("a redirection with a named descriptor");
  const target = wordValue(r.Word as ShNode, src, hooks);
  // `>&2`, `<&0`, `>&-`: descriptor duplication, not a file. (`>& file` is a syntax error in dash.)
  if ((op === TOKEN.dplIn || op === TOKEN.dplOut) && !target.dynamic && /^(\d+|-)$/.test(target.value)) {
    return { kind: "dup", fd, closes: target.value === "-" };
  }
  return {
    kind: "file",
    redirect: {
      op: known.op,
      target: target.value,
      dynamic: target.dynamic || target.glob,
      write: known.write,
      read: known.read,
      fd,
    },
  };
}

/** The text a here-document hands to its command, and whether dash changes it first. */
function heredoc(r: ShNode, src: ShellSource, hooks: WordHooks): Arg {
  const delimiter = r.Word as ShNode;
  refuseGluedHash(delimiter, src);
  const quoted = (delimiter.Parts as ShNode[]).some(
    (p) => p.type !== "Lit" || String(p.Value).includes("\\"),
  );
  const body = r.Hdoc as ShNode | null;
  if (!body) return { value: "", dynamic: false };
  const parts = body.Parts as ShNode[];
  // Substitutions in an unquoted here-document run whoever reads it.
  if (!quoted) wordValue(body, src, hooks, { dq: true });
  if (!parts.every((p) => p.type === "Lit")) return { value: src.slice(body), dynamic: true };
  let text = parts.map((p) => String(p.Value)).join("");
  if (r.Op === TOKEN.dashHdoc) text = text.replace(/^\t+/gm, "");
  return { value: text, dynamic: !quoted && /[\\$`]/.test(text) };
}
