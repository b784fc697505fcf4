// security/shell-operands.ts — what the arguments of a simple command are, as far as
// files go: which operands a known program writes (cp's destination, tee's files, sed -i's
// files, dd of=), which arguments are data and never paths (patterns, code: marked by the
// program tables), and which look like paths at all. The system-path rule and the exec
// tool's file needs both read it, so a write is a write in both.

import type { SimpleCommand } from "./shell.js";
import { gitSubcommandArgv } from "./shell-git.js";
import { sedEditedFiles } from "./shell-sed.js";
import { basename } from "./shell-unfold.js";
import { programWrites } from "./shell-writes.js";
import { fileOperands } from "./shell-writes-fileutils.js";

const WRITE_ALL = new Set(["rm", "rmdir", "unlink", "shred", "touch", "tee", "mkdir", "truncate", "mv"]);
for (const c of ["chmod", "chown", "chgrp", "chattr", "chcon", "setfacl", "mknod", "mkfifo", "fallocate"])
  WRITE_ALL.add(c);
const WRITE_DEST = new Set(["cp", "install", "ln", "rsync"]);

/** Short options that take a value, of the programs whose written file an option names (coreutils 9.1). */
const SORT_VALUE_LETTERS = "koStT";
const DEST_VALUE_LETTERS: Record<string, string> = { cp: "St", ln: "St", mv: "St", install: "gmoSt" };

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

/**
 * The values of one option of a GNU program, as getopt_long reads it anywhere before `--`
 * (arguments are permuted): `-L V`, `-LV`, in a cluster after flags (`-rL V`, `-rLV`),
 * `--long V`, `--long=V`, and any abbreviation of the long name (`--target` for
 * --target-directory; a program this applies to has no other long option it could abbreviate).
 * `valueLetters` lists every short option of the program that takes a value: a cluster ends
 * at the first. Each with the argv index of the word holding the value.
 */
export function optionValues(
  c: Pick<SimpleCommand, "argv">,
  letter: string,
  long: string,
  valueLetters: string,
): { value: string; at: number }[] {
  const out: { value: string; at: number }[] = [];
  const next = (at: number) => (at + 1 < c.argv.length ? [{ value: c.argv[at + 1]!, at: at + 1 }] : []);
  for (let at = 1; at < c.argv.length; at++) {
    const a = c.argv[at]!;
    if (a === "--") break;
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = a.slice(2, eq < 0 ? undefined : eq);
      if (name === "" || !long.startsWith(name)) continue;
      if (eq >= 0) out.push({ value: a.slice(eq + 1), at });
      else out.push(...next(at++));
      continue;
    }
    if (!a.startsWith("-") || a === "-") continue;
    for (let k = 1; k < a.length; k++) {
      const l = a[k]!;
      if (!valueLetters.includes(l)) continue;
      const last = k + 1 === a.length;
      if (l === letter) out.push(...(last ? next(at) : [{ value: a.slice(k + 1), at }]));
      if (last) at++; // this option's value, or another's, is the next argument
      break;
    }
  }
  return out;
}

/**
 * The files git's options write: `--output=F` of the diff family (log, diff, show...),
 * `archive -o F`, `format-patch -o DIR`. Argv indices are the command's.
 */
function gitWrites(argv: readonly string[]): { value: string; at: number }[] {
  const sub = gitSubcommandArgv(argv);
  if (!sub) return [];
  const shift = argv.length - sub.length;
  const view = { argv: sub };
  const out = optionValues(view, "", "output", "");
  if (sub[1] === "archive") out.push(...optionValues(view, "o", "output", "o"));
  if (sub[1] === "format-patch") out.push(...optionValues(view, "o", "output-directory", "ov"));
  return out.map((o) => ({ value: o.value, at: o.at + shift }));
}

/** A path a command writes (writeTargets). `inTmpdir`: see ProgramWrite. */
export interface WriteTarget {
  path: string;
  dynamic: boolean;
  at: number;
  implied?: boolean;
  inTmpdir?: true;
  /** What the word names is removed (ProgramWrite.removes), not only written in. */
  removes?: true;
}

/**
 * The paths a command writes, with the argv index of the word each comes from (-1 inside an
 * option). `implied`: a path no argument holds (`tar -x`'s folder, split's default `x`),
 * relative to where the command starts. A path may differ from its word (`gzip F` writes F.gz).
 */
export function writeTargets(c: SimpleCommand): WriteTarget[] {
  const n = commandName(c);
  const ops = fileOperands(c.argv, n) ?? operandsAt(c);
  let picked: { value: string; at: number }[] = [];
  if (WRITE_ALL.has(n)) picked = ops;
  else if (n === "sed") {
    const args = c.argv.map((value, at) => ({ value, dynamic: c.argDynamic[at] === true }));
    picked = sedEditedFiles(args).map((at) => ({ value: c.argv[at]!, at }));
  } else if (n === "dd") {
    picked = c.argv.flatMap((a, at) => (a.startsWith("of=") ? [{ value: a.slice(3), at }] : []));
  } else if (n === "sort") picked = optionValues(c, "o", "output", SORT_VALUE_LETTERS);
  // iconv -o F and sdiff -o F write F (their other value letters: -f/-t, -w/-I).
  else if (n === "iconv") picked = optionValues(c, "o", "output", "fto");
  else if (n === "sdiff") picked = optionValues(c, "o", "output", "owI");
  else if (n === "git") picked = gitWrites(c.argv);
  else if (n === "rsync") picked = ops.slice(-1);
  else if (WRITE_DEST.has(n)) {
    const dirs = optionValues(c, "t", "target-directory", DEST_VALUE_LETTERS[n]!);
    picked = dirs.length > 0 ? dirs : ops.slice(-1);
    // `ln TARGET` makes ./basename(TARGET): the target is not written, the cwd is.
    if (n === "ln" && dirs.length === 0 && ops.length === 1) picked = [];
  }
  // mv -t DIR: the folder is written too (its operands are, as WRITE_ALL says).
  if (n === "mv") picked.push(...optionValues(c, "t", "target-directory", DEST_VALUE_LETTERS.mv!));
  const out: WriteTarget[] = picked.map((p) => ({
    path: p.value,
    dynamic: c.argDynamic[p.at] === true,
    at: p.at,
  }));
  if (n === "ln" && optionValues(c, "t", "target-directory", DEST_VALUE_LETTERS.ln!).length === 0) {
    const only = ops.length === 1 ? ops[0] : undefined;
    if (only && !c.argDynamic[only.at])
      out.push({ path: basename(only.value), dynamic: false, at: -1, implied: true });
  }
  if (!c.dynamic) {
    for (const p of programWrites(c, n)) {
      const dynamic = p.at >= 0 && c.argDynamic[p.at] === true;
      out.push(
        p.at < 0
          ? {
              path: p.value,
              dynamic,
              at: -1,
              implied: true,
              ...(p.inTmpdir ? { inTmpdir: true as const } : {}),
            }
          : { path: p.value, dynamic, at: p.at, ...(p.removes ? { removes: true as const } : {}) },
      );
    }
  }
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
  // ln takes any abbreviation of --symbolic down to --sy (--s is also --suffix).
  const symbolic =
    hasFlag(c, "s", "symbolic") || c.argv.slice(1).some((a) => a.length > 3 && "--symbolic".startsWith(a));
  if (commandName(c) !== "ln" || !symbolic) return undefined;
  const dirs = optionValues(c, "t", "target-directory", DEST_VALUE_LETTERS.ln!);
  const values = new Set(dirs.map((d) => d.at));
  const ops = operandsAt(c).filter((o) => !values.has(o.at));
  const op = (o: { value: string; at: number }) => ({ ...o, dynamic: c.argDynamic[o.at] === true });
  const dir = dirs.at(-1);
  if (dir) {
    return {
      targets: ops.map(op),
      places: [{ path: dir.value, dynamic: c.argDynamic[dir.at] === true, folder: true }],
    };
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

/**
 * The starting points `find ... -delete` removes what is below (`at`: argv indices), and those
 * it removes too (`removed`: with no `-mindepth` of 1 or more find deletes a starting point that
 * matches, `find $TMPDIR -delete` the folder itself, last; never `.`). Undefined when it deletes nothing.
 * `-exec rm -rf {} +` (rmdir, unlink, mv; -execdir, -ok, -okdir) removes what it finds as -delete
 * does: the starting points among it; so does any command it runs that removes a word known only
 * at run time (`-exec sh -c 'rm -rf "$1"' sh {} \;`: `runsRemoval`, found by the exec tool).
 */
export function findDeletes(
  c: SimpleCommand,
  runsRemoval = false,
): { at: number[]; removed: number[] } | undefined {
  if (commandName(c) !== "find") return undefined;
  const live = (i: number) => !c.dataArgs.includes(i);
  const deletes = c.argv.some((a, i) => live(i) && (a === "-delete" || removesFound(c.argv, i)));
  if (!deletes && !runsRemoval) return undefined;
  let i = 1;
  // find's own options come before its starting points: -H, -L, -P, -D DEBUG, -OLEVEL.
  for (; i < c.argv.length; i++) {
    const a = c.argv[i]!;
    if (a === "-D") i++;
    else if (!(a === "-H" || a === "-L" || a === "-P" || /^-O\d*$/.test(a))) break;
  }
  const at: number[] = [];
  for (; i < c.argv.length && !/^[-(!),]/.test(c.argv[i]!); i++) at.push(i);
  const min = c.argv.findIndex((a, k) => a === "-mindepth" && live(k));
  const itself = min < 0 || !/^0*[1-9]\d*$/.test(c.argv[min + 1] ?? "");
  return { at, removed: itself ? at.filter((k) => !/^\.\/*$/.test(c.argv[k]!)) : [] };
}

/** Programs that remove what they are handed (mv takes it out of its folder). */
const FIND_REMOVERS: ReadonlySet<string> = new Set(["rm", "rmdir", "unlink", "mv"]);

/** Programs whose every operand is a name they remove from its folder. */
const REMOVERS: ReadonlySet<string> = new Set(["rm", "rmdir", "unlink"]);

/**
 * The argv indices of `c` whose named entry it takes out of its folder (removes, or renames
 * away): rm's, rmdir's and unlink's operands; the starting points find deletes (findDeletes,
 * with `runsRemoval`); what `tar --remove-files` and `zip -m` archive; mv's sources (every operand with `-t DIR`, else all but the last), and its
 * last with `-T`, which replaces an empty folder there. `mv $TMPDIR D` renames the folder away:
 * not a write in it.
 */
export function removedOperands(c: SimpleCommand, runsRemoval = false): number[] {
  const name = commandName(c);
  if (REMOVERS.has(name)) return c.argv.map((_, at) => at).slice(1);
  if (name === "find") return findDeletes(c, runsRemoval)?.removed ?? [];
  // `tar --remove-files`, `zip -m`: what they archive (shell-writes-archives.ts).
  if (name !== "mv") return writeTargets(c).flatMap((t) => (t.removes && t.at >= 0 ? [t.at] : []));
  const dirs = new Set(optionValues(c, "t", "target-directory", DEST_VALUE_LETTERS.mv!).map((d) => d.at));
  const ops = (fileOperands(c.argv, name) ?? operandsAt(c)).filter((o) => !dirs.has(o.at));
  const replaces = hasFlag(c, "T", "no-target-directory");
  return (dirs.size > 0 || replaces ? ops : ops.slice(0, -1)).map((o) => o.at);
}

/** Whether argv[i] is find's `-exec rm ... {} ...` (or -execdir, -ok, -okdir), which removes what find finds. */
function removesFound(argv: readonly string[], i: number): boolean {
  if (!["-exec", "-execdir", "-ok", "-okdir"].includes(argv[i]!)) return false;
  if (!FIND_REMOVERS.has(basename(argv[i + 1] ?? ""))) return false;
  for (let k = i + 2; k < argv.length && argv[k] !== ";" && argv[k] !== "+"; k++) {
    if (argv[k]!.includes("{}")) return true;
  }
  return false;
}
