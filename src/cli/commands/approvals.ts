// cli/commands/approvals.ts — `aido approvals` lists the tool calls waiting for a human;
// on a terminal it asks about each (tool, agent, summary) and answers with
// approval.respond. `aido approvals respond ID DECISION` is the same answer for scripts.

import type { AidoClient } from "../../client/client.js";
import type { ApprovalDecision, ApprovalRecord } from "../../security/approvals.js";
import { type CliIo, type Command, jsonOption, parseCommandArgs, printJson, UsageError } from "../command.js";
import { withClient } from "./daemon-client.js";

const DECISIONS: Record<string, ApprovalDecision> = {
  allow_once: "allow_once",
  once: "allow_once",
  o: "allow_once",
  allow_session: "allow_session",
  session: "allow_session",
  s: "allow_session",
  allow_always: "allow_always",
  always: "allow_always",
  a: "allow_always",
  deny: "deny",
  d: "deny",
};

function describe(a: ApprovalRecord): string {
  const left = Math.max(0, Math.round((a.deadline_at - Date.now()) / 1000));
  return `${a.id}  ${a.tool}  agent=${a.agent_id}${a.goal_id ? ` goal=${a.goal_id}` : ""}  (${left} s left)\n    ${a.summary}`;
}

async function askEach(io: CliIo, client: AidoClient, pending: ApprovalRecord[]): Promise<number> {
  const prompt = io.prompt;
  if (!prompt) return 0;
  let answered = 0;
  for (const a of pending) {
    io.out(describe(a));
    for (;;) {
      const raw = await prompt("  Allow [o]nce / Allow [s]ession / Allow [a]lways / [d]eny / s[k]ip? ");
      if (raw === undefined) return answered; // end of input: leave the rest waiting
      const answer = raw.trim().toLowerCase();
      if (answer === "k" || answer === "skip" || answer === "") break;
      const decision = DECISIONS[answer];
      if (!decision) {
        io.out("  answer o, s, a, d or k");
        continue;
      }
      const r = await client.call("approval.respond", { id: a.id, decision });
      io.out(`  ${r.id}: ${r.decision ?? r.status}`);
      answered++;
      break;
    }
  }
  return answered;
}

export const approvals: Command = {
  name: "approvals",
  summary: "list tool calls waiting for a human; on a terminal, answer them one by one",
  usage: "aido approvals [--json]   (scripts: aido approvals respond ID DECISION)",
  example: "aido approvals",
  async run(ctx) {
    const { values } = parseCommandArgs(this, ctx.argv, jsonOption, false);
    return withClient(ctx.config(), async (client) => {
      const { approvals: pending } = await client.call("approval.list", { status: "pending" });
      if (values.json) {
        printJson(ctx.io, pending);
        return 0;
      }
      if (pending.length === 0) {
        ctx.io.out("no approvals waiting");
        return 0;
      }
      if (ctx.io.interactive && ctx.io.prompt) {
        await askEach(ctx.io, client, pending);
        return 0;
      }
      for (const a of pending) ctx.io.out(describe(a));
      ctx.io.out("answer with: aido approvals respond ID allow_once|allow_session|allow_always|deny");
      return 0;
    });
  },
};

export const approvalsRespond: Command = {
  name: "approvals respond",
  summary: "answer one approval request",
  usage: "aido approvals respond ID allow_once|allow_session|allow_always|deny [--json]",
  example: "aido approvals respond ap-7f3c2a deny",
  async run(ctx) {
    const { values, positionals } = parseCommandArgs(this, ctx.argv, jsonOption);
    const [id, raw] = positionals;
    if (positionals.length !== 2 || id === undefined || raw === undefined)
      throw new UsageError(`give an approval id and a decision\nusage: ${this.usage}`);
    const decision = DECISIONS[raw.toLowerCase()];
    if (!decision)
      throw new UsageError(`decision must be allow_once, allow_session, allow_always or deny, got "${raw}"`);
    const r = await withClient(ctx.config(), (c) => c.call("approval.respond", { id, decision }));
    if (values.json) printJson(ctx.io, r);
    else ctx.io.out(`${r.id}: ${r.decision ?? r.status} (${r.tool} for ${r.agent_id})`);
    return 0;
  },
};
