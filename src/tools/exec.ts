// tools/exec.ts — exec {command, cwd?, timeout_ms?}: a shell command in the goal's
// container, run by dash. Its needs are the tool, every simple command the analysis unfolds
// from the string (security/shell.ts: POSIX sh, as dash reads it; a string it cannot parse
// or judge is refused there), the files it names — path arguments, redirection targets,
// cd targets — resolved in the container (exec-paths.ts), file_read on the working folder,
// and everything the script files it hands to a shell run (exec-scripts.ts). The policy
// judges the command merged with its scripts and the resolved paths (policyCommand), and
// run() executes the pinned command: the scripts' judged text, never what the files hold
// by then. A human's standing answer covers the command and the files every word of it
// leads to (approvalScope, exec-scope.ts).

import { z } from "zod";
import type { Config } from "../config.js";
import { AidoError, ErrorCode } from "../errors.js";
import type { ToolDef } from "../gate/types.js";
import type { SandboxHandle } from "../sandbox/types.js";
import { commandScope } from "../security/approval-scope.js";
import { execNeeds } from "../security/policy.js";
import { analyzeCommand, type CommandAnalysis, MAX_COMMAND_BYTES } from "../security/shell.js";
import { execStartVars } from "./exec-known.js";
import { mergeAnalyses, movedBySourced } from "./exec-merge.js";
import { execPaths } from "./exec-paths.js";
import { resolveScopeWords, type ScopeWord } from "./exec-scope.js";
import { planScripts } from "./exec-scripts.js";
import { hideCallerSecrets } from "./hide-secrets.js";
import { boundOutput } from "./output.js";
import { absolute, canonical, confirmJudged, pathSchema, WORKSPACE } from "./paths.js";

const input = z.strictObject({
  command: z
    .string()
    .min(1)
    .max(MAX_COMMAND_BYTES)
    .refine((c) => !c.includes("\0"), "command must not contain NUL"),
  cwd: pathSchema.optional(),
  timeout_ms: z.number().int().min(1).optional(),
});
type Input = z.infer<typeof input>;

/** What needs() judged for one call: the analysis the policy sees and the command run() runs. */
interface Judgement {
  analysis: CommandAnalysis;
  command: string;
  /** Words of the command and its scripts that could name files, for the approval scope. */
  words: ScopeWord[];
}

export function execTool(cfg: Pick<Config["sandbox"], "execTimeoutMs">): ToolDef<Input> {
  // Keyed by the parsed input object the gate hands to needs(), policyCommand() and run().
  const judgements = new WeakMap<Input, Judgement>();
  return {
    name: "exec",
    description:
      "Run a shell command in the goal's container with sh (dash: POSIX sh, no bash syntax; other shells are refused). cwd defaults to /workspace.",
    input,
    mutates: true,
    // What the command says, judged before the container is looked at (gate stage 2-3).
    staticNeeds: (i) => [{ kind: "tool", name: "exec" }, ...execNeeds(analyzeCommand(i.command))],
    async needs(i, ctx) {
      // Every look into the container takes the call's cancel: a call cancelled while one of them
      // waits (its goal frozen by its node's fence) ends at once, where before it waited for the thaw.
      const sandbox = withSignal(ctx.sandbox, ctx.signal);
      const { readRefusal } = ctx;
      const cwd = await canonical(sandbox, i.cwd ?? WORKSPACE);
      const analysis = analyzeCommand(i.command);
      // Asked after a first call, which starts the executor that knows the kernel's Landlock.
      // The command and the scripts it runs are judged with the HOME and TMPDIR it has there.
      const privateTmp = sandbox.confinesWithPrivateTmp?.() ? ctx.privateTmp : undefined;
      const start = execStartVars(privateTmp);
      const place = { start, ...(privateTmp === undefined ? {} : { privateTmp }) };
      const scripts = await planScripts(sandbox, readRefusal, i.command, analysis, cwd, place);
      // A script the command sources (`. ./env.sh`) sets variables for the commands after it
      // (HOME, TMPDIR, a program's options): the command's own words are judged as if it set
      // them too. Those of a script run by sh are counted as well, which may only refuse more.
      const assigned = scripts.analyses.flatMap((a) => a.assignedNames);
      // A sourced script that changes directory moves the commands after it (cd -, for the judge).
      const moved = movedBySourced(analysis, scripts.movedBySourced);
      const named =
        assigned.length > 0 ? { ...moved, assignedNames: [...moved.assignedNames, ...assigned] } : moved;
      // And the values it gives a variable, or reads into one, are those the command's words may have.
      const own = scripts.sharedShell.length > 0 ? { ...named, sharedShell: scripts.sharedShell } : named;
      const files = await execPaths(sandbox, own, [cwd], place);
      judgements.set(i, {
        analysis: mergeAnalyses({ ...moved, paths: files.paths }, scripts.analyses),
        command: scripts.command,
        words: [...files.words, ...scripts.words],
      });
      return [
        { kind: "tool", name: "exec" },
        ...execNeeds(analysis),
        ...files.needs,
        ...scripts.needs,
        { kind: "file_read", path: cwd, via: "the working folder" },
      ];
    },
    policyCommand: (i) => judgements.get(i)?.analysis,
    // A standing approval covers the command that runs (scripts written in), normalized, the
    // files its words lead to now and the content of those it runs as code (exec-scope.ts):
    // worked out only when a human is involved.
    async approvalScope(i, needs, { sandbox, signal, readRefusal }) {
      const judged = judgements.get(i);
      const files = judged
        ? await resolveScopeWords(withSignal(sandbox, signal), judged.words, readRefusal)
        : { unresolved: "the call's words were not judged" };
      return commandScope(judged?.command ?? i.command, needs, absolute(i.cwd ?? WORKSPACE), files);
    },
    async run(i, ctx) {
      const cwd = await confirmJudged(ctx, ["file_read"], i.cwd ?? WORKSPACE);
      if (i.timeout_ms !== undefined && i.timeout_ms > cfg.execTimeoutMs) {
        throw new AidoError(
          ErrorCode.invalidInput,
          `timeout_ms may be at most ${cfg.execTimeoutMs} (sandbox.exec_timeout_ms)`,
        );
      }
      const judged = judgements.get(i);
      if (!judged || !ctx.confinement) {
        throw new AidoError(
          ErrorCode.capabilityDenied,
          "exec runs only a command whose needs were judged for this very call, in the caller's confinement; refused",
        );
      }
      const half = Math.max(1024, Math.floor(ctx.outputMaxBytes / 2));
      // A cancel ends the egress question the command's connections put to a human with the
      // cancel's reason, before the sandbox stops the command (its listener comes later).
      const { signal, egress } = ctx;
      const onCancel = () => egress?.cancelled?.(cancelReason(signal));
      if (signal?.aborted) onCancel();
      else signal?.addEventListener("abort", onCancel, { once: true });
      let r: Awaited<ReturnType<typeof ctx.sandbox.exec>>;
      try {
        r = await ctx.sandbox.exec({
          command: judged.command,
          cwd,
          timeoutMs: i.timeout_ms ?? cfg.execTimeoutMs,
          maxOutputBytes: half,
          confinement: ctx.confinement,
          ...(egress ? { env: egress.env } : {}),
          ...(signal ? { signal } : {}),
        });
      } finally {
        signal?.removeEventListener("abort", onCancel);
      }
      const status = r.timedOut
        ? `timed out after ${i.timeout_ms ?? cfg.execTimeoutMs} ms`
        : r.signal
          ? `killed by ${r.signal}`
          : `exit code ${r.exitCode}`;
      const text = hideCallerSecrets(
        `${status}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`,
        ctx.egress,
      );
      return {
        output: boundOutput(text, ctx.outputMaxBytes),
        data: { exit_code: r.exitCode, signal: r.signal, timed_out: r.timedOut, truncated: r.truncated },
        isError: r.exitCode !== 0,
      };
    },
  };
}

/**
 * `sandbox` with every operation taking `signal` (the call's cancel): what exec's needs and
 * approval scope hand to exec-paths.ts, exec-scripts.ts and exec-scope.ts, which look into the
 * container many times. Before, none of those looks took it.
 */
function withSignal(sandbox: SandboxHandle, signal: AbortSignal | undefined): SandboxHandle {
  if (!signal) return sandbox;
  return {
    goalId: sandbox.goalId,
    realpath: (path, opts) => sandbox.realpath(path, { ...opts, signal }),
    ...(sandbox.confinesWithPrivateTmp
      ? { confinesWithPrivateTmp: () => sandbox.confinesWithPrivateTmp!() }
      : {}),
    exec: (req) => sandbox.exec({ ...req, signal }),
    readFile: (path, opts) => sandbox.readFile(path, { ...opts, signal }),
    writeFile: (path, content, opts) => sandbox.writeFile(path, content, { ...opts, signal }),
    editFile: (path, a, b, all, opts) => sandbox.editFile(path, a, b, all, { ...opts, signal }),
    list: (path, opts) => sandbox.list(path, { ...opts, signal }),
    stat: (path, opts) => sandbox.stat(path, { ...opts, signal }),
    grep: (pattern, path, glob, max, opts) => sandbox.grep(pattern, path, glob, max, { ...opts, signal }),
  };
}

/** Why a call was cancelled, as its signal says. */
function cancelReason(signal: AbortSignal | undefined): string {
  const r: unknown = signal?.reason;
  if (r instanceof Error) return r.message;
  return r === undefined ? "cancelled" : String(r);
}
