// cli/commands/approvals.ts — `aido approvals` lists the tool calls waiting for a human
// and, for each, exactly what every answer would cover (this call; this scope for this
// agent until it stops; this scope for every agent of this identity in this project for the
// grant's lifetime); on a terminal it asks about each and answers with approval.respond.
// `aido approvals respond ID DECISION` is the same answer for scripts; `aido approvals
// grants` lists the standing Allow Always grants and `aido approvals revoke ID` ends one.

import type { AidoClient } from "../../client/client.js";
import type { GrantRecord } from "../../security/approval-grants.js";
import {
  carriesSecretsText,
  codeNotShown,
  type ShownCode,
  wholeInput,
} from "../../security/approval-shown.js";
import type { ApprovalDecision, ApprovalRecord } from "../../security/approvals.js";
import { inert, inertLines } from "../../security/terminal-text.js";
import { type CliIo, type Command, jsonOption, parseCommandArgs, printJson, UsageError } from "../command.js";
import { withClient } from "./daemon-client.js";
import { commandSpec } from "./index.js";

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

/**
 * The call's whole input when the summary cut it (security/approval-shown.ts): a model can
 * pad what is shown so that what runs is past the cut. Printed inert, never cut silently.
 * Judged by the input itself, not the summary's text, which a confirm rule's reason follows.
 */
function wholeCall(a: ApprovalRecord): string[] {
  const whole = wholeInput(a.input);
  if (whole === undefined) return [];
  return [
    `    whole input (${whole.total} chars): ${whole.shown}`,
    ...(whole.rest > 0
      ? [`    … ${whole.rest} more chars not shown: \`aido approvals --json\` prints all of it`]
      : []),
  ];
}

/**
 * The text of each file an exec runs as code (approval.list `code`), line by line under a
 * `|` margin, inert: the human approves what runs, not only its name. Code too long to show
 * whole is said so; no standing answer covers such a call (security/approval-shown.ts).
 * A record of an older daemon or node has none.
 */
function codeLines(a: ApprovalRecord): string[] {
  const code: ShownCode[] = Array.isArray(a.code) ? a.code : [];
  const out: string[] = [];
  for (const c of code) {
    if (typeof c?.content !== "string") continue;
    out.push(
      `    runs ${inert(String(c.path))} (sha256 ${inert(String(c.sha256)).slice(0, 16)}…, ${c.chars} chars):`,
    );
    for (const line of inertLines(c.content).split("\n")) out.push(`      | ${line}`);
    if (c.content.length < c.chars)
      out.push(`      … ${c.chars - c.content.length} more chars of ${inert(String(c.path))} not shown`);
  }
  const notShown = codeNotShown(code.filter((c) => typeof c?.content === "string"));
  if (notShown > 0)
    out.push(
      `    THE CODE IS NOT SHOWN WHOLE (${notShown} chars not shown): answer for this call only; no standing answer will cover it`,
    );
  return out;
}

/**
 * A pending request as a human reads it before answering. In a cluster the record is read
 * from Redis, where any writer may have put it: every field is printed inert, and one it
 * lacks (a record of an older node, junk) is said missing rather than failing the list.
 */
function describeApproval(a: ApprovalRecord, now = Date.now()): string[] {
  const f = (v: unknown): string => (typeof v === "string" ? inert(v) : "(missing)");
  const left =
    typeof a.deadline_at === "number"
      ? `${Math.max(0, Math.round((a.deadline_at - now) / 1000))} s left`
      : "no deadline";
  const covers: Partial<ApprovalRecord["covers"]> = a.covers ?? {};
  return [
    `${f(a.id)}  ${f(a.tool)}  agent=${f(a.agent_id)} (identity ${f(a.identity)})${a.goal_id ? ` goal=${f(a.goal_id)}` : ""}${a.request_id ? ` request=${f(a.request_id)}` : ""}  (${left})`,
    `    ${f(a.summary)}`,
    ...carriesSecretsLines(a),
    `    submitted by: ${submittedByText(a.submitted_by, a.goal_id)}`,
    ...wholeCall(a),
    ...codeLines(a),
    `    Allow Once:    ${f(covers.allow_once)}`,
    `    Allow Session: ${f(covers.allow_session)}`,
    `    Allow Always:  ${f(covers.allow_always)}`,
  ];
}

/**
 * The secrets the call carries, by kind (the blanks in its summary stand for them): said before
 * the answers, the fact that decides them. A record of an older daemon or node has none.
 */
function carriesSecretsLines(a: ApprovalRecord): string[] {
  const text = carriesSecretsText(a.carries_secrets);
  return text === undefined ? [] : [`    ${text}`];
}

/**
 * Whose call asks: the user's own goal's, one an MCP session's model submitted (approval.list
 * `submitted_by`; a session's goal may bear the name of the user's own), or the session's own
 * call (its client's direct call, run under the session's pseudo-goal, not a g_ goal).
 */
function submittedByText(by: ApprovalRecord["submitted_by"] | undefined, goalId: unknown): string {
  if (by === null || by === undefined) return "you (not an MCP session)";
  const id = typeof by.session_id === "string" ? inert(by.session_id) : "(missing)";
  if (typeof goalId === "string" && goalId.startsWith("g_"))
    return `MCP session ${id} (its client's model wrote the goal and named its manifest)`;
  return `MCP session ${id}: its own call (its client's model made it, not you)`;
}

/** Why a grant is not honoured, in words, by status. */
const GRANT_STATES: Record<Exclude<GrantRecord["status"], "active">, string> = {
  expired: "expired",
  revoked: "revoked",
  invalid: "invalid: fails verification, honoured nowhere",
  no_project: "made before grants named their project: honoured nowhere, the next request asks again",
};

function describeGrant(g: GrantRecord): string {
  const until = new Date(g.expires_at).toISOString();
  const state = g.status === "active" ? `until ${until}` : GRANT_STATES[g.status];
  return `${g.id}  ${g.target} by agents of identity \`${g.identity}\`${whereOf(g)}  (${state}${g.decided_by ? `, allowed by ${inert(g.decided_by)}` : ""})`;
}

/** The project a grant covers: " in project /home/u/app" (inert: a folder name may hold any byte). */
function whereOf(g: GrantRecord): string {
  return g.project === null ? " in no project" : ` in ${inert(g.project)}`;
}

export async function askEach(io: CliIo, client: AidoClient, pending: ApprovalRecord[]): Promise<number> {
  const prompt = io.prompt;
  if (!prompt) return 0;
  let answered = 0;
  for (const a of pending) {
    for (const line of describeApproval(a)) io.out(line);
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
      io.out(`  ${r.id}: ${r.decision ?? r.status}${r.grant_id ? ` (grant ${r.grant_id})` : ""}`);
      answered++;
      break;
    }
  }
  return answered;
}

export const approvals: Command = {
  ...commandSpec("approvals"),
  async run(ctx) {
    const { values } = parseCommandArgs(this, ctx.argv, jsonOption, false);
    return withClient(ctx, async (client) => {
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
      for (const a of pending) for (const line of describeApproval(a)) ctx.io.out(line);
      ctx.io.out("answer with: aido approvals respond ID allow_once|allow_session|allow_always|deny");
      return 0;
    });
  },
};

export const approvalsRespond: Command = {
  ...commandSpec("approvals respond"),
  async run(ctx) {
    const { values, positionals } = parseCommandArgs(this, ctx.argv, jsonOption);
    const [id, raw] = positionals;
    if (positionals.length !== 2 || id === undefined || raw === undefined)
      throw new UsageError(`give an approval id and a decision\nusage: ${this.usage}`);
    const decision = DECISIONS[raw.toLowerCase()];
    if (!decision)
      throw new UsageError(`decision must be allow_once, allow_session, allow_always or deny, got "${raw}"`);
    const r = await withClient(ctx, (c) => c.call("approval.respond", { id, decision }));
    if (values.json) printJson(ctx.io, r);
    else
      ctx.io.out(
        `${r.id}: ${r.decision ?? r.status} (${r.tool} for ${r.agent_id})${r.grant_id ? ` grant ${r.grant_id}` : ""}`,
      );
    return 0;
  },
};

export const approvalsGrants: Command = {
  ...commandSpec("approvals grants"),
  async run(ctx) {
    const { values } = parseCommandArgs(this, ctx.argv, { ...jsonOption, all: { type: "boolean" } }, false);
    const { grants } = await withClient(ctx, (c) =>
      c.call("approval.grants", values.all ? { all: true } : {}),
    );
    if (values.json) {
      printJson(ctx.io, grants);
      return 0;
    }
    if (grants.length === 0) ctx.io.out(values.all ? "no approval grants" : "no approval grants in force");
    for (const g of grants) ctx.io.out(describeGrant(g));
    if (grants.some((g) => g.status === "active")) ctx.io.out("end one with: aido approvals revoke ID");
    return 0;
  },
};

export const approvalsRevoke: Command = {
  ...commandSpec("approvals revoke"),
  async run(ctx) {
    const { values, positionals } = parseCommandArgs(this, ctx.argv, jsonOption);
    const [id] = positionals;
    if (positionals.length !== 1 || id === undefined)
      throw new UsageError(`give one grant id\nusage: ${this.usage}`);
    const g = await withClient(ctx, (c) => c.call("approval.revoke", { grant_id: id }));
    if (values.json) printJson(ctx.io, g);
    else ctx.io.out(`revoked ${g.id}: ${g.target} by agents of identity \`${g.identity}\`${whereOf(g)}`);
    return 0;
  },
};
