// mcp/orchestrator-tools.ts — the MCP tools that are not gated tool calls but daemon
// operations: hand a goal to the swarm and follow it (aido_submit, aido_status, aido_wait,
// aido_cancel, aido_events), the approvals around it (aido_approvals, aido_approve),
// aido_list_agents and aido_orchestrator_info; the project folder's persistent intent
// (aido_goal_set, aido_goal_step, aido_goal_status, aido_goal_clear: intent.* keyed by the
// session's bound folder); propose -> simulate -> execute (aido_simulate, aido_plan,
// aido_plan_execute: plan.* as the session's agent); parallel worlds (aido_spawn_worlds,
// aido_adopt_world: spawn_worlds and adopt_world as the session's agent). One table: an entry is a name, a
// description, a strict zod input (its JSON Schema is what tools/list shows; a malformed
// input is answered with an isError result naming the field), annotations and a run
// over the daemon client (how an entry is served: daemon-tools.ts). Adding a daemon-backed
// tool is one entry here.
//
// Reach: a session sees and steers only its own work — goals it submitted and its own
// agent. aido_approve is the sharp one: the client's model is the very agent approvals
// check, so it never answers an approval of the session's own calls, answers approvals
// of goals this session submitted only when `aido mcp serve --allow-approve` was given,
// and never any other; nor, even then, a goal's egress to a host the session's own network
// grants do not reach (approve-reach.ts).

import { z } from "zod";
import type { ApprovalRecord } from "../client/types.js";
import type { Config } from "../config.js";
import { planSteps } from "../daemon/schemas.js";
import { AidoError, ErrorCode } from "../errors.js";
import { budgetField, checkField, noteField, objectiveField } from "../intent/fields.js";
import { parseManifestValue } from "../manifest/load.js";
import { ANY_TOOL } from "./approvals-bridge.js";
import { egressBeyondSession } from "./approve-reach.js";
import { ACT, asMcpTools, type DaemonTool, id, LONG_MS, READ, RefusedHere, tool } from "./daemon-tools.js";
import { sessionInputs } from "./submit-inputs.js";
import type { CallContext, McpTool } from "./tool-types.js";
import { withHuman } from "./typed-tools.js";

const MAX_WAIT_MS = 10 * 60 * 1000;

/** Refuse a goal this session did not submit (named in the error). */
function ownGoal(ctx: CallContext, goalId: string): void {
  if (!ctx.submitted.has(goalId)) {
    throw new RefusedHere(
      `goal ${goalId} was not submitted by this MCP session (aido_submit); it is not yours to steer`,
    );
  }
}

function mine(ctx: CallContext, a: Pick<ApprovalRecord, "agent_id" | "goal_id">): boolean {
  return a.agent_id === ctx.session.agent_id || (a.goal_id !== null && ctx.submitted.has(a.goal_id));
}

/** The session's project folder, which keys its persistent intent; refused without one. */
function projectOf(ctx: CallContext): string {
  if (ctx.session.workspace === null) {
    throw new RefusedHere(
      "this session has no project folder: persistent intent belongs to one (start the server with `aido mcp serve --workspace DIR`)",
    );
  }
  return ctx.session.workspace;
}

/**
 * A step or clear of a folder with no active objective: the daemon refuses it (not_found)
 * without an audit entry, since nothing changed; every other refusal of the session's calls
 * is on record, so this one is too (session.call_refused). The daemon's check decides, so a
 * race with another session's clear is judged once.
 */
async function refusedIfNone<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof AidoError && e.code === ErrorCode.notFound) throw new RefusedHere(e.message);
    throw e;
  }
}

/** Who set or stepped an objective, as the intent records it. */
const bySession = (ctx: CallContext): string => `mcp session ${ctx.session.session_id}`;

export function orchestratorTable(config: Config, version: string) {
  return [
    tool({
      name: "aido_submit",
      description:
        "Hand a goal to Aido's swarm: a bootstrap agent decomposes it and delegates to narrowly scoped children, each call gated and sandboxed. The goal reaches no further than this session: a manifest with network or mcp grants (or mcp_servers) beyond this session's is refused, and the default bootstrap is narrowed to them. Returns the goal id.",
      input: z.strictObject({
        goal: z.string().min(1).max(100_000),
        manifest: z.union([z.string().min(1), z.record(z.string(), z.unknown())]).optional(),
        inputs: z.array(z.string().min(1).max(4096)).max(256).optional(),
      }),
      annotations: { ...ACT, openWorldHint: true },
      async run(p, ctx) {
        // From the session's project folder: the goal carries its standing objective (docs/intent.md).
        // As this session: the daemon holds the goal's network and MCP reach to the session's
        // (kernel/goal-reach.ts), so the goal cannot send out what the session could not.
        const workspace = ctx.session.workspace;
        const r: { goal_id: string } = await ctx.link.client.call("goal.submit", {
          ...p,
          session_id: ctx.session.session_id,
          ...(p.inputs !== undefined ? sessionInputs(p.inputs, ctx.session) : {}),
          ...(workspace !== null ? { workspace } : {}),
        });
        ctx.submitted.add(r.goal_id);
        return r;
      },
    }),
    tool({
      name: "aido_status",
      description:
        "The state, result or error, token usage and output folder of a goal this session submitted.",
      input: z.strictObject({ goal_id: id }),
      annotations: READ,
      run: (p, ctx) => {
        // Another client's goal (its text, result, error, output folder) is not this session's to read.
        ownGoal(ctx, p.goal_id);
        return ctx.link.client.call("goal.status", p);
      },
    }),
    tool({
      name: "aido_wait",
      description: `Wait until a goal this session submitted ends or timeout_ms passes (default 60000, at most ${MAX_WAIT_MS}); returns its status.`,
      input: z.strictObject({ goal_id: id, timeout_ms: z.number().int().min(0).max(MAX_WAIT_MS).optional() }),
      annotations: READ,
      run: (p, ctx) => {
        ownGoal(ctx, p.goal_id);
        const timeout = p.timeout_ms ?? 60_000;
        // Its own connection: a wait the client cancels ends at once (the daemon drops a
        // goal.wait whose client left); on the shared one it was held for its timeout.
        return ctx.calls.run(ctx.signal, (own) =>
          own.call("goal.wait", { goal_id: p.goal_id, timeout_ms: timeout }, { timeoutMs: timeout + 15_000 }),
        );
      },
    }),
    tool({
      name: "aido_cancel",
      description: "Cancel a goal this session submitted.",
      input: z.strictObject({ goal_id: id }),
      annotations: { ...ACT, destructiveHint: true },
      run: (p, ctx) => {
        ownGoal(ctx, p.goal_id);
        return ctx.link.client.call("goal.cancel", p);
      },
    }),
    tool({
      name: "aido_events",
      description:
        "Audit entries after a cursor, oldest first: of a goal this session submitted (goal_id), or of this session's own calls. Returns the entries and the next cursor.",
      input: z.strictObject({
        goal_id: id.optional(),
        cursor: z.number().int().min(0).optional(),
        limit: z.number().int().min(1).max(1000).optional(),
      }),
      annotations: READ,
      async run(p, ctx) {
        if (p.goal_id !== undefined) ownGoal(ctx, p.goal_id);
        const { entries } = await ctx.link.client.call("audit.query", {
          ...(p.goal_id !== undefined ? { goal_id: p.goal_id } : { agent_id: ctx.session.agent_id }),
          after_seq: p.cursor ?? 0,
          limit: p.limit ?? 200,
        });
        return { entries, cursor: entries.at(-1)?.seq ?? p.cursor ?? 0 };
      },
    }),
    tool({
      name: "aido_approvals",
      description:
        "Calls waiting for a human: this session's own and those of goals it submitted, with what each answer would cover.",
      input: z.strictObject({}),
      annotations: READ,
      async run(_p, ctx) {
        const { approvals } = await ctx.link.client.call("approval.list", {});
        return {
          approvals: approvals
            .filter((a) => mine(ctx, a))
            .map((a) => ({
              id: a.id,
              goal_id: a.goal_id,
              agent_id: a.agent_id,
              tool: a.tool,
              summary: a.summary,
              covers: a.covers,
            })),
        };
      },
    }),
    tool({
      name: "aido_approve",
      description:
        "Answer an approval of a goal this session submitted (only when the server runs with --allow-approve). Never answers this session's own calls: a human does, through the client's prompt or `aido approvals`.",
      input: z.strictObject({
        id,
        decision: z.enum(["allow_once", "allow_session", "allow_always", "deny"]),
      }),
      annotations: { ...ACT, destructiveHint: true },
      async run(p, ctx) {
        const { approvals } = await ctx.link.client.call("approval.list", {});
        const a = approvals.find((x) => x.id === p.id);
        if (!a) throw new RefusedHere(`no pending approval ${p.id}`);
        if (a.agent_id === ctx.session.agent_id) {
          throw new RefusedHere(
            `approval ${p.id} is for this session's own call: the agent an approval checks cannot answer it; a human answers with the client's prompt or \`aido approvals\``,
          );
        }
        if (a.goal_id === null || !ctx.submitted.has(a.goal_id)) {
          throw new RefusedHere(`approval ${p.id} belongs to a goal this session did not submit`);
        }
        if (!ctx.allowApprove) {
          throw new RefusedHere(
            `answering approvals from MCP is off: the operator starts the server with \`aido mcp serve --allow-approve\` to allow it for goals this session submitted; otherwise a human answers with \`aido approvals\``,
          );
        }
        const beyond = egressBeyondSession(a, ctx.session.grants);
        if (beyond !== undefined) throw new RefusedHere(beyond);
        // Allow Always outlives the goal: a grant for the manifest's identity in the folder the
        // goal came from. The model names that manifest (aido_submit), so its grant would cover
        // the person's own later goals of that name from the folder, nobody asked.
        if (p.decision === "allow_always") {
          throw new RefusedHere(
            `approval ${p.id}: aido_approve answers allow_once, allow_session or deny; Allow Always outlives the goal (it covers later goals of the same manifest from the folder) and is a human's to give with \`aido approvals\``,
          );
        }
        return ctx.link.client.call("approval.respond", p);
      },
    }),
    tool({
      name: "aido_list_agents",
      description: "The agents of goals this session submitted, and this session's own agent.",
      input: z.strictObject({ include_stopped: z.boolean().optional() }),
      annotations: READ,
      async run(p, ctx) {
        const { agents } = await ctx.link.client.call(
          "agent.list",
          p.include_stopped !== undefined ? { include_stopped: p.include_stopped } : {},
        );
        return {
          agents: agents.filter((a) => a.agent_id === ctx.session.agent_id || ctx.submitted.has(a.goal_id)),
        };
      },
    }),
    tool({
      name: "aido_goal_set",
      description:
        "Set the standing objective of this session's project folder, shared with every client and session on it. Sets one when none is active, or replaces one this session set (kept as history); the user's or another session's objective is refused. Goals submitted from the folder carry it; budget_tokens caps what they may spend (left out when replacing: what the old objective had left; never more than that); check is a command whose exit 0 says the objective is met.",
      input: z.strictObject({
        objective: objectiveField,
        budget_tokens: budgetField.optional(),
        check: checkField.optional(),
      }),
      annotations: ACT,
      run: (p, ctx) =>
        ctx.link.client.call("intent.set", { workspace: projectOf(ctx), ...p, by: bySession(ctx) }),
    }),
    tool({
      name: "aido_goal_step",
      description: "Record a step towards the project folder's standing objective.",
      input: z.strictObject({ note: noteField }),
      annotations: ACT,
      run: (p, ctx) =>
        refusedIfNone(
          ctx.link.client.call("intent.step", {
            workspace: projectOf(ctx),
            note: p.note,
            by: bySession(ctx),
          }),
        ),
    }),
    tool({
      name: "aido_goal_status",
      description:
        "The project folder's standing objective: steps, tokens spent of its budget, the last check. With check: true, first runs the objective's check command as this session's agent, through the gate (it may wait for a human like any exec).",
      input: z.strictObject({ check: z.boolean().optional() }),
      annotations: { ...ACT, readOnlyHint: false },
      async run(p, ctx) {
        const workspace = projectOf(ctx);
        const checked =
          p.check === true
            ? // Its own connection: a check the client cancels is stopped (its command ends).
              await ctx.calls.run(ctx.signal, (own) =>
                withHuman("exec", ctx, (onStarted) =>
                  own.call(
                    "intent.check",
                    { workspace, agent_id: ctx.session.agent_id },
                    { timeoutMs: LONG_MS, onStarted },
                  ),
                ),
              )
            : undefined;
        const status = await ctx.link.client.call("intent.status", { workspace });
        return checked === undefined ? status : { ...status, checked };
      },
    }),
    tool({
      name: "aido_goal_clear",
      description:
        "Clear the project folder's standing objective (kept as history), when this session set it.",
      input: z.strictObject({}),
      annotations: { ...ACT, destructiveHint: true },
      run: (_p, ctx) =>
        refusedIfNone(
          ctx.link.client.call("intent.clear", { workspace: projectOf(ctx), by: bySession(ctx) }),
        ),
    }),
    tool({
      name: "aido_simulate",
      description:
        "What the gate would decide about each step ({tool, input}) as this session's agent, and what each would read, write, run and contact, and whether a human would be asked; runs nothing. With shadow: true the steps really run in a throwaway copy of the workspace and the result carries each step's output and the file diff; the real workspace is untouched.",
      input: z.strictObject({ steps: planSteps, shadow: z.boolean().optional() }),
      annotations: READ,
      run: (p, ctx) =>
        // Its own connection: a shadow run the client cancels is stopped.
        ctx.calls.run(ctx.signal, (own) =>
          own.call("plan.simulate", { agent_id: ctx.session.agent_id, ...p }, { timeoutMs: LONG_MS }),
        ),
    }),
    tool({
      name: "aido_plan",
      description:
        "Record a plan (a title and its steps) in the ledger with its simulation and a hash over the steps, this session's grants and the policy. aido_plan_execute runs exactly those steps.",
      input: z.strictObject({ title: z.string().min(1).max(200), steps: planSteps }),
      annotations: ACT,
      async run(p, ctx) {
        const r = await ctx.link.client.call("plan.create", { agent_id: ctx.session.agent_id, ...p });
        ctx.plans.add(r.plan_id);
        return r;
      },
    }),
    tool({
      name: "aido_plan_execute",
      description:
        "Run a recorded plan once, step by step through the gate (approvals apply), after a snapshot; refused when its steps, the grants or the policy changed since it was simulated. Stops at the first failed step; on_failure: restore rolls the workspace back to before the plan.",
      input: z.strictObject({ plan_id: id, on_failure: z.enum(["stop", "restore"]).optional() }),
      annotations: { ...ACT, destructiveHint: true },
      run: (p, ctx) => {
        // A plan is run by the session that recorded it: another's (same grants or not) is not this one's to use up.
        if (!ctx.plans.has(p.plan_id)) {
          throw new RefusedHere(
            `plan ${p.plan_id} was not recorded by this MCP session (aido_plan); it is not yours to run`,
          );
        }
        // Its own connection: a plan the client cancels stops at the step running (stopped,
        // tool.failed cancelled), runs no later step and is recorded failed (plan.executed).
        return ctx.calls.run(ctx.signal, (own) =>
          withHuman(ANY_TOOL, ctx, (onStarted) =>
            own.call(
              "plan.execute",
              { ...p, agent_id: ctx.session.agent_id },
              { timeoutMs: LONG_MS, onStarted },
            ),
          ),
        );
      },
    }),
    tool({
      name: "aido_spawn_worlds",
      description:
        "Try one task N ways at once: N children of this session's agent (manifest: its grants held to the session's, and a model it names, since this session calls none), each in its own copy of the workspace with its own budget. Returns each world's receipt (summary, usage, file diff); the real workspace is untouched. Held to the session manifest's limits.max_children and spawn_child grants.",
      input: z.strictObject({
        task: z.string().min(1).max(100_000),
        // As spawn_worlds' own schema (kernel/world-tools.ts), which the daemon applies too.
        worlds: z.number().int().min(2).max(8),
        manifest: z.union([
          z
            .string()
            .min(1)
            .max(256 * 1024),
          z.record(z.string(), z.unknown()),
        ]),
      }),
      annotations: { ...ACT, openWorldHint: true },
      run: (p, ctx) => {
        requireModel(p.manifest);
        return gated("spawn_worlds", p, ctx);
      },
    }),
    tool({
      name: "aido_adopt_world",
      description:
        "Apply one world's file changes (from aido_spawn_worlds) to the workspace through the gate as this session's agent, after a snapshot: every changed path must be one its file_write grants allow, else nothing is written. The other worlds are discarded.",
      input: z.strictObject({ world_id: id }),
      annotations: { ...ACT, destructiveHint: true },
      run: (p, ctx) => gated("adopt_world", p, ctx),
    }),
    tool({
      name: "aido_orchestrator_info",
      description:
        "Aido's version, limits and policy summary, and this session: its agent, workspace, held grants, callable tools and which of them wait for a human.",
      input: z.strictObject({}),
      annotations: READ,
      run: async (_p, ctx) => ({
        version,
        session: ctx.session,
        limits: {
          max_concurrent_goals: config.limits.maxConcurrentGoals,
          goal_max_tokens: config.limits.goalMaxTokens,
          max_depth: config.limits.maxDepth,
          max_children: config.limits.maxChildren,
          tool_output_max_bytes: config.limits.toolOutputMaxBytes,
          exec_timeout_ms: config.sandbox.execTimeoutMs,
          workspace_max_mb: config.sandbox.workspaceMaxMb,
          approval_timeout_ms: config.approvals.timeoutMs,
        },
        policy: {
          deny_rules: config.policy.deny.length,
          confirm_rules: config.policy.confirm.length,
          snapshot_before_mutation: config.policy.snapshotBeforeMutation,
          landlock: config.sandbox.landlock,
          approve_from_mcp: ctx.allowApprove ? "goals this session submitted" : "off",
        },
      }),
    }),
  ];
}

/**
 * The session's agent calls no model, so a world's child could not inherit one: its
 * manifest must name it (the daemon holds it to models.allowed and the session's budget).
 */
function requireModel(manifest: unknown): void {
  let model: string | undefined;
  try {
    model = parseManifestValue(manifest, "aido_spawn_worlds manifest").model;
  } catch (e) {
    throw new RefusedHere(e instanceof Error ? e.message : String(e));
  }
  if (model === undefined) {
    throw new RefusedHere(
      "manifest.model: this session's agent calls no model, so each world's child must name the one it runs on (provider/model, held to models.allowed)",
    );
  }
}

/**
 * A gated tool of the session's agent whose result is the tool's data (an error result stays
 * one), on a connection of its own: a cancel stops what takes the daemon's signal. An
 * adopt_world past its approval takes none and runs to its end (never half-applied);
 * spawn_worlds' children are stopped and its worlds discarded (kernel/worlds.ts).
 */
async function gated(tool: string, input: Record<string, unknown>, ctx: CallContext): Promise<unknown> {
  const r: { output: string; is_error: boolean; data?: unknown } = await ctx.calls.run(ctx.signal, (own) =>
    withHuman(tool, ctx, (onStarted) =>
      own.call(
        "tool.invoke",
        { agent_id: ctx.session.agent_id, tool, input },
        { timeoutMs: LONG_MS, onStarted },
      ),
    ),
  );
  if (r.is_error) throw new RefusedHere(r.output);
  return r.data ?? r.output;
}

/** The table as MCP tools (daemon-tools.ts). */
export function orchestratorTools(config: Config, version: string): McpTool[] {
  return asMcpTools(orchestratorTable(config, version) as DaemonTool<z.ZodType>[]);
}
