// tools/exec-values.ts — the values a shell variable of an exec command may hold, as the judge
// knows them before it runs: every value the command gives it (an assignment on its own, one
// before a command, a for loop's words, export/readonly/local, a `sh -c CODE NAME ARGS`
// positional), and the setters whose value is known only at run time (`read d`, `getopts o d`,
// `${d:=V}`). Removals (exec-removals.ts) and every other site a path is judged at (what is
// written, redirected, cd'd into: exec-paths.ts boundWords) take a variable's values from here:
// judged by its fixed prefix only, `sh -c 'cp E "$1"' _ D`, `d=D; cp E "$d"` and `d=V; echo x >
// "$d/f"` wrote past the operator's deny rules and, with `sandbox.landlock: off`, outside every
// grant; `sh -c 'cd "$1" && cat k' _ V` read past them.

import { AidoError, ErrorCode } from "../errors.js";
import type { CommandAnalysis } from "../security/shell.js";
import { commandName } from "../security/shell-operands.js";

/** How many variables deep a value is followed (`a=~; b=$a`). */
export const MAX_VAR_CHAIN = 4;

/**
 * Most words one run-time word may stand for through its variables. Each variable may have
 * many values and each value may name it again (`v=$v/a; v=$v/b; …`): followed
 * MAX_VAR_CHAIN deep, 20 such assignments made 3.2 million words and held the daemon's event
 * loop for 9 s, 40 for minutes. Past this the word is refused as unjudgeable.
 */
export const MAX_BOUND_WORDS = 256;

/** The refusal of a word the judge cannot know before the run: `what` it names, the word as written, why. */
export function unjudgeable(what: string, written: string, why: string): AidoError {
  return new AidoError(ErrorCode.policyDenied, `cannot judge ${what} ("${written}"): ${why}; give the path`, {
    rule: "unjudgeable",
  });
}

/** A value as written, its double quotes taken off (`d="$HOME/x"`: `$HOME/x`). */
export const bareValue = (value: string): string => value.replace(/^"([^"]*)"$/, "$1");

/** Counts the words a run-time word stands for; refuses it past MAX_BOUND_WORDS. */
export function boundCounter(written: string, site: string): (n: number) => void {
  let total = 0;
  return (n) => {
    total += n;
    if (total > MAX_BOUND_WORDS)
      throw unjudgeable(site, written, `its variables' values make more than ${MAX_BOUND_WORDS} paths`);
  };
}

/**
 * Every value, as written, the command assigns to the shell variable `name`: CommandAnalysis
 * assignedValues, export/readonly/local arguments, and the settings before a command (`d=D
 * sh -c 'cp E "$d"'` hands the code D; `d=D :` sets the shell's own, a special builtin's); and
 * those the code sharing its shell gives it (CommandAnalysis.sharedShell: `. ./s.sh; cp E "$d"`
 * with s.sh `d=D` was judged as if d had no value, its text: a write past the deny rules).
 */
export function valuesOf(name: string, analysis: CommandAnalysis): string[] {
  const values = [analysis, ...(analysis.sharedShell ?? []).map((s) => s.analysis)].flatMap((a) =>
    ownValues(name, a),
  );
  return [...new Set(values)];
}

function ownValues(name: string, analysis: CommandAnalysis): string[] {
  const declared = analysis.commands.flatMap((c) =>
    ["export", "readonly", "local"].includes(commandName(c)) ? c.argv.slice(1) : [],
  );
  const before = analysis.commands.flatMap((c) => c.assigns);
  // "$@" and "$*" are every positional parameter from $1 on.
  const all = name === "@" || name === "*";
  return [...analysis.assignedValues, ...declared, ...before].flatMap((a) =>
    a.startsWith(`${name}=`) || (all && /^[1-9][0-9]*=/.test(a)) ? [a.slice(a.indexOf("=") + 1)] : [],
  );
}

/**
 * What sets the shell variable `name` to a value known only at run time: `read` (its input),
 * `getopts` (the option letter it finds), `${name:=V}`/`${name=V}` (V only when it was unset or
 * empty, which is not followed), in the command or in code sharing its shell (a script it
 * sources); undefined when nothing does. (A command named only at run time, `eval "$c"`, which
 * may be any of them, is refused by the policy's dynamic-command rule.)
 */
export function setAtRunTime(name: string, analysis: CommandAnalysis): string | undefined {
  const own = ownSetter(name, analysis);
  if (own !== undefined) return own;
  for (const s of analysis.sharedShell ?? []) {
    const setter = ownSetter(name, s.analysis);
    if (setter !== undefined) return `${setter} in ${s.what}`;
  }
  return undefined;
}

function ownSetter(name: string, analysis: CommandAnalysis): string | undefined {
  const setter = analysis.commands.find((c) => {
    const program = commandName(c);
    if (program === "read") return c.argv.slice(1).includes(name);
    // getopts sets the variable it names, and OPTARG and OPTIND (`cat "$OPTARG"`).
    return program === "getopts" && (c.argv[2] === name || name === "OPTARG" || name === "OPTIND");
  });
  if (setter !== undefined) return commandName(setter);
  if (/^[A-Za-z_]/.test(name) && new RegExp(`\\$\\{${name}:?=`).test(analysis.source))
    return `\${${name}:=...}`;
  return undefined;
}

/** A plain use of a variable or positional parameter in a word: `$d`, `${d}`, `$1`, `${10}`, `$@`. */
const PLAIN_USE = /\$(?:\{([A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*])\}|([A-Za-z_][A-Za-z0-9_]*|[0-9@*]))/g;

/**
 * A use of a variable with an operator, to the first closing brace: `${f%.md}`, `${d:-x}`
 * (name, operator and its word), `${#d}` (name only).
 */
const OPERATOR_USE =
  /\$\{([A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*])([^}A-Za-z0-9_][^}]*)\}|\$\{#([A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*])\}/g;

/** A value known only at run time (a glob, an expansion, a substitution). */
const RUN_TIME_VALUE = /[$`*?[\]~]/;

/** Any use of a variable, plain or with an operator (`${d%%x}`, `${d:-}`, `${#d}`), and its name. */
const ANY_USE = /\$\{?#?([A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*])/g;

/** Variables an exec starts with set to a folder that is not a system one. */
const START_NOT_EMPTY: ReadonlySet<string> = new Set(["HOME", "TMPDIR", "PWD", "OLDPWD"]);

/**
 * The values of the variable `name` (`values`, as valuesOf gives them) with its uses of itself
 * followed: `d=/w/a; d=$d/sub`, `p=$p:/x`, `for x in a b; do d=$d/$x; done`. Before, such a value
 * was followed as another variable's would be, until MAX_VAR_CHAIN refused it (`d=$d/sub` under a
 * grant was refused as a chain). A value that uses `name` (plainly: `$d`, `${d}`) stands for
 * itself with each other value put in, again up to as many times as there are such values (in any
 * order: sound for straight code whatever the order of its assignments); since a loop or a function
 * called again may apply one any number of times, each is also judged as a glob of all it may
 * grow to, known before the run up to where it grows: one that starts with the variable
 * (`$d/sub`) as the value it starts from, the text up to its next use and a `*` (`/w/a/sub*`);
 * one with text in front (`/x:$d`) as that text and a `*`. Refused as unjudgeable, the word and
 * `site` named: HOME, TMPDIR, PWD or OLDPWD extending only itself (from its value at the start,
 * not followed here), more than MAX_BOUND_WORDS values.
 */
function extendedValues(
  name: string,
  values: readonly string[],
  count: (n: number) => void,
  written: string,
  site: string,
): string[] {
  // A value with single quotes, a backslash or a backquote is not followed (the use judged later refuses it).
  const uses = (v: string) =>
    /['\\`]/.test(v)
      ? []
      : [...v.replaceAll('"', "").matchAll(PLAIN_USE)].filter((m) => (m[1] ?? m[2]) === name);
  const extending = values.filter((v) => uses(v).length > 0);
  if (extending.length === 0) return [...values];
  const bases = values.filter((v) => uses(v).length === 0);
  // Given no value of its own (`LIBS=$LIBS:/w/lib`), it starts empty: the exec's environment
  // sets no variable but HOME and TMPDIR to a folder the agent's grants decide (the rest are
  // system folders and settings), and PWD and OLDPWD move with cd.
  if (bases.length === 0 && START_NOT_EMPTY.has(name))
    throw unjudgeable(
      site,
      written,
      `${name} extends itself from the value it starts with, which is not followed`,
    );
  if (bases.length === 0) bases.push("");
  const put = (v: string, value: string) =>
    v
      .replaceAll('"', "")
      .replace(PLAIN_USE, (use, a?: string, b?: string) => ((a ?? b) === name ? value : use));
  const all = new Set(bases);
  let last = [...bases];
  for (let step = 0; step < extending.length && last.length > 0; step++) {
    // Counted before they are made: 40 `d=$d/aN` would make 1,600 at the second step.
    count(extending.length * last.length);
    const next = extending.flatMap((v) => last.map((w) => put(v, w))).filter((w) => !all.has(w));
    for (const w of next) all.add(w);
    last = [...new Set(next)];
  }
  // What each may grow to when applied again and again, as a glob of its known start.
  count(extending.length * bases.length);
  for (const v of extending) {
    const text = v.replaceAll('"', "");
    const first = uses(v)[0]!;
    const start = first.index ?? 0;
    if (start > 0) {
      all.add(`${text.slice(0, start)}*`);
      continue;
    }
    const next = uses(v)[1]?.index ?? text.length;
    const head = text.slice(first[0].length, next);
    for (const b of bases) all.add(`${b}${head}*`);
  }
  return [...all];
}

/** No path is longer than this (PATH_MAX): a word past it through its values is refused, not judged. */
const MAX_WORD = 4096;

/** What the command gives a variable, looked up once per command (each look-up scans it whole). */
interface Bound {
  values: string[];
  setter: string | undefined;
}
const BOUND = new WeakMap<CommandAnalysis, Map<string, Bound>>();

function boundOf(name: string, analysis: CommandAnalysis): Bound {
  const known = BOUND.get(analysis) ?? new Map<string, Bound>();
  BOUND.set(analysis, known);
  let b = known.get(name);
  if (b === undefined) {
    b = { values: valuesOf(name, analysis).map(bareValue), setter: setAtRunTime(name, analysis) };
    known.set(name, b);
  }
  return b;
}

/** A shell pattern (`*`, `?`, literal text) as a whole-string RegExp; undefined for one this does not follow. */
function patternRegExp(pattern: string): RegExp | undefined {
  if (/[[\]\\'"`$]/.test(pattern)) return undefined;
  const body = [...pattern]
    .map((c) => (c === "*" ? "[^]*" : c === "?" ? "[^]" : c.replace(/[.+^${}()|]/g, "\\$&")))
    .join("");
  return new RegExp(`^${body}$`);
}

/** `${v%P}`, `${v%%P}`, `${v#P}`, `${v##P}` of a known value `v`. */
function trimmed(v: string, op: string, re: RegExp): string {
  const cuts = [...Array(v.length + 1).keys()];
  const order = op.length === 2 ? cuts.reverse() : cuts;
  for (const k of order) {
    if (op[0] === "%" && re.test(v.slice(v.length - k))) return v.slice(0, v.length - k);
    if (op[0] === "#" && re.test(v.slice(0, k))) return v.slice(k);
  }
  return v;
}

/**
 * The words a run-time word stands for through the variables it uses (`"$d"`, `"$1"`,
 * `"$d/f"`, `"/$d"`, `"${d}t/f"`, `"$d"x`, `"$a$b"`, `"${FREE}/$f"`): every plain use of a
 * variable the command gives values (valuesOf) replaced by each of them, every combination,
 * followed through values that use variables again, a value's double quotes taken off
 * (`d="$HOME/x"`: `$HOME/x`, judged where HOME leads). An operator on such a variable is
 * applied: `${d:-X}` is each value or X, `${d:+X}` nothing or X, `${f%.txt}` (`%%`, `#`, `##`,
 * a pattern of text, `*` and `?`) each value trimmed; over a value known only at run time
 * (`for f in /w/*.md`) a suffix of text without `/` is trimmed within the value's last part
 * (`/w/*`). An operator on a variable the command gives no value, holding a use of one it does
 * (`${a:-$b}`), is the variable's text or its word. An unquoted word whose value has blanks is
 * also each of its fields. Undefined when the word uses no variable the command gives a value
 * (its text is judged as it is: `$HOME/x`, `*.txt`). Refused as unjudgeable, the word and
 * `site` named: a variable set at run time (setAtRunTime); one the command gives values used
 * in a form this does not follow (`${#d}`, a pattern with `[`, a prefix trimmed off a run-time
 * value, inside single quotes or after a backslash: judged as text, each wrote past the deny
 * rules); IFS set; values that name each other deeper than MAX_VAR_CHAIN; more than
 * MAX_BOUND_WORDS words; a word longer than any path.
 */
export function boundWords(written: string, analysis: CommandAnalysis, site: string): string[] | undefined {
  const count = boundCounter(written, site);
  const valued = (name: string): boolean => {
    const b = boundOf(name, analysis);
    if (b.setter !== undefined) throw unjudgeable(site, written, `${b.setter} sets ${name} at run time`);
    return b.values.length > 0;
  };
  const notFollowed = (names: string[]) =>
    unjudgeable(
      site,
      written,
      `it uses ${[...new Set(names)].join(", ")}, which the command gives values, in a form the judge does not follow`,
    );
  // Each variable's values with its uses of itself followed (extendedValues), made once.
  const selfResolved = new Map<string, string[]>();
  const resolved = (name: string): string[] => {
    let values = selfResolved.get(name);
    if (values === undefined) {
      // A value that is an operator on the variable itself (`dir="${dir%/}"`, `p="${p%@*}"`)
      // stands for the operator applied to its other values, again up to once per such value
      // (followed as its own use, it named itself until the chain was refused).
      const raw = boundOf(name, analysis).values;
      const own = new RegExp(`^\\$\\{${name.replace(/[@*]/, "\\$&")}([%#][^}]*)\\}$`);
      const ops = raw.flatMap((v) => own.exec(v)?.[1] ?? []);
      values = extendedValues(
        name,
        raw.filter((v) => !own.test(v)),
        count,
        written,
        site,
      );
      const all = new Set(values);
      let last = values;
      for (let step = 0; step < ops.length && last.length > 0; step++) {
        count(ops.length * last.length);
        last = ops.flatMap((op) => trimEach(name, op, last)).filter((w) => !all.has(w));
        for (const w of last) all.add(w);
      }
      values = [...all];
      selfResolved.set(name, values);
    }
    return values;
  };
  /** What an operator use of `name` (valued, or holding a valued use in `op`) stands for. */
  const applied = (name: string, op: string | undefined): string[] => {
    if (op === undefined) throw notFollowed([name]); // ${#d}
    const values = valued(name) ? resolved(name) : [`\${${name}}`];
    const word = /^:?[-+?]/.exec(op) ? op.slice(op.startsWith(":") ? 2 : 1) : undefined;
    if (op.startsWith(":-") || op.startsWith("-")) return [...values, word as string];
    if (op.startsWith(":+") || op.startsWith("+")) return ["", word as string];
    if (op.startsWith(":?") || op.startsWith("?")) return values;
    if (!valued(name)) throw notFollowed([name]);
    return trimEach(name, op, values);
  };
  /** `${name%P}` (`%%`, `#`, `##`) of each of `values`. */
  function trimEach(name: string, op: string, values: readonly string[]): string[] {
    const trim = /^(%%?|##?)(.*)$/s.exec(op);
    const re = trim ? patternRegExp(trim[2] as string) : undefined;
    if (trim === null || re === undefined) throw notFollowed([name]);
    const how = trim[1] as string;
    return values.flatMap((v) => {
      if (v.length > MAX_WORD) throw unjudgeable(site, written, `a value of ${name} is longer than any path`);
      if (!RUN_TIME_VALUE.test(v)) return [trimmed(v, how, re)];
      // A run-time value: only a suffix of text without `/` stays inside its last part.
      const text = trim[2] as string;
      if (how[0] !== "%" || /[/*?]/.test(text)) {
        // A value of the environment (`${HTTP_PROXY#*:}`: a variable the command gives none,
        // not HOME, TMPDIR or the shell's folder) is judged as its text, as its plain use is:
        // cut, it is no better known.
        const lead = /^"?\$\{?([A-Za-z_][A-Za-z0-9_]*)/.exec(v)?.[1];
        if (lead !== undefined && !valued(lead) && !START_NOT_EMPTY.has(lead)) return [v];
        throw notFollowed([name]);
      }
      if (v.endsWith(text)) return [v.slice(0, v.length - text.length)];
      // Its run-time end may end with the text: the value as it is, or cut in its last part.
      const fixed = v.slice(0, v.search(RUN_TIME_VALUE));
      return [v, `${fixed.slice(0, fixed.lastIndexOf("/") + 1)}*`];
    });
  }
  if (![...written.matchAll(ANY_USE)].some((m) => valued(m[1] as string))) return undefined;
  const expand = (word: string, depth: number): string[] => {
    const uses = [...word.matchAll(ANY_USE)].filter((m) => valued(m[1] as string));
    if (uses.length === 0) return [word.replaceAll('"', "")];
    if (depth > MAX_VAR_CHAIN)
      throw unjudgeable(
        site,
        written,
        `its variables name each other (or themselves) more than ${MAX_VAR_CHAIN} deep`,
      );
    if (/['\\`]/.test(word)) throw notFollowed(uses.map((m) => m[1] as string));
    // Each part of the word a variable stands for, with what it may be.
    const spans: { at: number; end: number; values: string[] }[] = [];
    const ops = [...word.matchAll(OPERATOR_USE)];
    for (const m of ops) {
      const name = (m[1] ?? m[3]) as string;
      const holds = [...(m[2] ?? "").matchAll(ANY_USE)].some((u) => valued(u[1] as string));
      if (!valued(name) && !holds) continue; // a variable of the environment: judged as its text
      // A valued use inside a trim's pattern: what it removes is not followed.
      if (holds && !/^:?[-+?]/.test(m[2] ?? "")) throw notFollowed([name]);
      const at = m.index ?? 0;
      spans.push({ at, end: at + m[0].length, values: applied(name, m[2]) });
    }
    const inOp = (i: number) => ops.some((m) => i >= (m.index ?? 0) && i < (m.index ?? 0) + m[0].length);
    for (const m of word.matchAll(PLAIN_USE)) {
      const name = (m[1] ?? m[2]) as string;
      const at = m.index ?? 0;
      if (inOp(at) || !valued(name)) continue;
      spans.push({ at, end: at + m[0].length, values: resolved(name) });
    }
    // Every valued use must lie in a span followed above.
    const lost = uses.filter((m) => !spans.some((s) => (m.index ?? 0) >= s.at && (m.index ?? 0) < s.end));
    if (lost.length > 0) throw notFollowed(lost.map((m) => m[1] as string));
    spans.sort((x, y) => x.at - y.at);
    let words = [""];
    let at = 0;
    for (const span of spans) {
      const fixed = word.slice(at, span.at);
      count(words.length * span.values.length);
      words = words.flatMap((w) => span.values.map((v) => w + fixed + v));
      at = span.end;
    }
    words = words.map((w) => (w + word.slice(at)).replaceAll('"', ""));
    if (words.some((w) => w.length > MAX_WORD))
      throw unjudgeable(site, written, "its variables' values make a word longer than any path");
    const unquoted = !written.includes('"');
    // The command sets IFS: an unquoted use splits at characters this does not follow.
    if (
      unquoted &&
      (boundOf("IFS", analysis).values.length > 0 || boundOf("IFS", analysis).setter !== undefined)
    )
      throw unjudgeable(site, written, "the command sets IFS, which splits an unquoted use at run time");
    const all = words.flatMap((w) => {
      const fields = unquoted && /\s/.test(w) ? w.split(/\s+/).filter((f) => f !== "") : [];
      count(fields.length);
      return [w, ...fields];
    });
    return all.flatMap((w) => expand(w, depth + 1));
  };
  return expand(written, 0);
}
