// security/shell.ts — turns an `exec` command string into the simple commands it will run.
// Prefix matching a shell string is how `ls; rm -rf /` passes an `ls *` grant, so the
// string is parsed and every command anywhere inside is listed: pipelines, lists,
// subshells, blocks, $(...), if/while/for/case bodies, functions, and what wrappers and
// program options run (sudo, env, timeout, xargs, sh -c, find -exec, sort
// --compress-program, ...).
//
// One dialect: exec runs the command with dash, so it is parsed as POSIX sh (mvdan-sh's
// POSIX variant reads what dash reads), and every nested program is parsed in the dialect
// of the shell that runs it — sh/dash code is analysed, any other shell is refused. The
// visitor (shell-visitor.ts) fails closed: a construct it does not fully understand is
// refused with a reason naming it. A command we cannot read is a command we do not run.

import { AidoError } from "../errors.js";
import type { CommandAnalysis } from "./shell-analysis.js";
import { cannotParse } from "./shell-ast.js";
import type { Redirect } from "./shell-redirects.js";
import { basename } from "./shell-unfold.js";
import { Analyzer } from "./shell-visitor.js";

export type {
  CommandAnalysis,
  DirChange,
  FunctionDef,
  ResolvedPath,
  SharedShellCode,
  SimpleCommand,
} from "./shell-analysis.js";
export { MAX_SIMPLE_COMMANDS, MAX_SYNTAX_DEPTH, MAX_UNFOLD_DEPTH } from "./shell-visitor.js";
export { basename, cannotParse, type Redirect };

/** Longer command strings are refused before parsing. */
// Parsing is synchronous and roughly linear (~15 ms per KB here): 16 KB bounds the pause.
export const MAX_COMMAND_BYTES = 16 * 1024;

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Parse without the cache. Throws policy_denied "cannot parse command: ..." or "cannot judge
 * command: ..." when it cannot judge. `maxBytes` raises the size cap for script files an
 * exec runs (tools/exec-scripts.ts).
 */
export function analyzeCommandUncached(command: string, maxBytes = MAX_COMMAND_BYTES): CommandAnalysis {
  if (command.includes("\0")) throw cannotParse("it contains a NUL byte");
  if (Buffer.byteLength(command, "utf8") > maxBytes) {
    throw cannotParse(`it is longer than ${maxBytes} bytes`);
  }
  const a = new Analyzer(command);
  try {
    a.program(command, {
      topLevel: true,
      depth: 0,
      wrappers: [],
      privileged: false,
      parentGroup: undefined,
      stdinPiped: false,
      redirects: [],
      scope: "plain",
      localDirs: [],
      programOnStdin: false,
    });
  } catch (e) {
    // A parser or visitor that runs out of stack on a pathological nest refuses, like any other.
    if (e instanceof RangeError) throw cannotParse("it nests too deeply to read");
    throw e;
  }
  return deepFreeze(a.out);
}

const CACHE_SIZE = 512;
const cache = new Map<string, CommandAnalysis | AidoError>();

/**
 * The simple commands a shell string runs. Results (and refusals) for identical strings
 * come from a small LRU cache; the returned analysis is frozen.
 */
export function analyzeCommand(command: string): CommandAnalysis {
  let hit = cache.get(command);
  if (hit !== undefined) {
    cache.delete(command);
  } else {
    try {
      hit = analyzeCommandUncached(command);
    } catch (e) {
      if (!(e instanceof AidoError)) throw e;
      hit = e;
    }
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
  }
  cache.set(command, hit);
  if (hit instanceof AidoError) throw hit;
  return hit;
}
