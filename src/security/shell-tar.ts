// security/shell-tar.ts — what GNU tar runs besides itself. Writing a compressed archive,
// tar starts its compressor through `/bin/sh -c` (seen with strace in the image), and so it
// runs `-I`/`--use-compress-program`, `--to-command`, `--checkpoint-action=exec=` and
// `-F`/`--info-script` as sh code; reading one, it picks a decompressor from the archive's
// first bytes and runs it directly. Those are helpers (fixed system programs) or code the
// analysis parses; a remote archive (`-f host:file`, `--rsh-command`, `--rmt-command`),
// which tar reaches by running a remote shell, is refused.

import { checkAbbreviation, refuse, type Unfolder, type UnfoldStep } from "./shell-unfold.js";

const COMPRESSORS = ["gzip", "bzip2", "xz", "lzip", "lzma", "lzop", "zstd", "compress", "gunzip", "unxz"];
const TAR_COMPRESSOR: Record<string, string> = { z: "gzip", j: "bzip2", J: "xz", Z: "compress" };
const TAR_LONG_COMPRESSOR: Record<string, string> = {
  gzip: "gzip",
  gunzip: "gzip",
  ungzip: "gzip",
  bzip2: "bzip2",
  xz: "xz",
  lzip: "lzip",
  lzma: "lzma",
  lzop: "lzop",
  zstd: "zstd",
  compress: "compress",
  uncompress: "compress",
};
/** tar letters that take a value, in old-style bundles (`tar czf out.tgz dir`) and short options. */
const TAR_VALUE = "fbCFgHIKLNTVX";
const TAR_VALUE_LONG = new Set(["file", "directory", "use-compress-program", "to-command", "info-script"]);
for (const o of ["new-volume-script", "checkpoint-action", "rsh-command", "rmt-command", "files-from"]) {
  TAR_VALUE_LONG.add(o);
}
for (const o of ["exclude-from", "listed-incremental", "index-file", "volno-file", "blocking-factor"]) {
  TAR_VALUE_LONG.add(o);
}
for (const o of ["format", "label", "starting-file", "newer", "after-date", "tape-length"])
  TAR_VALUE_LONG.add(o);

/** Options whose value is a program, sh code or an action that runs one. */
const CODE_OPTIONS = ["I", "use-compress-program", "to-command", "checkpoint-action", "F", "info-script"];
CODE_OPTIONS.push("new-volume-script", "rsh-command", "rmt-command");

/**
 * Every long name this table reads (and tar's real names that are prefixes of them, such as
 * --checkpoint and --exclude): tar takes any unambiguous prefix (`--to-com=CMD`), so a
 * prefix of one of these is refused rather than read as some other option.
 */
const TAR_KNOWN = [...TAR_VALUE_LONG, ...Object.keys(TAR_LONG_COMPRESSOR)].concat([
  "extract",
  "get",
  "list",
  "diff",
  "compare",
  "auto-compress",
  "force-local",
  "checkpoint",
  "exclude",
]);

export const tar: Unfolder = (args) => {
  /** Each option, with its value; `dynamic`: a separate value known only at run time (`-f "$f"`). */
  const opts: { name: string; value?: string; dynamic?: boolean }[] = [];
  const valueAt = (k: number) => ({ value: args[k]?.value ?? "", dynamic: args[k]?.dynamic === true });
  let i = 1;
  const first = args[1];
  if (first && !first.dynamic && !first.value.startsWith("-")) {
    // Old style: `tar czf ARCHIVE DIR`: each value letter takes the next argument.
    i = 2;
    for (const letter of first.value) {
      opts.push(TAR_VALUE.includes(letter) ? { name: letter, ...valueAt(i++) } : { name: letter });
    }
  }
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a.dynamic) {
      if (a.value.startsWith("-")) return refuse(`tar with a run-time option (${a.value})`);
      continue;
    }
    const v = a.value;
    if (v === "--") break;
    if (v.startsWith("--")) {
      const eq = v.indexOf("=");
      const name = v.slice(2, eq < 0 ? undefined : eq);
      checkAbbreviation(name, TAR_KNOWN);
      if (eq >= 0) opts.push({ name, value: v.slice(eq + 1) });
      else if (TAR_VALUE_LONG.has(name)) opts.push({ name, ...valueAt(++i) });
      else opts.push({ name });
    } else if (v.startsWith("-")) {
      for (let k = 1; k < v.length; k++) {
        const letter = v[k]!;
        if (!TAR_VALUE.includes(letter)) {
          opts.push({ name: letter });
          continue;
        }
        opts.push(
          k + 1 < v.length ? { name: letter, value: v.slice(k + 1) } : { name: letter, ...valueAt(++i) },
        );
        break;
      }
    }
  }
  const step: UnfoldStep = { keepSelf: true, run: [], code: [], helpers: [], dirs: [] };
  const helpers = new Set<string>();
  let reads = false;
  let chosen = false;
  let remote = false;
  for (const o of opts) {
    const value = o.value ?? "";
    // A program, code or action known only at run time (`--checkpoint-action "e$x"`) cannot be judged.
    if (o.dynamic && CODE_OPTIONS.includes(o.name)) {
      return refuse(`tar ${o.name.length === 1 ? "-" : "--"}${o.name} with a run-time value (${value})`);
    }
    if (["x", "t", "d", "extract", "get", "list", "diff", "compare"].includes(o.name)) reads = true;
    if (TAR_COMPRESSOR[o.name] || TAR_LONG_COMPRESSOR[o.name]) {
      helpers.add(TAR_COMPRESSOR[o.name] ?? TAR_LONG_COMPRESSOR[o.name]!);
      chosen = true;
    } else if (o.name === "a" || o.name === "auto-compress") {
      for (const c of COMPRESSORS) helpers.add(c);
    } else if (o.name === "I" || o.name === "use-compress-program") {
      // tar runs the compressor as `/bin/sh -c PROG` (seen with strace): PROG is sh code.
      step.code.push({ value, dynamic: false });
      step.feedsRun = true;
      chosen = true;
    } else if (o.name === "to-command") {
      step.code.push({ value, dynamic: false });
      step.feedsRun = true;
    } else if (o.name === "checkpoint-action" && value.startsWith("exec=")) {
      step.code.push({ value: value.slice(5), dynamic: false });
    } else if (["F", "info-script", "new-volume-script"].includes(o.name)) {
      step.code.push({ value, dynamic: false });
    } else if (o.name === "rsh-command" || o.name === "rmt-command") {
      return refuse(`tar --${o.name} names a remote shell program`);
    } else if (
      (o.name === "f" || o.name === "file") &&
      /^[^/]*:/.test(value) &&
      !opts.some((x) => x.name === "force-local")
    ) {
      return refuse(`tar -f ${value} names a remote archive, which tar reaches by running rsh`);
    } else if (
      (o.name === "f" || o.name === "file") &&
      o.dynamic &&
      !opts.some((x) => x.name === "force-local")
    ) {
      remote = true;
    } else if (o.name === "C" || o.name === "directory")
      step.dirs!.push({ value, dynamic: o.dynamic === true });
  }
  // Reading an archive without a named compressor: tar picks one from the archive's first
  // bytes and runs it directly; writing, it runs the compressor through /bin/sh -c.
  if (reads && !chosen) for (const c of COMPRESSORS) helpers.add(c);
  if (!reads && helpers.size > 0) helpers.add("sh");
  // `-f "$f"` may turn out to be host:file: tar then runs its remote shell directly
  // (--rsh-command, /usr/bin/rsh by default, which the image does not have).
  if (remote) helpers.add("rsh");
  step.helpers = [...helpers];
  if (step.code.length > 0) step.openArgs = true;
  return step;
};
