// security/shell-ast.ts — the one place that touches mvdan-sh (mvdan.cc/sh/v3/syntax,
// the parser behind shfmt, compiled to JavaScript by GopherJS). It parses a shell
// string and copies the Go syntax tree into plain objects: `{type: "CallExpr", Args: [...]}`.
// Reading fields through GopherJS's wrappers re-wraps every struct on every read and
// costs milliseconds per command, so the copy reads the Go values directly (fields as
// properties, slices as {$array, $offset, $length}, strings as UTF-8 byte strings).
// If a new mvdan-sh changes this layout, parseShell refuses every command (fails
// closed) and test/security/shell.test.ts fails; it never reads a tree half-way.

import sh, { type GoValue } from "mvdan-sh";
import { AidoError, ErrorCode } from "../errors.js";

/** A syntax node: `type` is the Go struct name ("CallExpr", "Word", "Lit", ...), other keys its fields. */
export interface ShNode {
  readonly type: string;
  /** Byte offsets of the node in its source (set on Word nodes). */
  readonly start?: number;
  readonly end?: number;
  // biome-ignore lint/suspicious/noExplicitAny: fields differ per node type, as in the Go package.
  readonly [field: string]: any;
}

const parser = sh.syntax.NewParser();

export function cannotParse(why: string): AidoError {
  return new AidoError(ErrorCode.policyDenied, `cannot parse command: ${why}`, { rule: "unparseable" });
}

/** Parse a program into plain nodes. Throws policy_denied "cannot parse command: ..." on any syntax error. */
export function parseShell(code: string): ShNode {
  let file: GoValue;
  try {
    file = parser.Parse(code, "command").__internal_object__;
  } catch (e) {
    const err = e as { Error?: () => string };
    throw cannotParse(typeof err?.Error === "function" ? err.Error() : String(e));
  }
  const node = copy(file);
  if (!node || typeof node !== "object" || (node as ShNode).type !== "File") {
    throw cannotParse("the shell parser returned an unexpected tree");
  }
  return node as ShNode;
}

type Plain = ShNode | Plain[] | string | number | boolean | null;

function copy(v: unknown): Plain {
  if (v === null || v === undefined) return null;
  if (typeof v === "string") return /[^\x00-\x7f]/.test(v) ? Buffer.from(v, "latin1").toString("utf8") : v;
  if (typeof v === "number" || typeof v === "boolean") return v;
  if (typeof v !== "object") return null;
  const g = v as GoValue & { $array?: unknown[]; $offset?: number; $length?: number };
  if (Array.isArray(g.$array) && typeof g.$length === "number") {
    const out: Plain[] = new Array(g.$length);
    for (let i = 0; i < g.$length; i++) out[i] = copy(g.$array[(g.$offset ?? 0) + i]);
    return out;
  }
  const goType = g.constructor?.string;
  if (typeof goType !== "string" || g === g.constructor.nil || !goType.startsWith("*syntax.")) return null;
  const type = goType.slice("*syntax.".length);
  if (type === "Pos" || type === "Comment") return null;
  const out: Record<string, unknown> = { type };
  for (const key of Object.keys(g)) {
    if (key !== "$val") out[key] = copy(g[key]);
  }
  if (type === "Word") {
    const w = g as unknown as { Pos(): { offs: number }; End(): { offs: number } };
    out.start = w.Pos().offs;
    out.end = w.End().offs;
  }
  return out as ShNode;
}

/** Every node directly below this one, in field order. */
export function children(node: ShNode): ShNode[] {
  const out: ShNode[] = [];
  const add = (v: unknown): void => {
    if (Array.isArray(v)) for (const x of v) add(x);
    else if (v && typeof v === "object" && typeof (v as ShNode).type === "string") out.push(v as ShNode);
  };
  for (const key of Object.keys(node)) if (key !== "type") add(node[key]);
  return out;
}
