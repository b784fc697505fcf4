// kernel/spawn.ts — making an agent. A manifest that reaches here is untrusted (a model
// wrote it, or a socket client sent it): it is parsed by the manifest schema, then, in
// this order, each step able to refuse before anything is created:
//   admission (agents per goal, depth, children)  -> limit_exceeded
//   narrowing, every axis in one refusal that names each offending key:
//     a child's grants must be covered by its parent's VERIFIED grants (narrowGrants'
//     rule; details.offending lists every offending grant), its skills, model, limits,
//     memory and reset period held to its parent's effective manifest
//     (narrow-manifest.ts), and, when anything else offends, its budget.max_tokens to
//     what the parent has left                                       -> capability_denied
//     a root's grants must fit the operator's ceilings (grantsWithin) when one is
//     configured, its model models.allowed; its omissions are written out -> capability_denied
//   model: the manifest's, else the parent's (AIDO_MODEL for roots); the client is made
//     now, so a missing key fails the spawn, not the first turn      -> provider_config
//   budget: carved from the parent's account (refused when it lacks room) -> budget_exceeded;
//     a goal's root whose manifest sets a reset period gets its own periodic account
//     inside the goal's (the goal cap stays a total)
//   token: issued under the parent's token (expiry capped at the parent's)
// Every refusal is audited as agent.spawn_denied. A failure after the admission slot was
// taken releases it; the account, token, entries and row are one commit, so nothing of a
// failed spawn is left to undo.

import { randomBytes } from "node:crypto";
import type { Config } from "../config.js";
import { withoutConfigSecrets } from "../config-secrets.js";
import type { Db } from "../db/database.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { LlmClient } from "../llm/types.js";
import type { LoadedManifest } from "../manifest/load.js";
import type { AuditLog } from "../security/audit.js";
import { type BudgetLedger, roomOf } from "../security/budget.js";
import type { Grant } from "../security/grants.js";
import { grantsWithin, uncoveredGrants } from "../security/narrowing.js";
import type { TokenAuthority } from "../security/tokens.js";
import type { SkillRegistry } from "../skills/registry.js";
import type { TraceSpan } from "../telemetry/tracer.js";
import type { EventBus } from "./events.js";
import {
  childNamesByOperator,
  completeRoot,
  formatOffenses,
  mcpServersOffense,
  modelNamedLiterally,
  modelOffense,
  narrowChild,
} from "./narrow-manifest.js";
import type { AdmissionGuard, AgentRecord, AgentRegistry } from "./registry.js";

/** Root tokens live this long; children never outlive their parent's token. */
export const ROOT_TOKEN_TTL_SECONDS = 24 * 3600;
export const PERSISTENT_TOKEN_TTL_SECONDS = 30 * 24 * 3600;

export interface SpawnRequest {
  goalId: string;
  manifest: LoadedManifest;
  parent: AgentRecord | null;
  /**
   * Root agents only: the agent never calls a model (an MCP session's principal, whose
   * client's own model acts through it): no LLM client is made and no model is required;
   * a model it names is still held to models.allowed.
   */
  withoutModel?: boolean;
  /**
   * Root agents only: the goal's root account, which the goal closes. The agent spends
   * from it, or, when its manifest sets a reset period, from an account of its own
   * carved inside it. Absent for a root (a standalone agent): a root account of the
   * manifest's budget.max_tokens (else limits.goal_max_tokens) is opened for the agent and
   * closed with it. Children always get an account carved from the parent's.
   */
  account?: string;
  /** Tokens to carve when the child manifest has no budget (default: half the parent's room). */
  defaultShare?: number;
  /**
   * Children only: the pseudo-goal whose folders the child's tools act on (a world's copy,
   * kernel/worlds.ts). A child of an agent in a world stays in that world.
   */
  sandboxGoal?: string;
  /** Children only: the span the child's runs nest under (the spawning tool call's). */
  traceParent?: TraceSpan;
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
  /** The discovered skills: a root manifest without `skills:` may read all of them. */
  skills: SkillRegistry;
  /**
   * The LlmClient for an agent (shared by every agent of the same manifest name and
   * model, so nothing is left to forget when a spawn fails); throws provider_config.
   */
  makeClient(agentId: string, manifestName: string, model: string): LlmClient;
}

/** The model recorded for an agent that calls none (SpawnRequest.withoutModel). */
export const NO_MODEL = "none";

export function newAgentId(): string {
  return `a_${Date.now().toString(36)}${randomBytes(5).toString("hex")}`;
}

export class Spawner {
  constructor(private readonly deps: SpawnerDeps) {}

  /** Create and register an agent (state "starting"); it runs when the caller runs it. */
  spawn(req: SpawnRequest): AgentRecord {
    const { deps } = this;
    const { parent, goalId } = req;
    const denied = (e: unknown): never => {
      const d = e instanceof AidoError ? e.details : {};
      // A manifest a model wrote is quoted (its grants, its model): a config's secret in it is blanked.
      const blank = (text: string) => withoutConfigSecrets(text, deps.config);
      const offending = (d.offending as string[] | undefined)?.map(blank);
      const keys = d.keys as string[] | undefined;
      deps.audit.record(
        "agent.spawn_denied",
        {
          manifest: blank(req.manifest.name),
          reason: blank(errorMessage(e)),
          ...(offending ? { offending } : {}),
          ...(keys ? { keys } : {}),
        },
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
    const sandboxGoal = parent ? (req.sandboxGoal ?? parent.sandboxGoal) : undefined;
    try {
      const { manifest, grants, model } = parent ? this.narrow(req, parent) : this.admitRoot(req);
      if (!req.withoutModel) deps.makeClient(id, manifest.name, model);
      const ttl = manifest.lifecycle === "persistent" ? PERSISTENT_TOKEN_TTL_SECONDS : ROOT_TOKEN_TTL_SECONDS;
      // One commit for the agent's budget account, its token, their two audit entries and the
      // agent's row: a spawn refused or failed at any step (no room, a failed audit) leaves no
      // account, no token and no row behind, and the room a carve-out checks is read in the
      // same transaction that takes it.
      const { created: rec, rowid } = deps.db
        .transaction((): { created: AgentRecord; rowid: number } => {
          let account: string;
          if (parent) account = this.carve(id, req, manifest);
          else if (req.account !== undefined) account = this.rootAccount(id, req, manifest);
          else account = this.openRoot(req);
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
            modelNamedByOperator:
              parent === null ||
              (model === parent.model && parent.modelNamedByOperator) ||
              modelNamedLiterally(deps.config, model),
            nameByOperator: parent === null || parent.childNamesByOperator.has(manifest.name),
            childNamesByOperator: childNamesByOperator(manifest, parent ?? undefined),
            token: issued,
            budgetAccount: account,
            ownsAccount: account !== req.account,
            state: "starting",
            children: new Set(),
            ...(sandboxGoal !== undefined ? { sandboxGoal } : {}),
            ...(req.traceParent ? { traceParent: req.traceParent } : {}),
            abort: new AbortController(),
            createdAt: Date.now(),
          };
          return { created, rowid: deps.registry.persist(created) };
        })
        .immediate();
      deps.registry.register(rec, rowid, guard);
      deps.events.emit("agent.spawned", goalId, {
        agentId: id,
        manifest: manifest.name,
        ...(manifest.description !== undefined ? { description: manifest.description } : {}),
        ...(parent ? { parentId: parent.id } : {}),
        depth: rec.depth,
        model,
      });
      return rec;
    } catch (e) {
      guard.release();
      return denied(e);
    }
  }

  /**
   * A child's manifest, grants and model, or one refusal naming every offending key. The
   * parent's grants are taken from its token, verified now, so a revoked or expired parent
   * cannot spawn, and nothing the parent's manifest claims counts.
   */
  private narrow(
    req: SpawnRequest,
    parent: AgentRecord,
  ): { manifest: LoadedManifest; grants: Grant[]; model: string } {
    const { deps } = this;
    const held = deps.tokens.verify(parent.token).grants;
    const parentAccount = deps.budget.get(parent.budgetAccount);
    const { manifest, offenses } = narrowChild(
      req.manifest,
      { manifest: parent.manifest, model: parent.model, periodic: parentAccount.period_seconds !== null },
      deps.config,
    );
    const offending = uncoveredGrants(held, req.manifest.capabilities);
    if (offending.length > 0) {
      offenses.unshift({
        key: "capabilities",
        message: `${offending.map((g) => `"${g}"`).join(", ")} exceed the parent's`,
      });
    }
    const model = manifest.model ?? parent.model;
    const badModel = modelOffense(deps.config, model);
    if (badModel) offenses.push(badModel);
    if (offenses.length > 0) {
      // Its budget joins the list only beside another offense: alone, carve() refuses it
      // as budget_exceeded (the parent may simply have spent too much).
      const asked = req.manifest.budget?.max_tokens;
      const room = roomOf(parentAccount);
      if (asked !== undefined && asked > room) {
        offenses.push({
          key: "budget.max_tokens",
          message: `${asked} is more than the ${Math.max(0, room)} tokens the parent has left`,
        });
      }
      throw new AidoError(
        ErrorCode.capabilityDenied,
        `child manifest "${req.manifest.name}" asks for more than agent ${parent.id} holds: ${formatOffenses(offenses)}`,
        {
          manifest: req.manifest.name,
          keys: offenses.map((o) => o.key),
          ...(offending.length > 0 ? { offending } : {}),
        },
      );
    }
    return { manifest, grants: [...manifest.capabilities], model };
  }

  /** A root's grants within the operator's ceilings, its model allowed, its omissions written out. */
  private admitRoot(req: SpawnRequest): { manifest: LoadedManifest; grants: Grant[]; model: string } {
    const { deps } = this;
    const requested = req.manifest.capabilities;
    const grants =
      deps.config.grantCeilings.length > 0
        ? grantsWithin(deps.config.grantCeilings, requested)
        : [...requested];
    const model =
      deps.config.modelOverride ?? req.manifest.model ?? (req.withoutModel ? NO_MODEL : undefined);
    if (!model) {
      throw new AidoError(
        ErrorCode.manifestInvalid,
        `manifest "${req.manifest.name}" names no model: set model: provider/model in it, or AIDO_MODEL`,
        { manifest: req.manifest.name },
      );
    }
    if (model !== NO_MODEL) requireAllowedModel(deps.config, req.manifest.name, model);
    const undeclared = mcpServersOffense(deps.config, req.manifest);
    if (undeclared) {
      throw new AidoError(
        ErrorCode.manifestInvalid,
        `manifest "${req.manifest.name}" (${req.manifest.source}) names MCP servers the operator does not declare: ${formatOffenses([undeclared])}`,
        { manifest: req.manifest.name, keys: [undeclared.key] },
      );
    }
    const manifest = completeRoot(
      req.manifest,
      deps.config,
      deps.skills.skills.map((s) => s.name),
    );
    return { manifest, grants, model };
  }

  /**
   * A goal's root agent spends from the goal's account, unless its manifest sets a reset
   * period: then from its own account of budget.max_tokens per period, carved inside the
   * goal's (never more than the goal has), so the goal cap stays a total.
   */
  private rootAccount(id: string, req: SpawnRequest, manifest: LoadedManifest): string {
    const goalAccount = req.account as string;
    const period = manifest.budget?.reset_period_seconds;
    if (period === undefined) return goalAccount;
    const room = roomOf(this.deps.budget.get(goalAccount));
    const account = `agent:${id}`;
    this.deps.budget.open(account, {
      goalId: req.goalId,
      limit: Math.min(manifest.budget?.max_tokens ?? room, room),
      parentId: goalAccount,
      periodSeconds: period,
    });
    return account;
  }

  /** A root agent's own account: the cap of its pseudo-goal (standalone agents). */
  private openRoot(req: SpawnRequest): string {
    const account = `goal:${req.goalId}`;
    const limit = req.manifest.budget?.max_tokens ?? this.deps.config.limits.goalMaxTokens;
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
  private carve(id: string, req: SpawnRequest, manifest: LoadedManifest): string {
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
      ...(manifest.budget?.reset_period_seconds
        ? { periodSeconds: manifest.budget.reset_period_seconds }
        : {}),
    });
    return account;
  }
}

/** capability_denied naming the model when models.allowed does not allow it. */
export function requireAllowedModel(config: Config, manifestName: string, model: string): void {
  const offense = modelOffense(config, model);
  if (!offense) return;
  throw new AidoError(
    ErrorCode.capabilityDenied,
    `manifest "${manifestName}" asks for a model the operator does not allow: ${formatOffenses([offense])}`,
    { manifest: manifestName, keys: [offense.key], model },
  );
}
