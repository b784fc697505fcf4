// cli/commands/sandbox.ts — `aido sandbox up | list | destroy`: the human-facing sandbox
// (src/humansandbox/) for running an AI-written script in a disposable, locked-down
// container. The escape hatches (--network, --dangerous-allow-mutations) print a warning
// and need a yes on a terminal, or --yes; either way they are recorded in the evidence.

import { createInterface } from "node:readline/promises";
import { destroySandbox } from "../../humansandbox/lifecycle.js";
import { runIds } from "../../humansandbox/logs.js";
import { type Project, withProject } from "../../humansandbox/project.js";
import { listRecords, type SandboxRecord, storePaths } from "../../humansandbox/state.js";
import { sandboxUp } from "../../humansandbox/up.js";
import { type CliIo, type Command, jsonOption, parseCommandArgs, printJson, UsageError } from "../command.js";
import { commandSpec } from "./index.js";

async function confirmEscapes(
  io: CliIo,
  hatches: string[],
  yes: boolean,
): Promise<"terminal" | "--yes" | null> {
  if (hatches.length === 0) return null;
  for (const h of hatches) io.err(`warning: ${h}`);
  if (yes) return "--yes";
  if (!io.interactive) throw new UsageError(`these escape hatches need a confirmation: add --yes to proceed`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question("proceed? [y/N] ");
    if (!/^y(es)?$/i.test(answer.trim())) throw new UsageError("not confirmed: nothing was started");
    return "terminal";
  } finally {
    rl.close();
  }
}

/** What `list` and `up --json` show of a sandbox, its runs counted through the project held open. */
function view(project: Project, r: SandboxRecord) {
  return {
    id: r.id,
    name: r.name,
    state: r.state,
    created_at: r.created_at,
    expires_at: r.expires_at,
    image: r.runtime.image,
    runtime: r.runtime.requested,
    network: r.permissions.network,
    filesystem: r.permissions.filesystem,
    // null: made before the task was refused them (`run` refuses such a sandbox).
    unix_sockets: r.permissions.unix_sockets ?? null,
    runs: runIds(project, r.id).length,
    ...(r.destroy_reason ? { destroyed_at: r.destroyed_at, destroy_reason: r.destroy_reason } : {}),
    folder: storePaths(project.path, r.id).root,
  };
}

export const sandboxUpCommand: Command = {
  ...commandSpec("sandbox up"),
  async run(ctx) {
    const { values } = parseCommandArgs(
      this,
      ctx.argv,
      {
        ...jsonOption,
        file: { type: "string", short: "f" },
        network: { type: "boolean" },
        "dangerous-allow-mutations": { type: "boolean" },
        yes: { type: "boolean", short: "y" },
      },
      false,
    );
    const hatches = [
      ...(values.network
        ? ["--network: the sandbox gets the engine's default bridge network (outbound access)"]
        : []),
      ...(values["dangerous-allow-mutations"]
        ? [
            "--dangerous-allow-mutations: inputs are mounted read-write; the script can change them on the host",
          ]
        : []),
    ];
    const confirmedBy = await confirmEscapes(ctx.io, hatches, Boolean(values.yes));
    const cwd = process.cwd();
    const r = await sandboxUp({
      cwd,
      config: await ctx.config(),
      ...(values.file ? { file: values.file } : {}),
      network: Boolean(values.network),
      allowMutations: Boolean(values["dangerous-allow-mutations"]),
      confirmedBy,
      progress: (m) => ctx.io.err(`  ${m}`),
      notice: (m) => ctx.io.err(m),
    });
    if (values.json)
      printJson(
        ctx.io,
        withProject(cwd, (project) => view(project, r)),
      );
    else {
      ctx.io.err(`sandbox ${r.id} (${r.name}) is up on ${r.runtime.image}; expires ${r.expires_at}`);
      ctx.io.out(r.id);
    }
    return 0;
  },
};

export const sandboxList: Command = {
  ...commandSpec("sandbox list"),
  async run(ctx) {
    const { values } = parseCommandArgs(this, ctx.argv, jsonOption, false);
    const rows = withProject(process.cwd(), (project) => listRecords(project).map((r) => view(project, r)));
    if (values.json) printJson(ctx.io, rows);
    else if (rows.length === 0) ctx.io.out("no sandboxes here: start one with `aido sandbox up`");
    else
      for (const r of rows)
        ctx.io.out(
          `${r.id}  ${r.state.padEnd(9)}  ${r.name}  ${r.runtime}  runs=${r.runs}  ${
            r.state === "running" ? `expires ${r.expires_at}` : (r.destroy_reason ?? "")
          }`,
        );
    return 0;
  },
};

export const sandboxDestroy: Command = {
  ...commandSpec("sandbox destroy"),
  async run(ctx) {
    const { values, positionals } = parseCommandArgs(this, ctx.argv, {
      ...jsonOption,
      purge: { type: "boolean" },
    });
    if (positionals.length > 1) throw new UsageError(`one sandbox id at most\nusage: ${this.usage}`);
    const cwd = process.cwd();
    const r = await withProject(cwd, (project) => {
      const id =
        positionals[0] ??
        listRecords(project)
          .filter((r) => r.state === "running")
          .at(-1)?.id;
      if (id === undefined)
        throw new UsageError("no running sandbox here to destroy (see `aido sandbox list`)");
      storePaths(cwd, id);
      return destroySandbox(project, id, { purge: Boolean(values.purge) });
    });
    if (values.json)
      printJson(ctx.io, {
        id: r.id,
        state: r.state,
        destroyed_at: r.destroyed_at,
        purged: Boolean(values.purge),
      });
    else
      ctx.io.out(
        `sandbox ${r.id} destroyed${values.purge ? " and its folder deleted" : `; evidence kept in ${storePaths(cwd, r.id).root}`}`,
      );
    return 0;
  },
};
