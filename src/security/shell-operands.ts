// security/shell-operands.ts — what the arguments of a simple command are, as far as
// files go: which operands a known program writes (cp's destination, tee's files, sed -i's
// files, dd of=), which arguments are data and never paths (patterns, code: marked by the
// program tables), and which look like paths at all. The system-path rule and the exec
// tool's file needs both read it, so a write is a write in both.

import type { SimpleCommand } from "./shell.js";
import { basename } from "./shell-unfold.js";

const WRITE_ALL = new Set(["rm", "rmdir", "unlink", "shred", "touch", "tee", "mkdir", "truncate", "mv"]);
for (const c of ["chmod", "chown", "chgrp", "chattr", "setfacl", "mknod", "mkfifo"]) WRITE_ALL.add(c);
const WRITE_DEST = new Set(["cp", "install", "ln", "rsync"]);

export const commandName = (c: SimpleCommand): string => (c.dynamic ? "" : basename(c.argv[0] ?? ""));

/** Arguments that are not options (everything after `--` counts), with their argv index. */
export function operandsAt(c: SimpleCommand): { value: string; at: number }[] {
  const out: { value: string; at: number }[] = [];
  let opts = true;
  c.argv.forEach((a, at) => {
    if (at === 0) return;
    if (opts && a === "--") opts = false;
    else if (!opts || !a.startsWith("-") || a === "-") out.push({ value: a, at });
  });
  return out;
}

export const operands = (c: SimpleCommand): string[] => operandsAt(c).map((o) => o.value);

export const hasFlag = (c: SimpleCommand, short: string, long: string): boolean =>
  c.argv.slice(1).some((a) => a === `--${long}` || (/^-[^-]/.test(a) && a.slice(1).includes(short)));

/** The paths a command writes, as written, with the argv index of each (-1 inside an option). */
export function writeTargets(c: SimpleCommand): { path: string; dynamic: boolean; at: number }[] {
  const n = commandName(c);
  const ops = operandsAt(c);
  let picked: { value: string; at: number }[] = [];
  if (WRITE_ALL.has(n)) picked = ops;
  else if (n === "sed" && hasFlag(c, "i", "in-place")) picked = ops.slice(1);
  else if (n === "dd") {
    picked = c.argv.flatMap((a, at) => (a.startsWith("of=") ? [{ value: a.slice(3), at }] : []));
  } else if (n === "sort") {
    const i = c.argv.findIndex((a) => a === "-o" || a === "--output");
    const eq = c.argv.findIndex((a) => a.startsWith("--output=") || /^-o./.test(a));
    if (i > 0 && c.argv[i + 1] !== undefined) picked = [{ value: c.argv[i + 1]!, at: i + 1 }];
    else if (eq > 0) picked = [{ value: c.argv[eq]!.replace(/^(--output=|-o)/, ""), at: eq }];
  } else if (WRITE_DEST.has(n)) {
    const t = c.argv.findIndex((a) => a === "-t" || a === "--target-directory");
    const eq = c.argv.findIndex((a) => a.startsWith("--target-directory=") || /^-t./.test(a));
    if (eq > 0) picked = [{ value: c.argv[eq]!.replace(/^(--target-directory=|-t)/, ""), at: eq }];
    else if (t > 0 && c.argv[t + 1] !== undefined) picked = [{ value: c.argv[t + 1]!, at: t + 1 }];
    else picked = ops.slice(-1);
  }
  // mv -tDIR: the folder is written too (its operands are, as WRITE_ALL says).
  if (n === "mv") {
    for (const [at, a] of c.argv.entries()) {
      if (at > 0 && (/^-t./.test(a) || a.startsWith("--target-directory="))) {
        picked.push({ value: a.replace(/^(--target-directory=|-t)/, ""), at });
      }
    }
  }
  const out = picked.map((p) => ({ path: p.value, dynamic: c.argDynamic[p.at] === true, at: p.at }));
  for (const f of c.files) if (f.write) out.push({ path: f.path, dynamic: f.dynamic, at: -1 });
  return out;
}

/**
 * The texts an argument may name a path with. A word is one text, and `--opt=V` / `key=V` is
 * V; a short option with its value attached is every text after its option letters, which
 * the analysis cannot tell from the value (`-o/out`, `-rf./pats`: getopt takes any run of
 * flags before the letter whose value it is): the text after each option letter.
 */
export function pathTexts(arg: string): string[] {
  const eq = /^(--?[A-Za-z0-9][A-Za-z0-9-]*|[A-Za-z_][A-Za-z0-9_]*)=/.exec(arg);
  if (eq) return [arg.slice(eq[0].length)];
  if (arg.startsWith("--")) return [];
  if (!arg.startsWith("-")) return [arg];
  const out: string[] = [];
  for (let i = 2; i < arg.length && /[A-Za-z0-9]/.test(arg[i - 1]!); i++) out.push(arg.slice(i));
  return out;
}

/** Where `ln -s` makes its links: a folder it makes them in, or a link's own path (whose folder holds it). */
export interface LinkPlace {
  path: string;
  dynamic: boolean;
  /** The path is the folder the link goes in (-t DIR, or ln's lone operand: the cwd). */
  folder: boolean;
}

/**
 * The targets of `ln -s` and where its links go. A symlink's relative target is resolved
 * from the folder that holds the link, not from ln's working folder: `ln -s ../../k
 * pub/out/l` points at pub/../k... the exec tool judges it from there.
 */
export function symlinkOperands(
  c: SimpleCommand,
): { targets: { value: string; dynamic: boolean; at: number }[]; places: LinkPlace[] } | undefined {
  if (commandName(c) !== "ln" || !hasFlag(c, "s", "symbolic")) return undefined;
  const t = c.argv.findIndex((a, at) => at > 0 && (a === "-t" || a === "--target-directory"));
  const eq = c.argv.findIndex((a, at) => at > 0 && (/^-t./.test(a) || a.startsWith("--target-directory=")));
  const ops = operandsAt(c).filter((o) => o.at !== t + 1 || t < 0);
  const op = (o: { value: string; at: number }) => ({ ...o, dynamic: c.argDynamic[o.at] === true });
  if (t > 0 || eq > 0) {
    const at = t > 0 ? t + 1 : eq;
    const path = (c.argv[at] ?? "").replace(/^(--target-directory=|-t)/, "");
    return { targets: ops.map(op), places: [{ path, dynamic: c.argDynamic[at] === true, folder: true }] };
  }
  if (ops.length === 1)
    return { targets: ops.map(op), places: [{ path: ".", dynamic: false, folder: true }] };
  const last = ops.at(-1);
  if (!last) return undefined;
  return {
    targets: ops.slice(0, -1).map(op),
    places: [{ path: last.value, dynamic: c.argDynamic[last.at] === true, folder: false }],
  };
}

/** A URL or a remote spec (`host:path`, `scheme://`), not a local path. */
const REMOTE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/|^[^/:]+::?[^/]/;

/**
 * The path an argument names, if it looks like one: absolute, `./x`, `../x`, `.`, `..`,
 * anything with a `/`, or the value of `--opt=PATH` / `key=PATH`. Patterns (holding `*`,
 * `?` or `[`) and URLs are not judged as paths.
 */
export function pathOf(arg: string): { path: string; explicit: boolean } | undefined {
  let v = arg;
  const eq = /^(--?[A-Za-z0-9][A-Za-z0-9-]*|[A-Za-z_][A-Za-z0-9_]*)=/.exec(v);
  if (eq) v = v.slice(eq[0].length);
  else if (v.startsWith("-")) return undefined;
  if (v === "" || /[*?[\n]/.test(v) || REMOTE.test(v)) return undefined;
  if (v === "." || v === ".." || v.startsWith("/") || v.startsWith("./") || v.startsWith("../")) {
    return { path: v, explicit: true };
  }
  return v.includes("/") ? { path: v, explicit: false } : undefined;
}
