// cli/commands/sandbox-run.ts — `aido run TASK [ARGS...]` and `aido logs`: a task in the
// active human sandbox (the latest, or --sandbox ID), its output streamed live, and the
// recorded output of a run read back (--network: its connections through the proxy).
// `aido run` exits with the task's exit status (124 when it timed out, 128+N when a signal
// killed it), so scripts can chain on it.

import type { NetworkLine } from "../../humansandbox/egress.js";
import { followRun, readRunLogs } from "../../humansandbox/logs.js";
import { withProject } from "../../humansandbox/project.js";
import { runTask } from "../../humansandbox/run.js";
import { exitStatusOf } from "../../humansandbox/run-evidence.js";
import { type Command, jsonOption, parseCommandArgs, printJson, UsageError } from "../command.js";
import { commandSpec } from "./index.js";

/** Options come before TASK; everything from TASK on belongs to the task (its own --flags too). */
function splitRunArgs(argv: string[], usage: string): { json: boolean; sandbox?: string; task: string[] } {
  let json = false;
  let sandbox: string | undefined;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--") {
      i++;
      break;
    }
    if (a === "--json") json = true;
    else if (a === "--sandbox") {
      sandbox = argv[++i];
      if (sandbox === undefined) throw new UsageError(`--sandbox needs an id\nusage: ${usage}`);
    } else if (a.startsWith("--sandbox=")) sandbox = a.slice("--sandbox=".length);
    else if (a.startsWith("-"))
      throw new UsageError(`unknown option ${a} (options go before TASK)\nusage: ${usage}`);
    else break;
  }
  const task = argv.slice(i);
  if (task.length === 0) throw new UsageError(`missing TASK\nusage: ${usage}`);
  return { json, ...(sandbox !== undefined ? { sandbox } : {}), task };
}

export const runCommand: Command = {
  ...commandSpec("run"),
  async run(ctx) {
    const args = splitRunArgs(ctx.argv, this.usage);
    const summary = await runTask({
      cwd: process.cwd(),
      config: await ctx.config(),
      task: args.task,
      ...(args.sandbox ? { sandboxId: args.sandbox } : {}),
      ...(args.json ? {} : { onStdout: (l) => ctx.io.out(l), onStderr: (l) => ctx.io.err(l) }),
      notice: (m) => ctx.io.err(m),
    });
    const status = exitStatusOf(summary);
    if (args.json) printJson(ctx.io, { ...summary, exit_status: status });
    else if (summary.timed_out)
      ctx.io.err(
        `aido run: ${summary.run_id} stopped by its ${summary.stopped_by} after ${summary.timeout_ms} ms`,
      );
    return status;
  },
};

/** One connection as `aido logs --network` prints it. */
function networkLine(n: NetworkLine & { time: string }): string {
  const what = `${n.time}  ${n.method || "-"} ${n.host || "-"}:${n.port}`;
  if (n.phase === "denied")
    return `${what}  denied (${n.stage}): ${n.reason}${n.repeats ? ` (and ${n.repeats} identical since)` : ""}`;
  const early = n.reason ? `, ${n.reason}` : "";
  return `${what}  allowed ${n.address}  up ${n.bytes_up} B, down ${n.bytes_down} B, ${n.duration_ms} ms${early}`;
}

export const logsCommand: Command = {
  ...commandSpec("logs"),
  async run(ctx) {
    const { values } = parseCommandArgs(
      this,
      ctx.argv,
      {
        ...jsonOption,
        follow: { type: "boolean", short: "f" },
        network: { type: "boolean" },
        run: { type: "string" },
        sandbox: { type: "string" },
      },
      false,
    );
    // The project opened once: the run is found and (with --follow) read through it.
    return withProject(process.cwd(), async (project) => {
      const logs = readRunLogs(project, values.sandbox, values.run);
      if (values.network && values.follow)
        throw new UsageError(`--network reads a finished log: no --follow\nusage: ${this.usage}`);
      if (values.network && !values.json) {
        if (logs.network.length === 0) ctx.io.out(`${logs.runId} made no connection through the proxy`);
        for (const n of logs.network) if (n.phase !== "open") ctx.io.out(networkLine(n));
        return 0;
      }
      if (values.json) {
        const summary =
          values.follow && !logs.summary
            ? await followRun(
                logs,
                () => {},
                () => {},
              )
            : logs.summary;
        const final = summary ? readRunLogs(project, logs.sandbox.id, logs.runId) : logs;
        printJson(ctx.io, {
          sandbox_id: logs.sandbox.id,
          run_id: logs.runId,
          stdout: final.stdout,
          stderr: final.stderr,
          summary: final.summary,
          network: final.network,
        });
        return 0;
      }
      const emit = (write: (l: string) => void) => {
        let partial = "";
        return {
          push(text: string) {
            partial += text;
            const lines = partial.split("\n");
            partial = lines.pop() ?? "";
            for (const l of lines) write(l);
          },
          end() {
            if (partial !== "") write(partial);
          },
        };
      };
      const out = emit((l) => ctx.io.out(l));
      const err = emit((l) => ctx.io.err(l));
      if (values.follow)
        await followRun(
          logs,
          (t) => out.push(t),
          (t) => err.push(t),
        );
      else {
        out.push(logs.stdout);
        err.push(logs.stderr);
      }
      out.end();
      err.end();
      return 0;
    });
  },
};
