// kernel/spawn.ts — making an agent. A manifest that reaches here is untrusted (a model
// wrote it, or a socket client sent it): it is parsed by the manifest schema, then, in
// this order, each step able to refuse before anything is created:
//   admission (agents per goal, depth, children)  -> limit_exceeded
//   grants: a child's must be covered by its parent's VERIFIED grants (narrowGrants; the
//     error names every offending grant); a root agent's must fit the operator's
//     ceilings (grantsWithin) when one is configured                -> capability_denied
//   model: the manifest's, else the parent's (AIDO_MODEL for roots); the client is made
//     now, so a missing key fails the spawn, not the first turn      -> provider_config
//   budget: carved from the parent's account (refused when it lacks room) -> budget_exceeded
//   token: issued under the parent's token (expiry capped at the parent's)
// Every refusal is audited as agent.spawn_denied. A failure after the admission slot was
// taken releases it and undoes what was created (account closed, token revoked).

import { randomBytes } from "node:crypto";
import type { Config } from "../config.js";
import type { Db } from "../db/database.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { LlmClient } from "../llm/types.js";
import type { LoadedManifest } from "../manifest/load.js";
import type { AuditLog } from "../security/audit.js";
import { type BudgetLedger, roomOf } from "../security/budget.js";
import type { Grant } from "../security/grants.js";
import { grantsWithin, narrowGrants } from "../security/narrowing.js";
import type { CapabilityToken, TokenAuthority } from "../security/tokens.js";
import type { EventBus } from "./events.js";
import type { AdmissionGuard, AgentRecord, AgentRegistry } from "./registry.js";

/** Root tokens live this long; children never outlive their parent's token. */
export const ROOT_TOKEN_TTL_SECONDS = 24 * 3600;
export const PERSISTENT_TOKEN_TTL_SECONDS = 30 * 24 * 3600;

export interface SpawnRequest {
  goalId: string;
  manifest: LoadedManifest;
  parent: AgentRecord | null;
  /**
   * Root agents only: the account the agent spends from (the goal's root account, which
   * the goal closes). Absent for a root: a root account of `rootLimit` tokens is opened
   * for the agent and closed with it. Children always get an account carved from the
   * parent's.
   */
  account?: string;
  rootLimit?: number;
  /** Tokens to carve when the child manifest has no budget (default: half the parent's room). */
  defaultShare?: number;
}

export interface SpawnerDeps {
  config: Config;
  /** The runtime's database: a spawn's token, audit entries and agent row share one commit. */
  db: Db;
  registry: AgentRegistry;
  tokens: TokenAuthority;
  budget: BudgetLedger;
  audit: AuditLog;
  events: EventBus;
  /** Make (and remember) the LlmClient for an agent; throws provider_config. */
  makeClient(agentId: string, manifestName: string, model: string): LlmClient;
  forgetClient(agentId: string): void;
}

export function newAgentId(): string {
  return `a_${Date.now().toString(36)}${randomBytes(5).toString("hex")}`;
}

export class Spawner {
  constructor(private readonly deps: SpawnerDeps) {}

  /** Create and register an agent (state "starting"); it runs when the caller runs it. */
  spawn(req: SpawnRequest): AgentRecord {
    const { deps } = this;
    const { parent, goalId } = req;
    const manifest = parent ? inheritRestrictions(req.manifest, parent.manifest) : req.manifest;
    const denied = (e: unknown): never => {
      const offending = e instanceof AidoError ? (e.details.offending as string[] | undefined) : undefined;
      deps.audit.record(
        "agent.spawn_denied",
        { manifest: manifest.name, reason: errorMessage(e), ...(offending ? { offending } : {}) },
        { goalId, agentId: parent?.id ?? null },
      );
      throw e;
    };

    let guard: AdmissionGuard;
    try {
      guard = deps.registry.admit(goalId, parent);
    } catch (e) {
      return denied(e);
    }
    const id = newAgentId();
    let account: string | undefined;
    let token: CapabilityToken | undefined;
    try {
      const grants = this.grantsFor(manifest, parent);
      const model = this.modelFor(manifest, parent);
      deps.makeClient(id, manifest.name, model);
      account = req.account ?? (parent ? this.carve(id, req) : this.openRoot(req));
      const ttl = manifest.lifecycle === "persistent" ? PERSISTENT_TOKEN_TTL_SECONDS : ROOT_TOKEN_TTL_SECONDS;
      // One commit for the token, its two audit entries and the agent's row: the entries
      // are written before the row, so a failed audit registers nothing and leaves no token.
      const rec = deps.db
        .transaction((): AgentRecord => {
          const issued = deps.tokens.issue({
            agentId: id,
            goalId,
            grants,
            ttlSeconds: ttl,
            ...(parent ? { parent: parent.token } : {}),
          });
          deps.audit.appendAll([
            {
              kind: "token.issued",
              payload: {
                token_id: issued.id,
                ...(issued.parentId ? { parent_token_id: issued.parentId } : {}),
                grants: issued.grants,
                expires_at: new Date(issued.expiresAt).toISOString(),
              },
              goalId,
              agentId: id,
            },
            {
              kind: "agent.spawned",
              payload: {
                manifest: manifest.name,
                ...(parent ? { parent_agent_id: parent.id } : {}),
                grants: issued.grants,
                token_id: issued.id,
              },
              goalId,
              agentId: id,
            },
          ]);
          const created: AgentRecord = {
            id,
            goalId,
            parentId: parent?.id ?? null,
            depth: guard.depth,
            manifest,
            identity: parent ? `${parent.identity}/${manifest.name}` : manifest.name,
            model,
            token: issued,
            budgetAccount: account as string,
            ownsAccount: req.account === undefined,
            state: "starting",
            children: new Set(),
            abort: new AbortController(),
            createdAt: Date.now(),
          };
          deps.registry.register(created, guard);
          return created;
        })
        .immediate();
      token = rec.token;
      deps.events.emit("agent.spawned", goalId, {
        agentId: id,
        manifest: manifest.name,
        ...(parent ? { parentId: parent.id } : {}),
        depth: rec.depth,
        model,
      });
      return rec;
    } catch (e) {
      guard.release();
      if (!deps.registry.get(id)) {
        if (token) deps.tokens.revoke(token.id);
        if (account !== undefined && req.account === undefined) deps.budget.close(account);
        deps.forgetClient(id);
      }
      return denied(e);
    }
  }

  private grantsFor(manifest: LoadedManifest, parent: AgentRecord | null): Grant[] {
    const requested = manifest.capabilities;
    if (parent) {
      // The parent's grants as its token carries them: verified now, so a revoked or
      // expired parent cannot spawn, and nothing the parent's manifest claims counts.
      const held = this.deps.tokens.verify(parent.token).grants;
      return narrowGrants(held, requested);
    }
    if (this.deps.config.grantCeilings.length > 0)
      return grantsWithin(this.deps.config.grantCeilings, requested);
    return [...requested];
  }

  private modelFor(manifest: LoadedManifest, parent: AgentRecord | null): string {
    const model = parent
      ? (manifest.model ?? parent.model)
      : (this.deps.config.modelOverride ?? manifest.model);
    if (!model) {
      throw new AidoError(
        ErrorCode.manifestInvalid,
        `manifest "${manifest.name}" names no model: set model: provider/model in it, or AIDO_MODEL`,
        { manifest: manifest.name },
      );
    }
    return model;
  }

  /** A root agent's own account: the cap of its pseudo-goal (standalone agents). */
  private openRoot(req: SpawnRequest): string {
    const account = `goal:${req.goalId}`;
    const limit = req.rootLimit ?? req.manifest.budget?.max_tokens ?? this.deps.config.limits.goalMaxTokens;
    this.deps.budget.open(account, {
      goalId: req.goalId,
      limit,
      ...(req.manifest.budget?.reset_period_seconds
        ? { periodSeconds: req.manifest.budget.reset_period_seconds }
        : {}),
    });
    return account;
  }

  /** Open the child's account, carved from the parent's room. */
  private carve(id: string, req: SpawnRequest): string {
    const parent = req.parent;
    if (!parent) throw new AidoError(ErrorCode.internal, "a root agent needs an account", {});
    const room = roomOf(this.deps.budget.get(parent.budgetAccount));
    const asked = req.manifest.budget?.max_tokens;
    const limit = asked ?? req.defaultShare ?? Math.floor(room / 2);
    if (limit <= 0 || limit > room) {
      throw new AidoError(
        ErrorCode.budgetExceeded,
        `not enough budget to start "${req.manifest.name}": it ${asked ? `asks for ${asked}` : `would get ${limit}`} tokens but agent ${parent.id} has ${Math.max(0, room)} left to give`,
        { account: parent.budgetAccount, requested: limit, room },
      );
    }
    const account = `agent:${id}`;
    this.deps.budget.open(account, {
      goalId: req.goalId,
      limit,
      parentId: parent.budgetAccount,
      ...(req.manifest.budget?.reset_period_seconds
        ? { periodSeconds: req.manifest.budget.reset_period_seconds }
        : {}),
    });
    return account;
  }
}

/**
 * What a child can never drop, whatever its (model-written) manifest says: the tools its
 * parent must wait for a human on stay approval-gated, and an ancestor's max_depth stays
 * the ceiling (a child raising its own limit would otherwise nest past it).
 */
export function inheritRestrictions(child: LoadedManifest, parent: LoadedManifest): LoadedManifest {
  const approvals = [...new Set([...parent.approval_required, ...child.approval_required])];
  const depths = [parent.limits?.max_depth, child.limits?.max_depth].filter(
    (d): d is number => d !== undefined,
  );
  return {
    ...child,
    approval_required: approvals,
    ...(depths.length > 0 ? { limits: { ...child.limits, max_depth: Math.min(...depths) } } : {}),
  };
}
