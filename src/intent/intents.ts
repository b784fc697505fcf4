// intent/intents.ts — persistent intent: one active objective per project folder, shared
// by every client of the daemon (the CLI, socket scripts, each MCP session), kept across
// restarts, with its history. A workspace is named by its canonical host path (realpath),
// so `~/proj`, a link to it and `/home/u/proj/.` are one workspace; a path that does not
// exist or is not a folder is refused naming `workspace`. Every change is audited
// (intent.set / intent.step / intent.cleared / intent.checked). Goals that carry an
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
}

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

  /** intent.set: the workspace's new active objective (the previous one, if any, is kept as replaced). */
  set(p: IntentSet): Intent {
    const workspace = workspaceKey(p.workspace);
    const by = p.by ?? DEFAULT_BY;
    const { intent, replaced } = this.store.insert({
      workspace,
      objective: p.objective,
      by,
      ...(p.budget_tokens !== undefined ? { budget_tokens: p.budget_tokens } : {}),
      ...(p.check !== undefined ? { check: p.check } : {}),
    });
    this.audit.record("intent.set", {
      intent_id: intent.id,
      workspace,
      objective: intent.objective,
      by,
      ...(p.budget_tokens !== undefined ? { budget_tokens: p.budget_tokens } : {}),
      ...(p.check !== undefined ? { check: p.check } : {}),
      ...(replaced !== undefined ? { replaced } : {}),
    });
    return intent;
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

  /** intent.clear: the active intent ends cleared (kept as history); not_found when there is none. */
  clear(p: { workspace: string; by?: string | undefined }): Intent {
    const active = this.requireActive(p.workspace);
    const by = p.by ?? DEFAULT_BY;
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
