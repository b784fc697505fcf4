// security/shell-awk.ts — awk programs are code: system(), pipes to and from commands and
// gawk's extensions run programs, and getline <, print > and ARGV open files of the
// program's choosing. The program text on the command line is read here: what runs a
// program or opens a file is refused (naming it; a file's name is often an expression), and
// a program the reader cannot follow (a program file, a run-time program) is refused.
// gawk --sandbox switches all of that off in the program itself, so its text is accepted as is.

import {
  type Arg,
  basename,
  checkAbbreviation,
  itself,
  type OptionFile,
  refuse,
  type UnfoldStep,
} from "./shell-unfold.js";

// --- awk -------------------------------------------------------------------------------

/** Short options that take a value (gawk, mawk, original-awk). */
const AWK_VALUE = ["f", "F", "v", "e", "E", "i", "l", "W"];
/** gawk's short options whose value is optional and only attached (`-d[file]`). */
const AWK_OPTIONAL = ["d", "D", "L", "o", "p"];
/**
 * gawk's options that write a file, named attached (`-o/F`, `--profile=F`) or by default in
 * the working folder: -d/--dump-variables (awkvars.out), -p/--profile and -o/--pretty-print
 * (awkprof.out). The image's awk is gawk.
 */
const AWK_WRITES: Record<string, string> = {
  d: "awkvars.out",
  "dump-variables": "awkvars.out",
  p: "awkprof.out",
  profile: "awkprof.out",
  o: "awkprof.out",
  "pretty-print": "awkprof.out",
};
/** gawk's long options that take a value. */
const AWK_VALUE_LONG = ["file", "field-separator", "assign", "source", "exec", "include", "load"];
/** gawk's other long options (an abbreviation of any long option is refused). */
const AWK_LONG = [...AWK_VALUE_LONG].concat(
  ["characters-as-bytes", "traditional", "copyright", "debug", "dump-variables", "gen-pot", "help", "lint"],
  ["bignum", "use-lc-numeric", "non-decimal-data", "optimize", "profile", "posix", "pretty-print"],
  ["re-interval", "no-optimize", "sandbox", "lint-old", "version", "csv"],
);

/** awk, gawk, mawk, nawk: the program text is judged; program files and extensions are refused. */
export function awk(args: Arg[]): UnfoldStep {
  const name0 = basename(args[0]!.value);
  const gawk = name0 === "gawk";
  // `awk` is gawk in the image: its -d, -o and -p take a file attached, which they write.
  const optionalFile = gawk || name0 === "awk";
  const texts: { text: string; at: number }[] = [];
  const data: number[] = [];
  let sandbox = false;
  const opts: { name: string; value: string | undefined; at: number; shown: string }[] = [];
  let i = 1;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a.dynamic) return refuse(`awk with a run-time option or program (${a.value})`);
    const v = a.value;
    if (v === "--") {
      i++;
      break;
    }
    if (!v.startsWith("-") || v === "-") break;
    if (v.startsWith("--")) {
      const eq = v.indexOf("=");
      const name = v.slice(2, eq < 0 ? undefined : eq);
      checkAbbreviation(name, AWK_LONG);
      let value: string | undefined;
      let at = i;
      if (eq >= 0) value = v.slice(eq + 1);
      else if (AWK_VALUE_LONG.includes(name)) {
        at = ++i;
        if (args[i]?.dynamic) return refuse(`awk with a run-time option value (${args[i]!.value})`);
        value = args[i]?.value ?? "";
      }
      opts.push({ name, value, at, shown: v });
      continue;
    }
    // A cluster, as getopt reads it: `-bf FILE` is -b and -f FILE.
    for (let k = 1; k < v.length; k++) {
      const letter = v[k]!;
      if (AWK_OPTIONAL.includes(letter) && optionalFile) {
        opts.push({ name: letter, value: v.slice(k + 1), at: i, shown: v });
        break;
      }
      if (!AWK_VALUE.includes(letter)) {
        opts.push({ name: letter, value: undefined, at: i, shown: v });
        continue;
      }
      let value = v.slice(k + 1);
      let at = i;
      if (value === "") {
        at = ++i;
        if (args[i]?.dynamic) return refuse(`awk with a run-time option value (${args[i]!.value})`);
        value = args[i]?.value ?? "";
      }
      opts.push({ name: letter, value, at, shown: v });
      break;
    }
  }
  const files: OptionFile[] = [];
  for (const o of opts) {
    const { name, value } = o;
    const written = AWK_WRITES[name];
    if (written !== undefined) files.push({ arg: { value: value || written, dynamic: false }, write: true });
    if (["f", "file", "E", "exec", "i", "include"].includes(name)) {
      return refuse(`awk ${o.shown} reads its program from a file, which cannot be judged with the command`);
    }
    if (name === "l" || name === "load") return refuse(`awk ${o.shown} loads a compiled extension`);
    if (name === "W" && !/^(v|version|d|dump|h|help|u|usage)/.test(value ?? "")) {
      return refuse(`awk -W ${value} (an implementation option that cannot be judged)`);
    }
    if (name === "e" || name === "source") texts.push({ text: value ?? "", at: o.at });
    else if (value !== undefined && o.at !== -1 && !AWK_OPTIONAL.includes(name)) data.push(o.at);
    if (gawk && (name === "S" || name === "sandbox")) sandbox = true;
  }
  if (texts.length === 0) {
    const program = args[i];
    if (program === undefined) return itself();
    if (program.dynamic) return refuse(`awk with a program known only at run time (${program.value})`);
    texts.push({ text: program.value, at: i });
  }
  for (const t of texts) {
    data.push(t.at);
    if (sandbox) continue;
    const read = [awkCode(t.text, false), awkCode(t.text, true)];
    const why = read.map(awkRunsPrograms).find((w) => w !== undefined);
    if (why) return refuse(`the awk program ${why}; use gawk --sandbox, or run the command directly`);
    const file = read.map(awkOpensFiles).find((w) => w !== undefined);
    if (file) {
      return refuse(
        `the awk program ${file}, which the command does not name; give awk its files as operands and redirect its output with the shell, or use gawk --sandbox`,
      );
    }
  }
  return itself({ data, files });
}

/** Keywords after which awk reads `/` as the start of a regex (`print /x/`), not a division. */
const AWK_BEFORE_REGEX = new Set(["print", "printf", "return", "in", "do", "else", "getline"]);

/**
 * Where a `/` right after `text[..i]` stands: "regex" where an operand is expected, "either"
 * after `)` or a keyword (`if (x) /re/` and `print /re/`, but `(a) / b`), "division" after
 * any other operand.
 */
function slashAt(text: string, i: number): "regex" | "either" | "division" {
  let k = i - 1;
  while (k >= 0 && (text[k] === " " || text[k] === "\t")) k--;
  if (k < 0 || /[(,{;!~&|?:=\n]/.test(text[k]!)) return "regex";
  if (text[k] === ")") return "either";
  if (!/[A-Za-z0-9_]/.test(text[k]!)) return "division";
  let w = k;
  while (w > 0 && /[A-Za-z0-9_]/.test(text[w - 1]!)) w--;
  return AWK_BEFORE_REGEX.has(text.slice(w, k + 1)) ? "either" : "division";
}

/**
 * Why an awk program may run other programs, or undefined. Strings, regexes and comments are
 * skipped. Whether a `/` starts a regex depends on awk's grammar (`print /#/` is a regex,
 * `(a) /# b/` a division), not only on the characters around it, so a program with such a
 * `/` is read twice, with it taken as a division and as a regex; what either reading finds
 * is refused. (A `#` read as a comment in a regex hid `print /#/; system("id")`.)
 */
/** An awk program with its strings as ` S<n> ` (their texts in `strings`) and regexes as ` R `, or why it cannot be read. */
interface AwkCode {
  code: string;
  strings: string[];
}

function awkCode(text: string, eitherIsRegex: boolean): AwkCode | string {
  let code = "";
  const strings: string[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '"') {
      const end = skipQuoted(text, i, '"');
      strings.push(text.slice(i + 1, end));
      code += ` S${strings.length - 1} `;
      i = end;
      continue;
    }
    if (ch === "#") {
      while (i < text.length && text[i] !== "\n") i++;
      code += "\n";
      continue;
    }
    const slash = ch === "/" ? slashAt(text, i) : undefined;
    if (slash === "regex" || (slash === "either" && eitherIsRegex)) {
      const end = skipRegex(text, i);
      if (typeof end === "string") return end;
      i = end;
      code += " R ";
      continue;
    }
    code += ch;
  }
  return { code, strings };
}

function awkRunsPrograms(read: AwkCode | string): string | undefined {
  if (typeof read === "string") return read;
  const { code } = read;
  if (/\bsystem\b/.test(code)) return "calls system()";
  if (/\|/.test(code.replace(/\|\|/g, ""))) return "pipes to or from a command (|)";
  if (code.includes("@")) return "uses a gawk @-directive or an indirect call";
  return undefined;
}

/** Where print and printf may write besides their output: the program's own stdout and stderr. */
const AWK_OWN_OUTPUT = new Set(["/dev/stdout", "/dev/stderr"]);

/**
 * Why an awk program may open a file of its own choosing, or undefined: `getline [var] < F`
 * reads F, `print ... > F` and `>> F` write F (in a print statement an unparenthesized `>`
 * is always a redirection: a comparison there needs parentheses), and ARGV names the files
 * awk reads as input, which the program may change. None of it is judged as a path, so it
 * is refused; `> "/dev/stderr"` is the program's own output.
 */
function awkOpensFiles(read: AwkCode | string): string | undefined {
  if (typeof read === "string") return read;
  const { code, strings } = read;
  if (/\bARGV\b/.test(code)) return "uses ARGV (the files awk reads, which the program can change)";
  if (/\bgetline\s*(\$\s*\(|(\$?\s*(\w+|\d+)(\s*\[[^\]]*\])?)?\s*<)/.test(code)) {
    return "reads a file it names (getline <)";
  }
  for (const m of code.matchAll(/\bprintf?\b/g)) {
    let depth = 0;
    for (let i = m.index + m[0].length; i < code.length; i++) {
      const ch = code[i]!;
      if (ch === "(" || ch === "[") depth++;
      else if (ch === ")" || ch === "]") depth--;
      else if (depth <= 0 && (ch === ";" || ch === "\n" || ch === "}")) break;
      else if (depth <= 0 && ch === ">") {
        const target = /^>?\s*S(\d+)\s*(;|\n|}|$)/.exec(code.slice(i + 1));
        if (target && AWK_OWN_OUTPUT.has(strings[Number(target[1])]!)) break;
        return "writes a file it names (print > or >>)";
      }
    }
  }
  return undefined;
}

function skipQuoted(text: string, from: number, quote: string): number {
  for (let i = from + 1; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === quote) return i;
  }
  return text.length;
}

/**
 * The end of the regex starting at `from`, or why it cannot be read. Inside a bracket
 * expression `/` does not end the regex; awks differ on `]` first and on backslashes and
 * `[:class:]` there, so a bracket holding a `/`, a quote, a `#`, a backslash, or a `]`
 * first (other than after `[:alpha:]`-style classes) is refused rather than guessed.
 */
function skipRegex(text: string, from: number): number | string {
  for (let i = from + 1; i < text.length; i++) {
    const ch = text[i];
    if (ch === "\\") i++;
    else if (ch === "/" || ch === "\n") return i;
    else if (ch === "[") {
      let k = i + 1;
      if (text[k] === "^") k++;
      if (text[k] === "]") return "has a bracket expression starting with ], which awks read differently";
      for (; k < text.length && text[k] !== "]"; k++) {
        const c = text[k]!;
        if (c === "[" && text[k + 1] === ":") {
          const close = text.indexOf(":]", k + 2);
          if (close < 0) return "has an unterminated [: :] class";
          k = close + 1;
        } else if ('/\\"#[\n'.includes(c)) {
          return `has a bracket expression holding ${JSON.stringify(c)}, which awks read differently`;
        }
      }
      i = k;
    }
  }
  return text.length;
}
