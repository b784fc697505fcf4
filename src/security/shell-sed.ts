// security/shell-sed.ts — sed scripts are code: the `e` command and the `s///e` flag run
// the pattern space as a shell command, `w FILE` writes a file and `r FILE` reads one, and
// -i's backup is written beside each file. The script on the command line is read here:
// what runs a command is refused, what writes or reads a file is handed on as a file the
// exec needs, and a script the reader cannot follow (-f, a run-time script) is refused.
// sed --sandbox switches e, w and r off in the script itself, so its text is accepted as is.

import {
  type Arg,
  checkAbbreviation,
  itself,
  type OptionFile,
  refuse,
  type UnfoldStep,
} from "./shell-unfold.js";

/** sed's command line as GNU sed reads it: its scripts, its operands, -i and --sandbox. */
interface SedArgs {
  scripts: { text: string; at: number }[];
  /** Indices of the arguments that are not options (the script first when no -e gives one). */
  operands: number[];
  sandbox: boolean;
  /** -i/--in-place's backup suffix ("" for none); undefined without -i. */
  suffix: string | undefined;
}

/** Reads sed's arguments, or says why the command cannot be judged. */
function readSedArgs(args: readonly Arg[]): SedArgs | string {
  const scripts: { text: string; at: number }[] = [];
  const operands: number[] = [];
  let sandbox = false;
  let suffix: string | undefined;
  // GNU sed permutes its arguments: `sed 1p FILE -e CMD` runs CMD (and reads 1p as a file).
  for (let i = 1; i < args.length; i++) {
    const a = args[i]!;
    const v = a.value;
    if (!a.dynamic && v === "--") {
      for (let k = i + 1; k < args.length; k++) operands.push(k);
      break;
    }
    if (a.dynamic && !a.optionSafe) return `sed with a run-time option or script (${a.value})`;
    if (a.dynamic || !v.startsWith("-") || v === "-") {
      operands.push(i);
      continue;
    }
    if (v.startsWith("--")) {
      const [name, value] = v.slice(2).split(/=(.*)/s) as [string, string | undefined];
      checkAbbreviation(name, SED_LONG);
      if (name === "sandbox") sandbox = true;
      else if (name === "in-place") suffix = value ?? "";
      else if (name === "file") return "sed --file reads its script from a file that cannot be judged";
      else if (name === "expression") {
        if (value !== undefined) scripts.push({ text: value, at: i });
        else {
          if (args[i + 1]?.dynamic) return "sed with a run-time script";
          scripts.push({ text: args[++i]?.value ?? "", at: i });
        }
      } else if (name === "line-length" && value === undefined) i++;
      continue;
    }
    for (let k = 1; k < v.length; k++) {
      const letter = v[k]!;
      if (letter === "i") {
        suffix = v.slice(k + 1); // -i[SUFFIX]: the rest of the cluster is the suffix
        break;
      }
      if (letter === "f") return "sed -f reads its script from a file that cannot be judged";
      if (letter === "e" || letter === "l") {
        const attached = v.slice(k + 1);
        if (attached === "" && args[i + 1]?.dynamic) return "sed with a run-time script";
        const value = attached !== "" ? attached : args[++i]?.value;
        if (letter === "e") scripts.push({ text: value ?? "", at: i });
        break;
      }
    }
  }
  return { scripts, operands, sandbox, suffix };
}

/** The files among sed's operands: all of them when an -e or --expression gives the script. */
const fileOperands = (r: SedArgs): number[] =>
  r.scripts.some((x) => x.at !== r.operands[0]) ? r.operands : r.operands.slice(1);

/**
 * The indices of the arguments `sed -i` edits in place (rewrites: a write), as sed reads its
 * command line: every file operand, wherever -i stands (`sed --expression=S -i F`,
 * `sed --in-place= S F`). Empty without -i, or when the command cannot be judged (refused).
 */
export function sedEditedFiles(args: readonly Arg[]): number[] {
  const r = readSedArgs(args);
  return typeof r === "string" || r.suffix === undefined ? [] : fileOperands(r);
}

/** sed: the script is judged (`e` and `s///e` refused, `w`/`W` files written, `r`/`R` files read); -f refused. */
export function sed(args: Arg[]): UnfoldStep {
  const r = readSedArgs(args);
  if (typeof r === "string") return refuse(r);
  const { scripts, operands, sandbox } = r;
  const suffix = r.suffix ?? "";
  if (scripts.length === 0) {
    const at = operands[0];
    if (at === undefined) return itself();
    const script = args[at]!;
    if (script.dynamic) return refuse(`sed with a script known only at run time (${script.value})`);
    scripts.push({ text: script.value, at });
  }
  const files: OptionFile[] = [];
  // -iSUFFIX renames each file to FILE+SUFFIX first: a write beside it. A `*` in the suffix
  // stands for the file's path as given and a `/` moves the copy to another folder
  // (`-i'../x/*'`), which is refused rather than modelled.
  if (/[*/]/.test(suffix)) {
    return refuse(
      `sed -i with the backup suffix ${JSON.stringify(suffix)} (a * or / puts each file's backup in another folder); use a plain suffix such as .bak`,
    );
  }
  if (suffix !== "") {
    for (const at of fileOperands(r)) {
      const file = args[at]!;
      files.push({ arg: { value: `${file.value}${suffix}`, dynamic: file.dynamic }, write: true });
    }
  }
  // sed joins its -e scripts with newlines and reads them as one (an `a text\` at the end of
  // one continues into the next).
  const read = sandbox ? [] : readSedScript(scripts.map((x) => x.text).join("\n"));
  if (typeof read === "string") return refuse(`the sed script ${read}`);
  // GNU sed writes `w /dev/stdout` and `w /dev/stderr` to its own output, opening no file.
  const own = (f: { path: string; write: boolean }) => f.write && SED_OWN_OUTPUT.includes(f.path);
  files.push(
    ...read.filter((f) => !own(f)).map((f) => ({ arg: { value: f.path, dynamic: false }, write: f.write })),
  );
  return itself({ data: scripts.map((s) => s.at), files });
}

/** Whether the backslashes right before `end` are odd in number (the last one escapes what follows). */
function endsInOddBackslashes(text: string, end: number): boolean {
  let n = 0;
  while (end - n - 1 >= 0 && text[end - n - 1] === "\\") n++;
  return n % 2 === 1;
}

/** The files GNU sed's w and W take as its own stdout and stderr (sed's manual, "Commands"). */
const SED_OWN_OUTPUT = ["/dev/stdout", "/dev/stderr"];

/** GNU sed's long options (an abbreviation of any is refused). */
const SED_LONG = ["quiet", "silent", "debug", "expression", "file", "follow-symlinks", "in-place"].concat(
  ["line-length", "null-data", "zero-terminated", "posix", "regexp-extended", "separate", "sandbox"],
  ["unbuffered", "binary", "help", "version"],
);

/** The files a sed script reads and writes, or why it cannot be accepted. */
function readSedScript(script: string): { path: string; write: boolean }[] | string {
  const files: { path: string; write: boolean }[] = [];
  let i = 0;
  const n = script.length;
  const restOfLine = (): string => {
    const end = script.indexOf("\n", i);
    const text = script.slice(i, end < 0 ? n : end);
    i = end < 0 ? n : end;
    return text.replace(/^[ \t]+/, "");
  };
  const delimited = (delim: string): boolean => {
    for (; i < n; i++) {
      if (script[i] === "\\") i++;
      else if (script[i] === delim) {
        i++;
        return true;
      }
    }
    return false;
  };
  const address = (): boolean => {
    if (/\d/.test(script[i] ?? "")) {
      while (/[\d~]/.test(script[i] ?? "")) i++;
    } else if (script[i] === "$") i++;
    else if (script[i] === "/" || script[i] === "\\") {
      const delim = script[i] === "\\" ? script[++i] : "/";
      i++;
      if (delim === undefined || !delimited(delim)) return false;
      while (/[IM]/.test(script[i] ?? "")) i++;
    }
    return true;
  };
  while (i < n) {
    const ch = script[i]!;
    if (/[\s;}]/.test(ch)) {
      i++;
      continue;
    }
    if (ch === "#") {
      restOfLine();
      continue;
    }
    if (!address()) return "has an unterminated address";
    if (script[i] === ",") {
      i++;
      if (script[i] === "+" || script[i] === "~") i++;
      if (!address()) return "has an unterminated address";
    }
    while (script[i] === " " || script[i] === "\t" || script[i] === "!") i++;
    const cmd = script[i++];
    if (cmd === undefined) return "ends after an address";
    if ("{=dDgGhHnNpPxzF".includes(cmd)) continue;
    if ("lLqQ".includes(cmd)) {
      while (/[\d ]/.test(script[i] ?? "")) i++;
      continue;
    }
    if ("aic".includes(cmd)) {
      // Text to the end of the line; a line ending in an odd number of backslashes continues
      // it (`\\` is an escaped backslash: `a x\\` then a newline ends the text, and sed runs
      // the next line as a command).
      do restOfLine();
      while (endsInOddBackslashes(script, i) && script[i++] === "\n");
      continue;
    }
    if (":btTv".includes(cmd)) {
      while (i < n && script[i] !== "\n" && script[i] !== ";") i++;
      continue;
    }
    if ("rRwW".includes(cmd)) {
      files.push({ path: restOfLine(), write: cmd === "w" || cmd === "W" });
      continue;
    }
    if (cmd === "e") return "runs a command (e)";
    if (cmd === "s" || cmd === "y") {
      const delim = script[i++];
      if (delim === undefined || delim === "\n" || delim === "\\") return `has a malformed ${cmd} command`;
      if (!delimited(delim) || !delimited(delim)) return `has an unterminated ${cmd} command`;
      if (cmd === "y") continue;
      while (i < n && /[gpiImMe\d]/.test(script[i]!)) {
        if (script[i] === "e") return "runs the pattern space as a command (s///e)";
        i++;
      }
      if (script[i] === "w") {
        i++;
        files.push({ path: restOfLine(), write: true });
      }
      continue;
    }
    return `uses the command "${cmd}", which this reader does not know`;
  }
  return files;
}
