// security/shell-curl.ts — curl's options that load code or name files. `--engine` loads an
// OpenSSL engine, a shared object, by name or by path (its code runs in curl whatever the
// URL), and `-K`/`--config` reads options, --engine among them, from a file: refused. The
// files its options write (`-o F`, `-D F`, `-c F`, `--libcurl F`, `--trace F`, `--output-dir
// D`...) and read (`-T F`, and `@F` in the value of `-d`, `--data-binary`, `--data-urlencode`,
// `--json`, `-H`, `-F name=@F` or `name=<F`, a `-b` value with no `=`) are handed on as files
// the exec needs, judged like a redirection: their values start with `@` or sit in option
// values, where the exec tool's path check did not look (`curl -d @/secret URL`).
// curl takes any unambiguous prefix of a long option (`--conf`, `--eng`), and a long
// option's value is always the next argument (`--output=F` is no option of curl's).

import { type Arg, itself, type OptionFile, refuse, type UnfoldStep } from "./shell-unfold.js";

/** curl 7.88's short options that take a value: after one of them, the rest of a cluster is that value. */
const CURL_VALUE_LETTERS = "AbcCdDeEFhHKmoPQrtTuUwxXyYz";

/** Long options whose value is a file curl writes ("-" is stdout), by their short letter if any. */
const WRITES: Record<string, string | undefined> = {
  output: "o",
  "dump-header": "D",
  "cookie-jar": "c",
  libcurl: undefined,
  trace: undefined,
  "trace-ascii": undefined,
  stderr: undefined,
  "etag-save": undefined,
  "output-dir": undefined,
};
/** Long options whose value is a file curl reads ("-" and "." are stdin). */
const READS: Record<string, string | undefined> = { "upload-file": "T" };
/** Long options whose value names a file to read after an `@` (how, below). */
const AT_FILE: Record<string, string | undefined> = {
  data: "d",
  "data-ascii": undefined,
  "data-binary": undefined,
  "data-urlencode": undefined,
  json: undefined,
  header: "H",
  form: "F",
  cookie: "b",
};
/** Long options with a value that none of the tables above lists (the common ones). */
const OTHER_VALUES = [
  "user-agent",
  "continue-at",
  "referer",
  "cert",
  "max-time",
  "ftp-port",
  "quote",
  "range",
].concat(
  ["telnet-option", "user", "proxy-user", "write-out", "proxy", "request", "speed-time", "speed-limit"],
  ["time-cond", "url", "cacert", "capath", "key", "connect-timeout", "retry", "retry-delay", "resolve"],
  ["data-raw", "form-string", "oauth2-bearer", "max-filesize", "limit-rate", "interface", "unix-socket"],
);

/** The file an option value names for curl to read through `@` or `<`, if any. */
function atFile(option: string, value: string): string | undefined {
  if (option === "form") return /^[^=]*=[@<]"?([^;"]*)/.exec(value)?.[1];
  if (option === "cookie") return value.includes("=") ? undefined : value;
  if (option === "data-urlencode") return /^[^=]*?@(.*)$/s.exec(value)?.[1];
  return value.startsWith("@") ? value.slice(1) : undefined;
}

/** The long option a word or a short letter stands for, among the options these tables know. */
function longName(word: string): string | undefined {
  const names = [...Object.keys(WRITES), ...Object.keys(READS), ...Object.keys(AT_FILE), ...OTHER_VALUES];
  if (names.includes(word)) return word;
  const hits = names.filter((n) => word.length >= 2 && n.startsWith(word));
  return hits.length === 1 ? hits[0] : undefined;
}

function byLetter(letter: string): string | undefined {
  for (const table of [WRITES, READS, AT_FILE]) {
    const hit = Object.entries(table).find(([, l]) => l === letter);
    if (hit) return hit[0];
  }
  return undefined;
}

/** What curl's option `name` with `value` (an argument of the command) makes it open. */
function fileOf(name: string, value: Arg): OptionFile | undefined {
  const v = value.value;
  if (name in WRITES) return v === "-" || v === "" ? undefined : { arg: value, write: true };
  if (name in READS) return v === "-" || v === "." || v === "" ? undefined : { arg: value, write: false };
  if (!(name in AT_FILE)) return undefined;
  const file = atFile(name, v);
  return file === undefined || file === "" || file === "-"
    ? undefined
    : { arg: { ...value, value: file }, write: false };
}

export function curl(args: Arg[]): UnfoldStep {
  for (const a of args.slice(1)) {
    const v = a.value;
    if (a.dynamic) continue; // a run-time word that may be an option is refused (runtimeOptions)
    if (v === "--") break;
    if (v.startsWith("--")) {
      const name = v.slice(2);
      if (name.length >= 2 && "engine".startsWith(name)) {
        return refuse(`curl ${v} loads an OpenSSL engine, a shared object named by the command`);
      }
      if (name.length >= 2 && "config".startsWith(name)) {
        return refuse(`curl ${v} reads its options (--engine among them) from a file that cannot be judged`);
      }
      continue;
    }
    for (const letter of v.startsWith("-") ? v.slice(1) : "") {
      if (letter === "K") {
        return refuse(
          `curl ${v}: -K reads its options (--engine among them) from a file that cannot be judged`,
        );
      }
      if (CURL_VALUE_LETTERS.includes(letter)) break;
    }
  }
  return itself({ files: optionFiles(args) });
}

/** The files curl's options name (see the header), with the value word each comes from. */
function optionFiles(args: readonly Arg[]): OptionFile[] {
  const files: OptionFile[] = [];
  const add = (name: string | undefined, value: Arg | undefined) => {
    const f = name && value ? fileOf(name, value) : undefined;
    if (f) files.push(f);
  };
  for (let i = 1; i < args.length; i++) {
    const a = args[i]!;
    const v = a.value;
    if (!a.dynamic && v === "--") break;
    if (a.dynamic || !v.startsWith("-") || v === "-") continue;
    if (v.startsWith("--")) {
      const name = longName(v.slice(2));
      if (name !== undefined) add(name, args[++i]);
      continue;
    }
    for (let k = 1; k < v.length; k++) {
      if (!CURL_VALUE_LETTERS.includes(v[k]!)) continue;
      const name = byLetter(v[k]!);
      if (k + 1 < v.length) add(name, { ...a, value: v.slice(k + 1) });
      else add(name, args[++i]);
      break;
    }
  }
  return files;
}
