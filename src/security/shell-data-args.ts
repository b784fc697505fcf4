// security/shell-data-args.ts — the arguments that are data, not paths: grep's and jq's
// patterns and filters, what echo, printf and expr print, the code after python3 -c, node -e
// and perl -e (prove's and pdb3's too: the interpreters under other names). The exec tool does not judge them as files (a pattern `a/b` names nothing).
// Interpreters run whatever their program says: their exec grant decides, and Landlock bounds
// them. shell-programs.ts puts these in its table; their options run no program.

import { itself, scanOptions, type Unfolder } from "./shell-unfold.js";

/** Arguments that are code or patterns, not paths. */
function dataAfter(spec: { value: string[]; code: string[] }): Unfolder {
  return (args) => {
    const scan = scanOptions(args, 1, { value: spec.value });
    const data = scan.all.filter((o) => spec.code.includes(o.name)).map((o) => o.at);
    return itself({ data });
  };
}

const ALL_DATA: Unfolder = (args) => itself({ data: args.map((_, k) => k).slice(1) });

const grep: Unfolder = (args) => {
  const scan = scanOptions(args, 1, {
    value: [
      "e",
      "f",
      "m",
      "A",
      "B",
      "C",
      "d",
      "D",
      "regexp",
      "file",
      "max-count",
      "label",
      "exclude",
      "include",
    ],
  });
  const data = scan.all
    .filter((o) => ["e", "regexp", "include", "exclude", "label"].includes(o.name))
    .map((o) => o.at);
  if (!scan.seen.has("e") && !scan.seen.has("regexp") && !scan.seen.has("f") && !scan.seen.has("file")) {
    // A run-time word written with a leading - (`-f"$F"`, `--file=$F`) is an option, not
    // the pattern: what it names is judged as a path, as far as it is known.
    const option = scan.dynamicAt === scan.next && args[scan.next]!.value.startsWith("-");
    if (scan.next < args.length && !option) data.push(scan.next);
  }
  return itself({ data });
};

const jq: Unfolder = (args) => {
  const data: number[] = [];
  let filterSeen = false;
  for (let k = 1; k < args.length; k++) {
    const v = args[k]!.value;
    if (v === "--arg" || v === "--argjson") data.push(++k, ++k);
    else if (v === "--slurpfile" || v === "--rawfile") {
      data.push(++k);
      k++;
    } else if (v === "-f" || v === "--from-file") filterSeen = true;
    else if (!v.startsWith("-") && !filterSeen) {
      data.push(k);
      filterSeen = true;
    }
  }
  return itself({ data });
};

/** The programs of this file, as shell-programs.ts's table holds them. */
export const DATA_PROGRAMS: [string, Unfolder][] = [
  ...["grep", "egrep", "fgrep", "rgrep"].map((s): [string, Unfolder] => [s, grep]),
  ["jq", jq],
  ["echo", ALL_DATA],
  ["printf", ALL_DATA],
  ["expr", ALL_DATA],
  ...["python3", "python", "python3.11"].map((s): [string, Unfolder] => [
    s,
    dataAfter({ value: ["c", "m", "W", "X"], code: ["c", "m"] }),
  ]),
  ...["node", "nodejs", "js"].map((s): [string, Unfolder] => [
    s,
    dataAfter({ value: ["e", "p", "eval", "print", "r", "require"], code: ["e", "p", "eval", "print"] }),
  ]),
  // perl under its versioned names (the same program in the image).
  ...["perl", "perl5.36.0", "perl5.36-x86_64-linux-gnu"].map((s): [string, Unfolder] => [
    s,
    dataAfter({ value: ["e", "E", "M", "m", "I", "x"], code: ["e", "E"] }),
  ]),
  // prove runs its test files as perl (or with the program --exec names); pdb3 runs a python
  // script, or the module -m names, and its -c commands: interpreters, their grant decides.
  [
    "prove",
    dataAfter({
      value: ["I", "M", "P", "e", "exec", "a", "archive", "j", "jobs", "rc", "state", "ext", "harness"],
      code: ["e", "exec", "M", "P"],
    }),
  ],
  ...["pdb3", "pdb3.11"].map((s): [string, Unfolder] => [
    s,
    dataAfter({ value: ["c", "m"], code: ["c", "m"] }),
  ]),
];

/** Programs whose options only mark data (patterns, code for interpreters): a run-time argument there is no risk. */
export const DATA_ONLY: ReadonlySet<string> = new Set(DATA_PROGRAMS.map(([name]) => name));
