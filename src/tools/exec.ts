// tools/exec.ts — exec {command, cwd?, timeout_ms?}: a shell command in the goal's
// container. Its needs are the tool, every simple command the policy engine unfolds from
// the string (security/shell.ts, policy.ts: a string it cannot parse is refused there),
// each static redirection target as a file_read/file_write need (canonical, resolved from
// cwd in the container), and file_read on the working folder.

import { posix } from "node:path";
import { z } from "zod";
import type { Config } from "../config.js";
import { AidoError, ErrorCode } from "../errors.js";
import type { Need, ToolDef } from "../gate/types.js";
import type { SandboxHandle } from "../sandbox/types.js";
import { execNeeds } from "../security/policy.js";
import { analyzeCommand, MAX_COMMAND_BYTES } from "../security/shell.js";
import { boundOutput } from "./output.js";
import { canonical, confirmJudged, pathSchema, WORKSPACE } from "./paths.js";

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

/** `>&2`, `<&0`, `>&-`: descriptor duplication, not a file. */
const isFdTarget = (op: string, target: string) => /&$/.test(op) && /^(\d+|-)$/.test(target);

async function redirectNeeds(sandbox: SandboxHandle, command: string, cwd: string): Promise<Need[]> {
  const needs: Need[] = [];
  for (const c of analyzeCommand(command).commands) {
    for (const r of c.redirects) {
      if (r.dynamic || isFdTarget(r.op, r.target)) continue;
      const path = await sandbox.realpath(posix.resolve(cwd, r.target));
      needs.push({ kind: r.write ? "file_write" : "file_read", path });
      if (r.op === "<>") needs.push({ kind: "file_read", path });
    }
  }
  return needs;
}

export function execTool(cfg: Pick<Config["sandbox"], "execTimeoutMs">): ToolDef<Input> {
  return {
    name: "exec",
    description: "Run a shell command in the goal's container (no network). cwd defaults to /workspace.",
    input,
    mutates: true,
    async needs(i, { sandbox }) {
      const cwd = await canonical(sandbox, i.cwd ?? WORKSPACE);
      const analysis = analyzeCommand(i.command);
      return [
        { kind: "tool", name: "exec" },
        ...execNeeds(analysis),
        ...(await redirectNeeds(sandbox, i.command, cwd)),
        { kind: "file_read", path: cwd },
      ];
    },
    async run(i, ctx) {
      const cwd = await confirmJudged(ctx, ["file_read"], i.cwd ?? WORKSPACE);
      if (i.timeout_ms !== undefined && i.timeout_ms > cfg.execTimeoutMs) {
        throw new AidoError(
          ErrorCode.invalidInput,
          `timeout_ms may be at most ${cfg.execTimeoutMs} (sandbox.exec_timeout_ms)`,
        );
      }
      const half = Math.max(1024, Math.floor(ctx.outputMaxBytes / 2));
      const r = await ctx.sandbox.exec({
        command: i.command,
        cwd,
        timeoutMs: i.timeout_ms ?? cfg.execTimeoutMs,
        maxOutputBytes: half,
      });
      const status = r.timedOut
        ? `timed out after ${i.timeout_ms ?? cfg.execTimeoutMs} ms`
        : r.signal
          ? `killed by ${r.signal}`
          : `exit code ${r.exitCode}`;
      const text = `${status}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
      return {
        output: boundOutput(text, ctx.outputMaxBytes),
        data: { exit_code: r.exitCode, signal: r.signal, timed_out: r.timedOut, truncated: r.truncated },
        isError: r.exitCode !== 0,
      };
    },
  };
}
