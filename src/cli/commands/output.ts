// cli/commands/output.ts — `aido output`: a goal's deliverables into a folder of the
// user's, through cli/output-copy.ts (regular files and folders only, no setuid/setgid
// bits, never through a link). `aido output ID --to DIR` asks the daemon where the goal's
// output folder is and copies from it; `aido output --from DIR --to DIR` copies a folder an
// earlier `aido output` made. run-aido.sh uses both: inside the daemon's container (which
// can read the private goal folder) into a staging folder owned by the host user
// (--owner), then on the host into ./output.

import { inert } from "../../security/terminal-text.js";
import type { CliIo } from "../command.js";
import { type Command, jsonOption, parseCommandArgs, printJson, UsageError } from "../command.js";
import { type CopyReport, copyDeliverables } from "../output-copy.js";
import { withClient } from "./daemon-client.js";
import { commandSpec } from "./index.js";

function parseOwner(raw: string | undefined): { uid: number; gid: number } | undefined {
  if (raw === undefined) return undefined;
  const m = /^(\d+):(\d+)$/.exec(raw);
  if (!m) throw new UsageError(`--owner must be UID:GID (numbers), got "${raw}"`);
  return { uid: Number(m[1]), gid: Number(m[2]) };
}

function printReport(io: CliIo, report: CopyReport, dest: string): void {
  io.out(
    report.files === 0
      ? "no deliverables to copy"
      : `copied ${report.files} file${report.files === 1 ? "" : "s"} (${report.bytes} bytes) to ${dest}`,
  );
  // A model named these files.
  for (const s of report.skipped) io.err(`skipped ${inert(s.path)}: ${inert(s.reason)}`);
}

export const output: Command = {
  ...commandSpec("output"),
  async run(ctx) {
    const { values, positionals } = parseCommandArgs(this, ctx.argv, {
      ...jsonOption,
      to: { type: "string" },
      from: { type: "string" },
      owner: { type: "string" },
    });
    const dest = values.to;
    if (!dest) throw new UsageError(`--to DIR is required\nusage: ${this.usage}`);
    const owner = parseOwner(values.owner);
    const opts = owner ? { owner } : {};
    let src: string;
    if (values.from !== undefined) {
      if (positionals.length > 0)
        throw new UsageError(`give a goal id or --from, not both\nusage: ${this.usage}`);
      src = values.from;
    } else {
      if (positionals.length !== 1) throw new UsageError(`give exactly one goal id\nusage: ${this.usage}`);
      const goalId = positionals[0] as string;
      src = (await withClient(ctx, (c) => c.call("goal.status", { goal_id: goalId }))).output_dir;
    }
    const report = await copyDeliverables(src, dest, opts);
    if (values.json) printJson(ctx.io, { to: dest, ...report });
    else printReport(ctx.io, report, dest);
    return 0;
  },
};
