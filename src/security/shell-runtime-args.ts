// security/shell-runtime-args.ts — what arguments known only at run time can do to the
// program that gets them: a run-time word may turn out to be an option (`sort $X`, a file
// named --checkpoint-action=exec=... under `tar cf o.tar *`), and the words xargs (or find
// -exec ... +) appends may turn out to be the command itself, when the program they are
// appended to is a wrapper given none (`xargs nice` runs whatever it reads). The visitor
// (shell-visitor.ts) calls these before it unfolds a program.

import { cannotJudge } from "./shell-ast.js";
import { isShellName } from "./shell-sh.js";
import type { Arg, UnfoldStep } from "./shell-unfold.js";
import { isDataValue } from "./shell-value-slots.js";
import { WRAPPERS } from "./shell-wrappers.js";

/**
 * A program whose options run programs (tar --checkpoint-action, sort --compress-program,
 * find -exec, git --upload-pack...) is judged by the options it is given; an argument known
 * only at run time may turn out to be one (`sort $X`, or `tar cf o.tar *` in a folder holding
 * a file named `--checkpoint-action=exec=sh x`), and so may arguments xargs appends. Refused,
 * unless the word is one argument that cannot start with - or + (`./*`, `"/w/$f"`), stands
 * after `--` (find has no such end: its expression is not options), or is the value of an
 * option whose value is data (`tar -xf "$f"`, `git commit -m "$msg"`: shell-value-slots.ts).
 */
export function runtimeOptions(name: string, args: readonly Arg[], wrappers: readonly string[]): void {
  if (wrappers.at(-1) === "xargs") {
    throw cannotJudge(
      `xargs appends arguments read at run time to ${name}, whose options run programs; one of them may be an option`,
    );
  }
  for (const [k, a] of args.entries()) {
    if (k === 0) continue;
    if (!a.dynamic && a.value === "--" && name !== "find") return;
    if (a.dynamic && !a.optionSafe && !isDataValue(name, args, k)) {
      throw cannotJudge(
        `${name} with a run-time argument (${a.value}) that may turn out to be an option, and ${name}'s options can run programs; start it with a fixed path (./*, "/dir/$f"), put it after --, or quote it as the value of an option that takes one`,
      );
    }
  }
}

/**
 * A wrapper that runs the arguments after its options as a command (env, nice, timeout D,
 * setsid, stdbuf, flock F...) and was given no command, run by something that appends
 * arguments read at run time: those arguments are the command, and an option's missing
 * value too (`xargs nice -n`). What runs cannot be judged, so it is refused. A wrapper
 * whose command is written out (`xargs nice cat`) gets the words as that command's arguments.
 */
export function appendedCommand(name: string, step: UnfoldStep, wrappers: readonly string[]): void {
  // A shell's appended words are its script's arguments, or its script (refused before this).
  if (!WRAPPERS.has(name) || isShellName(name) || step.code.length > 0) return;
  if (step.run.length > 0 && !step.implicitCommand) return;
  const by = wrappers.at(-1) ?? "a program";
  throw cannotJudge(
    `${by} appends arguments read at run time to ${name}, which runs them as a command that cannot be judged; write the command out (${by} ${name} CMD ...)`,
  );
}
