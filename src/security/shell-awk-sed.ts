// security/shell-awk-sed.ts — awk and sed programs are code: awk's system(), its pipes to
// and from commands and gawk's extensions run programs; sed's `e` command and `s///e` flag
// run the pattern space as a shell command, and `w FILE` writes a file. The program text
// on the command line is read here: what runs a program is refused (naming it), what
// writes or reads a file is handed on as a file the exec needs, and a program the reader
// cannot follow (a program file, a run-time program) is refused. gawk --sandbox and sed
// --sandbox switch all of that off in the program itself, so their text is accepted as is.

import { type Arg, basename, itself, type OptionFile, refuse, type UnfoldStep } from "./shell-unfold.js";

// --- awk -------------------------------------------------------------------------------

const AWK_VALUE = ["f", "F", "v", "e", "E", "i", "l", "W", "file", "field-separator", "assign", "source"];
const AWK_VALUE_LONG = ["exec", "include", "load"];

/** awk, gawk, mawk, nawk: the program text is judged; program files and extensions are refused. */
export function awk(args: Arg[]): UnfoldStep {
  const gawk = basename(args[0]!.value) === "gawk";
  const texts: { text: string; at: number }[] = [];
  const data: number[] = [];
  let sandbox = false;
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
    const long = v.startsWith("--");
    const eq = v.indexOf("=");
    const name = long ? v.slice(2, eq < 0 ? undefined : eq) : v[1]!;
    const takes = long ? AWK_VALUE.includes(name) || AWK_VALUE_LONG.includes(name) : AWK_VALUE.includes(name);
    let value: string | undefined;
    let valueAt = i;
    if (takes) {
      if (long ? eq >= 0 : v.length > 2) value = long ? v.slice(eq + 1) : v.slice(2);
      else {
        valueAt = ++i;
        if (args[i]?.dynamic) return refuse(`awk with a run-time option value (${args[i]!.value})`);
        value = args[i]?.value ?? "";
      }
    }
    if (["f", "file", "E", "exec", "i", "include"].includes(name)) {
      return refuse(`awk ${v} reads its program from a file, which cannot be judged with the command`);
    }
    if (name === "l" || name === "load") return refuse(`awk ${v} loads a compiled extension`);
    if (name === "W" && !/^(v|version|d|dump|h|help|u|usage)/.test(value ?? "")) {
      return refuse(`awk -W ${value} (an implementation option that cannot be judged)`);
    }
    if (name === "e" || name === "source") texts.push({ text: value ?? "", at: valueAt });
    else if (takes) data.push(valueAt);
    if (gawk && (name === "S" || name === "sandbox" || (!long && v.slice(1).includes("S") && !takes))) {
      sandbox = true;
    }
  }
  if (texts.length === 0) {
    const program = args[i];
    if (program === undefined) return itself();
    if (program.dynamic) return refuse(`awk with a program known only at run time (${program.value})`);
    texts.push({ text: program.value, at: i });
  }
  for (const t of texts) {
    data.push(t.at);
    const why = sandbox ? undefined : awkRunsPrograms(t.text);
    if (why) return refuse(`the awk program ${why}; use gawk --sandbox, or run the command directly`);
  }
  return itself({ data });
}

/** Why an awk program may run other programs, or undefined. Strings, regexes and comments are skipped. */
function awkRunsPrograms(text: string): string | undefined {
  let code = "";
  let prev = "";
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '"') {
      i = skipQuoted(text, i, '"');
      code += " S ";
      prev = "S";
      continue;
    }
    if (ch === "#") {
      while (i < text.length && text[i] !== "\n") i++;
      code += "\n";
      prev = "";
      continue;
    }
    // `/` starts a regex only where an operand is expected; elsewhere it divides.
    if (ch === "/" && (prev === "" || /[(,{;!~&|?:=\n]$/.test(prev))) {
      i = skipRegex(text, i);
      code += " R ";
      prev = "R";
      continue;
    }
    code += ch;
    if (!/\s/.test(ch)) prev = ch;
  }
  if (/\bsystem\b/.test(code)) return "calls system()";
  if (/\|/.test(code.replace(/\|\|/g, ""))) return "pipes to or from a command (|)";
  if (code.includes("@")) return "uses a gawk @-directive or an indirect call";
  return undefined;
}

function skipQuoted(text: string, from: number, quote: string): number {
  for (let i = from + 1; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === quote) return i;
  }
  return text.length;
}

function skipRegex(text: string, from: number): number {
  let bracket = false;
  for (let i = from + 1; i < text.length; i++) {
    const ch = text[i];
    if (ch === "\\") i++;
    else if (ch === "[") bracket = true;
    else if (ch === "]") bracket = false;
    else if (ch === "/" && !bracket) return i;
    else if (ch === "\n") return i;
  }
  return text.length;
}

// --- sed -------------------------------------------------------------------------------

/** sed: the script is judged (`e` and `s///e` refused, `w`/`W` files written, `r`/`R` files read); -f refused. */
export function sed(args: Arg[]): UnfoldStep {
  const scripts: { text: string; at: number }[] = [];
  let sandbox = false;
  let i = 1;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a.dynamic) return refuse(`sed with a run-time option or script (${a.value})`);
    const v = a.value;
    if (v === "--") {
      i++;
      break;
    }
    if (!v.startsWith("-") || v === "-") break;
    if (v.startsWith("--")) {
      const [name, value] = v.slice(2).split(/=(.*)/s) as [string, string | undefined];
      if (name === "sandbox") sandbox = true;
      else if (name === "file")
        return refuse("sed --file reads its script from a file that cannot be judged");
      else if (name === "expression") {
        if (value !== undefined) scripts.push({ text: value, at: i });
        else scripts.push({ text: args[++i]?.value ?? "", at: i });
      } else if (name === "line-length" && value === undefined) i++;
      continue;
    }
    for (let k = 1; k < v.length; k++) {
      const letter = v[k]!;
      if (letter === "i") break; // -i[SUFFIX]: the rest of the cluster is the suffix
      if (letter === "f") return refuse("sed -f reads its script from a file that cannot be judged");
      if (letter === "e" || letter === "l") {
        const attached = v.slice(k + 1);
        const value = attached !== "" ? attached : args[++i]?.value;
        if (attached === "" && args[i]?.dynamic) return refuse("sed with a run-time script");
        if (letter === "e") scripts.push({ text: value ?? "", at: i });
        break;
      }
    }
  }
  if (scripts.length === 0) {
    const script = args[i];
    if (script === undefined) return itself();
    if (script.dynamic) return refuse(`sed with a script known only at run time (${script.value})`);
    scripts.push({ text: script.value, at: i });
  }
  const files: OptionFile[] = [];
  for (const s of scripts) {
    if (sandbox) continue;
    const read = readSedScript(s.text);
    if (typeof read === "string") return refuse(`the sed script ${read}`);
    files.push(...read.map((f) => ({ arg: { value: f.path, dynamic: false }, write: f.write })));
  }
  return itself({ data: scripts.map((s) => s.at), files });
}

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
      // Text to the end of the line; a line ending in a backslash continues it.
      do restOfLine();
      while (script[i - 1] === "\\" && script[i++] === "\n");
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
