// cli/commands/goals.ts — goals over the daemon socket: `aido submit`, `aido goals`,
// `aido status ID`, `aido cancel ID`. Submit reads the manifest file here and sends its
// text (the daemon may not see the caller's files), sends input paths as absolute
// paths, and its working folder as `workspace` (its persistent intent rides along).
// With --wait or --follow the exit code is the goal's outcome: 0 succeeded, 1 failed or
// cancelled. The goal's text, result and error come from a model or any socket
// client: printed as inert text (security/terminal-text.ts), --json as exact JSON.

import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import type { AidoClient } from "../../client/client.js";
import type { MethodParams } from "../../client/types.js";
import { AidoError, ErrorCode, errorMessage } from "../../errors.js";
import type { GoalStatus } from "../../kernel/goal-store.js";
import { inert, inertLines } from "../../security/terminal-text.js";
import {
  type CliIo,
  type Command,
  type CommandContext,
  jsonOption,
  parseCommandArgs,
  printJson,
  UsageError,
} from "../command.js";
import { goalExitCode, isFinished, waitForGoal, withClient } from "./daemon-client.js";
import { commandSpec } from "./index.js";

const tokens = (g: GoalStatus) => g.usage.input_tokens + g.usage.output_tokens;
const oneLine = (s: string, max: number) => {
  const flat = s.replace(/\s+/g, " ").trim();
  return inert(flat.length > max ? `${flat.slice(0, max - 1)}…` : flat);
};

export function printGoal(io: CliIo, g: GoalStatus): void {
  io.out(`goal    ${g.goal_id}`);
  io.out(`state   ${g.state}`);
  io.out(`asked   ${oneLine(g.goal, 200)}`);
  io.out(`tokens  ${tokens(g)} (in ${g.usage.input_tokens}, out ${g.usage.output_tokens})`);
  io.out(`output  ${g.output_dir}`);
  if (g.error) io.out(`error   ${inertLines(g.error)}`);
  if (g.result) io.out(`result\n${inertLines(g.result)}`);
}

function readManifest(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    throw new AidoError(ErrorCode.usage, `cannot read manifest ${file}: ${errorMessage(e)}`, { file });
  }
}

export const submit: Command = {
  ...commandSpec("submit"),
  async run(ctx) {
    const { values, positionals } = parseCommandArgs(this, ctx.argv, {
      ...jsonOption,
      manifest: { type: "string" },
      input: { type: "string", multiple: true },
      wait: { type: "boolean" },
      follow: { type: "boolean" },
      "id-file": { type: "string" },
    });
    const goal = positionals.join(" ").trim();
    if (goal === "") throw new UsageError(`no goal given\nusage: ${this.usage}`);
    // The working folder goes along: a persistent intent set for it (aido intent) is carried.
    const params: MethodParams<"goal.submit"> = {
      goal,
      workspace: process.cwd(),
      ...(values.manifest ? { manifest: readManifest(values.manifest) } : {}),
      ...(values.input?.length ? { inputs: values.input.map((p) => resolve(p)) } : {}),
    };
    const idFile = values["id-file"];
    const submitted = (id: string) => {
      if (idFile) writeFileSync(idFile, `${id}\n`);
    };
    return withClient(ctx, async (client) => {
      if (values.follow && !values.json) {
        // The live view and its renderer load only when asked for.
        const { submitAndWatch } = await import("./watch.js");
        return submitAndWatch(ctx, client, params, (id) => {
          submitted(id);
          ctx.io.err(`goal ${id} submitted`);
        });
      }
      const { goal_id } = await client.call("goal.submit", params);
      submitted(goal_id);
      if (!values.wait && !values.follow) {
        if (values.json) printJson(ctx.io, { goal_id });
        else ctx.io.out(goal_id);
        return 0;
      }
      const end = await waitForGoal(client, goal_id);
      if (values.json) printJson(ctx.io, end);
      else printGoal(ctx.io, end);
      return goalExitCode(end);
    });
  },
};

export const goals: Command = {
  ...commandSpec("goals"),
  async run(ctx) {
    const { values } = parseCommandArgs(
      this,
      ctx.argv,
      { ...jsonOption, state: { type: "string" }, limit: { type: "string" } },
      false,
    );
    const states = ["queued", "running", "succeeded", "failed", "cancelled"] as const;
    const state = values.state as (typeof states)[number] | undefined;
    if (state !== undefined && !states.includes(state))
      throw new UsageError(`--state must be one of ${states.join(", ")}, got "${values.state}"`);
    const limit = values.limit === undefined ? undefined : Number(values.limit);
    if (limit !== undefined && (!Number.isInteger(limit) || limit <= 0))
      throw new UsageError(`--limit must be a positive integer, got "${values.limit}"`);
    const list = await withClient(ctx, (c) =>
      c.call("goal.list", { ...(state ? { state } : {}), ...(limit ? { limit } : {}) }),
    );
    if (values.json) printJson(ctx.io, list.goals);
    else if (list.goals.length === 0) ctx.io.out("(no goals)");
    else
      for (const g of list.goals) {
        ctx.io.out(
          `${g.goal_id}  ${g.state.padEnd(9)}  ${g.created_at.slice(0, 19).replace("T", " ")}  ${String(tokens(g)).padStart(8)} tok  ${oneLine(g.goal, 60)}`,
        );
      }
    return 0;
  },
};

async function oneGoal(
  cmd: Command,
  argv: string[],
  io: CliIo,
  ctx: Pick<CommandContext, "socketPath" | "config">,
  call: (c: AidoClient, id: string) => Promise<GoalStatus>,
): Promise<{ json: boolean; goal: GoalStatus }> {
  const { values, positionals } = parseCommandArgs(cmd, argv, jsonOption);
  if (positionals.length !== 1) throw new UsageError(`give exactly one goal id\nusage: ${cmd.usage}`);
  const id = positionals[0] as string;
  const goal = await withClient(ctx, (c) => call(c, id));
  if (values.json) printJson(io, goal);
  return { json: values.json === true, goal };
}

export const status: Command = {
  ...commandSpec("status"),
  async run(ctx) {
    const r = await oneGoal(this, ctx.argv, ctx.io, ctx, (c, id) => c.call("goal.status", { goal_id: id }));
    if (!r.json) printGoal(ctx.io, r.goal);
    return 0;
  },
};

export const cancel: Command = {
  ...commandSpec("cancel"),
  async run(ctx) {
    // Cancelling stops the goal's agents; wait (up to 30 s) to report how it ended.
    const r = await oneGoal(this, ctx.argv, ctx.io, ctx, async (c, id) => {
      const g = await c.call("goal.cancel", { goal_id: id });
      if (isFinished(g)) return g;
      return c.call("goal.wait", { goal_id: id, timeout_ms: 30_000 }, { timeoutMs: 45_000 });
    });
    if (!r.json) ctx.io.out(`goal ${r.goal.goal_id}: ${r.goal.state}`);
    return 0;
  },
};
