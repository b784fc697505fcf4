// intent/intents.ts — persistent intent: one active objective per project folder, shared
// by every client of the daemon (the CLI, socket scripts, each MCP session), kept across
// restarts, with its history. A workspace is named by its canonical host path (realpath),
// so `~/proj`, a link to it and `/home/u/proj/.` are one workspace; a path that does not
// exist or is not a folder is refused naming `workspace`. The user (CLI, scripts, the
// dashboard) sets and clears anything; an MCP session (its client's model) replaces or
// clears only an objective it set itself, and never lifts a budget: the objective is the
// one the user's own goals from the folder carry, with its token cap. Every change, and
// every refusal, is audited (intent.set / intent.step / intent.cleared / intent.checked /
// intent.refused). Goals that carry an
// intent charge it with their tokens (kernel/goal-intent.ts); its check runs through the
// gate as an agent the caller names (daemon/intent-check.ts), never here.

import { realpathSync, statSync } from "node:fs";
import type { Db } from "../db/database.js";
import { AidoError, ErrorCode } from "../errors.js";
import type { AuditLog } from "../security/audit.js";
import { type Intent, type IntentCheckResult, IntentStore } from "./store.js";

/** Who changed an intent when the client did not say. */
const DEFAULT_BY = "socket client";
/** Earlier intents intent.status shows with `history`. */
const HISTORY_SHOWN = 20;

export interface IntentSet {
  workspace: string;
  objective: string;
  budget_tokens?: number | undefined;
  check?: string | undefined;
  by?: string | undefined;
  /** The MCP session the request speaks for (daemon/principal.ts); absent: the user. */
  session?: string | undefined;
}

/** What an MCP session's changes are recorded as (`set_by`, `ended_by`). */
const sessionLabel = (session: string): string => `mcp session ${session}`;

/**
 * The canonical host path of a project folder. Resolved by the daemon (links followed,
 * `..` removed), so every client naming the same folder reaches the same intent.
 */
export function workspaceKey(path: string): string {
  let real: string;
  try {
    real = realpathSync(path);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === "ENOENT" ? "does not exist" : (e as Error).message;
    throw new AidoError(ErrorCode.invalidInput, `workspace: ${path} ${why}`, { field: "workspace", path });
  }
  if (!statSync(real).isDirectory()) {
    throw new AidoError(ErrorCode.invalidInput, `workspace: ${path} is not a folder`, {
      field: "workspace",
      path,
    });
  }
  return real;
}

export class Intents {
  private readonly store: IntentStore;

  constructor(
    db: Db,
    private readonly audit: AuditLog,
  ) {
    this.store = new IntentStore(db);
  }

  /**
   * intent.set: the workspace's new active objective (the previous one, if any, is kept as
   * replaced). The user replaces anything. An MCP session (`session`) replaces only an
   * objective it set itself, and never lifts its budget (sessionBudget); anything else is
   * refused, audited as intent.refused, and nothing changes.
   */
  set(p: IntentSet): Intent {
    const workspace = workspaceKey(p.workspace);
    const by = p.session !== undefined ? sessionLabel(p.session) : (p.by ?? DEFAULT_BY);
    const { budget, shareBudget } =
      p.session !== undefined
        ? this.sessionBudget(workspace, p.session, p.budget_tokens)
        : { budget: p.budget_tokens, shareBudget: false };
    // No await between the check above and the insert: no other request changes the row between.
    const { intent, replaced } = this.store.insert({
      workspace,
      objective: p.objective,
      by,
      shareBudget,
      ...(budget !== undefined ? { budget_tokens: budget } : {}),
      ...(p.check !== undefined ? { check: p.check } : {}),
      ...(p.session !== undefined ? { session: p.session } : {}),
    });
    this.audit.record("intent.set", {
      intent_id: intent.id,
      workspace,
      objective: intent.objective,
      by,
      ...(budget !== undefined ? { budget_tokens: budget } : {}),
      ...(p.check !== undefined ? { check: p.check } : {}),
      ...(replaced !== undefined ? { replaced } : {}),
    });
    return intent;
  }

  /**
   * The budget of the objective a session sets: what it asked when the folder has no active
   * objective; else (the active one must be the session's own, requireSetBy) at most what the
   * replaced objective had left, which an omitted `budget_tokens` carries forward. The new row
   * starts at tokens_spent 0, so carrying the cap itself would hand the session what was spent
   * again. A budget carried forward is one account (`shareBudget`, store.ts): goals still
   * running under the old objective charge the new one too, and goals starting under the new
   * one count what those may still spend (goal-intent.ts carryIntent). Before, they charged
   * the old one only, and a session that replaced its objective N times, each with a goal
   * running, could spend N times the budget the user set.
   */
  private sessionBudget(
    workspace: string,
    session: string,
    asked: number | undefined,
  ): { budget: number | undefined; shareBudget: boolean } {
    const active = this.active(workspace);
    if (!active) return { budget: asked, shareBudget: false };
    this.requireSetBy(active, session, "set");
    if (active.tokens_left === null) return { budget: asked, shareBudget: false };
    if (asked === undefined) return { budget: active.tokens_left, shareBudget: true };
    if (asked > active.tokens_left) {
      this.refuse(
        "set",
        active,
        session,
        `budget_tokens ${asked} is more than intent ${active.id} (${workspace}) has left (${active.tokens_left} of budget_tokens ${active.budget_tokens}, ${active.tokens_spent} spent): an MCP session may lower the budget of the objective it replaces, never raise it; the user raises it with \`aido intent set --budget N\``,
        { field: "budget_tokens", budget_tokens: asked, tokens_left: active.tokens_left },
      );
    }
    return { budget: asked, shareBudget: true };
  }

  /** A session changes only an objective it set; the user's, or another session's, is refused (audited). */
  private requireSetBy(active: Intent, session: string, action: "set" | "clear"): void {
    if (active.set_by_session === session) return;
    const who =
      active.set_by_session === null
        ? `the user (set_by ${JSON.stringify(active.set_by)})`
        : `another MCP session, ${active.set_by_session}`;
    this.refuse(
      action,
      active,
      session,
      `intent ${active.id} (${active.workspace}) was set by ${who}: MCP session ${session} may not ${action === "set" ? "replace" : "clear"} it (a session changes only an objective it set itself); the user changes it with \`aido intent set\` or \`aido intent clear\``,
      { field: "workspace", set_by: active.set_by, set_by_session: active.set_by_session },
    );
  }

  private refuse(
    action: "set" | "clear",
    active: Intent,
    session: string,
    reason: string,
    details: Record<string, unknown>,
  ): never {
    this.audit.record("intent.refused", {
      intent_id: active.id,
      workspace: active.workspace,
      action,
      session_id: session,
      reason,
    });
    throw new AidoError(ErrorCode.policyDenied, reason, {
      intent_id: active.id,
      workspace: active.workspace,
      session_id: session,
      ...details,
    });
  }

  /** intent.step: one more step with its note; not_found when the workspace has no active intent. */
  step(p: { workspace: string; note: string; by?: string | undefined }): Intent {
    const active = this.requireActive(p.workspace);
    const intent = this.store.addStep(active.id, p.note, p.by);
    this.audit.record("intent.step", {
      intent_id: intent.id,
      workspace: intent.workspace,
      step: intent.step_count,
      note: p.note,
      ...(p.by !== undefined ? { by: p.by } : {}),
    });
    return intent;
  }

  /** intent.status: the active intent or null, and with `history` the earlier ones, newest first. */
  status(p: { workspace: string; history?: boolean | undefined }): {
    intent: Intent | null;
    history?: Intent[];
  } {
    const workspace = workspaceKey(p.workspace);
    const intent = this.active(workspace) ?? null;
    return p.history ? { intent, history: this.store.history(workspace, HISTORY_SHOWN) } : { intent };
  }

  /**
   * intent.status by id (the intent a goal carries, GoalStatus.intent_id): that intent
   * whatever its state, and with `history` the other intents of its folder; not_found
   * for an unknown id.
   */
  statusOf(id: string, history?: boolean): { intent: Intent; history?: Intent[] } {
    const intent = this.store.get(id);
    if (!intent) throw new AidoError(ErrorCode.notFound, `no intent ${id}`, { intent_id: id });
    return history ? { intent, history: this.store.history(intent.workspace, HISTORY_SHOWN) } : { intent };
  }

  /**
   * intent.clear: the active intent ends cleared (kept as history); not_found when there is
   * none. An MCP session (`session`) clears only an objective it set (requireSetBy).
   */
  clear(p: { workspace: string; by?: string | undefined; session?: string | undefined }): Intent {
    const active = this.requireActive(p.workspace);
    if (p.session !== undefined) this.requireSetBy(active, p.session, "clear");
    const by = p.session !== undefined ? sessionLabel(p.session) : (p.by ?? DEFAULT_BY);
    const intent = this.store.clear(active.id, by);
    this.audit.record("intent.cleared", { intent_id: intent.id, workspace: intent.workspace, by });
    return intent;
  }

  /** The active intent of a workspace key (already canonical). */
  active(workspace: string): Intent | undefined {
    const id = this.store.activeId(workspace);
    return id === undefined ? undefined : this.store.get(id);
  }

  get(id: string): Intent | undefined {
    return this.store.get(id);
  }

  /** The active intent of a workspace a client named; not_found naming the workspace when none. */
  requireActive(path: string): Intent {
    const workspace = workspaceKey(path);
    const intent = this.active(workspace);
    if (!intent) {
      throw new AidoError(ErrorCode.notFound, `no active intent for workspace ${workspace}`, {
        field: "workspace",
        workspace,
      });
    }
    return intent;
  }

  /** Record what a check found (daemon/intent-check.ts ran it as `result.agent_id`), audited. */
  recordCheck(intent: Intent, result: IntentCheckResult, goalId: string | null): Intent {
    const after = this.store.recordCheck(intent.id, result);
    this.audit.record(
      "intent.checked",
      {
        intent_id: intent.id,
        workspace: intent.workspace,
        command: result.command,
        met: result.met,
        exit_code: result.exit_code,
        ...(result.denied ? { denied: result.denied } : {}),
        ...(result.error !== undefined ? { error: result.error } : {}),
      },
      { goalId, agentId: result.agent_id },
    );
    return after;
  }

  /** Tokens a goal carrying the intent spent (every committed model call). */
  charge(id: string, tokens: number): void {
    if (tokens > 0) this.store.charge(id, tokens);
  }
}
