// tools/exec-code.ts — the code files of programs that are not plain interpreters, for the
// scope of a standing answer (exec-scope.ts). An interpreter (python3, node, pypy3, tsx...:
// security/policy-rules.ts isInterpreterName) runs the files it is handed, so every file word
// of it is pinned by its content. Other programs run code from a file their options name, or
// from a file they look for by themselves; an Allow Session on their command must cover that
// file as the human saw it, or nothing at all:
//   make            the makefile it reads (`-f F`, else GNUmakefile, makefile and Makefile, in
//                   the folder of `-C DIR`): pinned. Recipes are in it; what a recipe runs
//                   (`python3 gen.py`) and what it includes are not, like a script's imports.
//   npm/pnpm/yarn   run, test, start...: the package.json whose scripts run: pinned (what a
//                   script runs, node_modules/.bin included, is not, like imports); exec, x,
//                   dlx, install, ci, rebuild run packages' code found at run time: not pinned.
//   bun             an interpreter, and `bun run NAME` runs a package.json script: pinned too.
//   java            `java F.java` (source mode) and `-jar F` run the file: pinned (a jar is
//                   not text, so never covered); a class looked up on the class path is not.
//   npx, pnpx,      run a package they find (or fetch) at run time;
//   bunx, pytest    pytest collects test files and conftest.py it finds: not pinned.
//   deno, bun       a module named by URL (`deno run https://…`, `npm:x`) is fetched: not pinned.
// Not pinned means no standing answer covers the call (ScopeWord.unpinned): the human is asked
// each time. Two readers' programs never get here: awk -f and sed -f are refused by the exec
// judge itself (security/shell-awk.ts, shell-sed.ts: a program file cannot be judged with the
// command), so no approval is ever asked for them. git runs no hook and no fsmonitor in an exec
// (sandbox/executor/exec.ts SAFETY_ENV: core.hooksPath=/dev/null at command-line precedence),
// so `git commit` runs no code the agent wrote in .git/hooks.

import type { SimpleCommand } from "../security/shell.js";
import { getopt, longs, values } from "../security/shell-getopt.js";

/** What else a command runs as code: files to pin (relative to where it starts), or why none can be. */
export type CodeWords = { runs: string[] } | { unpinned: string };

const MAKEFILES = ["GNUmakefile", "makefile", "Makefile"];
/** GNU make's short options that take a value (-j and -l take one only when it is a number: read as operands). */
const MAKE_SPEC = {
  short: "CfIoW",
  long: longs(
    [
      "directory",
      "file",
      "makefile",
      "include-dir",
      "old-file",
      "assume-old",
      "what-if",
      "new-file",
      "assume-new",
      "eval",
    ],
    ["jobs", "load-average"],
  ),
};
/** npm (and pnpm, yarn) subcommands that run the package.json's scripts. */
const PACKAGE_SCRIPTS = new Set([
  "run",
  "run-script",
  "rum",
  "urn",
  "test",
  "t",
  "tst",
  "start",
  "stop",
  "restart",
]);
/** Subcommands that run packages' code found (or fetched) at run time. */
const PACKAGE_RUNTIME = new Set([
  "exec",
  "x",
  "dlx",
  "explore",
  "install",
  "i",
  "in",
  "ci",
  "add",
  "rebuild",
  "rb",
]);
const RUNTIME_RUNNERS: Record<string, string> = {
  npx: "npx runs a package it finds or fetches at run time",
  pnpx: "pnpx runs a package it finds or fetches at run time",
  bunx: "bunx runs a package it finds or fetches at run time",
  pytest: "pytest runs the test files and conftest.py it collects at run time",
  "py.test": "py.test runs the test files and conftest.py it collects at run time",
};

/** The code files `c` runs beyond an interpreter's operands, or why they cannot be pinned; undefined: none. */
export function codeWords(c: SimpleCommand, name: string): CodeWords | undefined {
  const runner = RUNTIME_RUNNERS[name];
  if (runner !== undefined) return { unpinned: runner };
  const dynamic = c.argDynamic.some((d, i) => i > 0 && d);
  const args = c.argv.slice(1);
  switch (name) {
    case "make":
    case "gmake":
      return dynamic ? { unpinned: `what ${name} reads may be named at run time` } : makeFiles(c);
    case "npm":
    case "pnpm":
    case "yarn":
      return packageScripts(name, args, dynamic);
    case "bun":
      if (args[0] === "x") return { unpinned: "bun x runs a package it finds or fetches at run time" };
      return fetched(name, args) ?? { runs: ["package.json"] };
    case "deno":
      return fetched(name, args);
    case "java":
      return javaFiles(args, dynamic);
    default:
      return undefined;
  }
}

function makeFiles(c: SimpleCommand): CodeWords {
  if (c.assigns.some((a) => /^(MAKEFILES|MAKEFLAGS|MFLAGS)=/.test(a)))
    return { unpinned: "make is given makefiles or options through its environment" };
  const read = getopt(c.argv, 1, MAKE_SPEC);
  const dirs = values(read, "C", "directory").map((v) => v.value);
  if (dirs.length > 1)
    return { unpinned: "make -C given twice reads its makefile from a folder it works out" };
  const files = values(read, "f", "file", "makefile").map((v) => v.value);
  const under = (f: string) => (dirs[0] === undefined || f.startsWith("/") ? f : `${dirs[0]}/${f}`);
  return { runs: (files.length > 0 ? files : MAKEFILES).map(under) };
}

function packageScripts(name: string, args: readonly string[], dynamic: boolean): CodeWords | undefined {
  if (args.some((a) => /^(--prefix|-C|--dir|--cwd|--workspace|-w)(=|$)/.test(a)))
    return { unpinned: `${name} is pointed at another package's folder` };
  const sub = args.find((a) => !a.startsWith("-"));
  if (sub !== undefined && PACKAGE_RUNTIME.has(sub))
    return { unpinned: `${name} ${sub} runs packages' code it finds or fetches at run time` };
  if (dynamic) return { unpinned: `what ${name} runs may be named at run time` };
  // A bare `yarn` installs; `yarn NAME` runs the script NAME: every other yarn command pins package.json.
  if (name === "yarn" && sub === undefined)
    return { unpinned: "yarn installs packages, running their scripts" };
  if (name === "yarn" || (sub !== undefined && PACKAGE_SCRIPTS.has(sub))) return { runs: ["package.json"] };
  return undefined;
}

/** A module deno or bun would fetch by URL or from a registry: its content is not in the container yet. */
function fetched(name: string, args: readonly string[]): CodeWords | undefined {
  const remote = args.find((a) => /^[a-z][a-z0-9+.-]*:/i.test(a) && !a.startsWith("-"));
  return remote === undefined ? undefined : { unpinned: `${name} runs a module it fetches (${remote})` };
}

function javaFiles(args: readonly string[], dynamic: boolean): CodeWords | undefined {
  if (dynamic) return { unpinned: "what java runs may be named at run time" };
  const jar = args.indexOf("-jar");
  const runs = [
    ...args.filter((a) => a.endsWith(".java") && !a.startsWith("-")),
    ...(jar >= 0 && args[jar + 1] !== undefined ? [args[jar + 1]!] : []),
  ];
  if (runs.length > 0) return { runs };
  if (args.some((a) => !a.startsWith("-")))
    return { unpinned: "java runs a class it looks up on its class path at run time" };
  return undefined;
}
