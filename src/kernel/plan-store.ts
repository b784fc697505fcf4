// kernel/plan-store.ts — the plan ledger: one row per plan (its steps in canonical JSON, the
// simulation it was created with, its hash and status), in its own table. A plan is what a
// human or a client's model agreed to after seeing its simulation, so the row must not be
// a way to run something else: each row is signed by the runtime key over its id, agent,
// hash, the three digests the hash is made of and the audit seq of its plan.created entry,
// and that entry must say the same. A row edited in SQLite (other steps, another hash, a
// status set back to "created" to run it twice) is refused by kernel/plans.ts, which also
// looks in the audit log for the plan.started entry that says a plan already ran.
//
// The hash: SHA-256 over the format, the digest of the canonical steps, the digest of the
// agent's verified grants and approval_required list, and the digest of the policy in
// force (policy.deny, policy.confirm, snapshot_before_mutation and the built-in rules).

import { createHash } from "node:crypto";
import type { Config } from "../config.js";
import { type Db, migrate, prepared } from "../db/database.js";
import { AidoError, ErrorCode } from "../errors.js";
import type { StepJudgement } from "../gate/simulate.js";
import type { AuditLog, Signer } from "../security/audit.js";
import { canonicalJson, type JsonValue } from "../security/canonical-json.js";
import { formatGrant, type Grant } from "../security/grants.js";
import { BUILTIN_RULES } from "../security/policy-rules.js";
import type { ShadowRun } from "./shadow.js";

const PLAN_FORMAT = "aido.plan.v1";

const MIGRATIONS = [
  `CREATE TABLE plans (
     id TEXT PRIMARY KEY,
     agent_id TEXT NOT NULL,
     goal_id TEXT NOT NULL,
     title TEXT NOT NULL,
     steps TEXT NOT NULL,
     simulation TEXT NOT NULL,
     hash TEXT NOT NULL,
     steps_digest TEXT NOT NULL,
     grants_digest TEXT NOT NULL,
     policy_digest TEXT NOT NULL,
     audit_seq INTEGER NOT NULL,
     key_id TEXT NOT NULL,
     sig TEXT NOT NULL,
     status TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     executed_at INTEGER,
     result TEXT
   );
   CREATE INDEX plans_agent ON plans (agent_id, created_at);`,
];

export interface PlanStep {
  tool: string;
  input: Record<string, unknown>;
}

/** One judged step of a simulation, as plan.simulate returns it. */
export interface SimulatedStep extends StepJudgement {
  index: number;
}

export interface Simulation {
  steps: SimulatedStep[];
  /** No step was denied (a `confirm` step waits for a human when it runs). */
  ok: boolean;
  note: string;
  /** With shadow: true, the steps run against a throwaway copy (kernel/shadow.ts). */
  shadow?: ShadowRun;
}

export type PlanStatus = "created" | "executing" | "succeeded" | "failed" | "restored";

/** What the hash of a plan is made of. */
export interface PlanDigests {
  steps: string;
  grants: string;
  policy: string;
}

export interface PlanRow {
  id: string;
  agent_id: string;
  goal_id: string;
  title: string;
  steps: string;
  simulation: string;
  hash: string;
  steps_digest: string;
  grants_digest: string;
  policy_digest: string;
  audit_seq: number;
  key_id: string;
  sig: string;
  status: PlanStatus;
  created_at: number;
  executed_at: number | null;
  result: string | null;
}

/** A plan as plan.list shows it. */
export interface PlanSummary {
  plan_id: string;
  agent_id: string;
  goal_id: string;
  title: string;
  status: PlanStatus;
  steps: number;
  hash: string;
  /** No step was denied when it was simulated. */
  simulated_ok: boolean;
  created_at: string;
  executed_at?: string;
}

const sha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex");

export function stepsDigest(steps: readonly PlanStep[]): string {
  return sha256(canonicalJson(steps as unknown as JsonValue));
}

/** The agent's grants as the gate verifies them, and the tools it must ask a human about. */
export function grantsDigest(grants: readonly Grant[], approvalRequired: readonly string[]): string {
  return sha256(
    canonicalJson({
      grants: grants.map(formatGrant).sort(),
      approval_required: [...approvalRequired].sort(),
    }),
  );
}

/** The policy in force: the operator's rules and the built-in ones. */
export function policyDigest(policy: Config["policy"]): string {
  return sha256(
    canonicalJson({
      deny: policy.deny,
      confirm: policy.confirm,
      snapshot_before_mutation: policy.snapshotBeforeMutation,
      builtin: BUILTIN_RULES.map((r) => r.id),
    }),
  );
}

function planHash(d: PlanDigests): string {
  return sha256(canonicalJson([PLAN_FORMAT, d.steps, d.grants, d.policy]));
}

export class PlanStore {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditLog,
    private readonly signer: Signer,
  ) {
    migrate(db, "plans", MIGRATIONS);
  }

  /** Store a plan and audit plan.created, in one transaction. */
  insert(p: {
    id: string;
    agentId: string;
    goalId: string;
    title: string;
    steps: readonly PlanStep[];
    simulation: Simulation;
    digests: PlanDigests;
  }): PlanRow {
    const hash = planHash(p.digests);
    this.db
      .transaction(() => {
        const entry = this.audit.record(
          "plan.created",
          {
            plan_id: p.id,
            title: p.title,
            steps: p.steps.length,
            hash,
            steps_digest: p.digests.steps,
            grants_digest: p.digests.grants,
            policy_digest: p.digests.policy,
          },
          { goalId: p.goalId, agentId: p.agentId },
        );
        const keyId = this.signer.keyId;
        const sig = this.signer.sign(rowMessage(p.id, p.agentId, hash, p.digests, entry.seq, keyId));
        prepared(
          this.db,
          `INSERT INTO plans (id, agent_id, goal_id, title, steps, simulation, hash, steps_digest, grants_digest,
             policy_digest, audit_seq, key_id, sig, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'created', ?)`,
        ).run(
          p.id,
          p.agentId,
          p.goalId,
          p.title,
          canonicalJson(p.steps as unknown as JsonValue),
          JSON.stringify(p.simulation),
          hash,
          p.digests.steps,
          p.digests.grants,
          p.digests.policy,
          entry.seq,
          keyId,
          sig.toString("base64"),
          Date.now(),
        );
      })
      .immediate();
    return this.get(p.id);
  }

  get(id: string): PlanRow {
    const row = prepared(this.db, "SELECT * FROM plans WHERE id = ?").get(id) as PlanRow | undefined;
    if (!row) throw new AidoError(ErrorCode.notFound, `no plan with id ${id}`, { plan_id: id });
    return row;
  }

  /**
   * Why the row cannot be trusted, or undefined: its signature, and the plan.created entry
   * it cites, must both vouch for its id, agent, hash and digests.
   */
  tampered(row: PlanRow): string | undefined {
    const digests = { steps: row.steps_digest, grants: row.grants_digest, policy: row.policy_digest };
    let signed = false;
    try {
      signed =
        row.key_id === this.signer.keyId &&
        this.signer.verify(
          rowMessage(row.id, row.agent_id, row.hash, digests, row.audit_seq, row.key_id),
          Buffer.from(row.sig, "base64"),
        );
    } catch {
      signed = false;
    }
    if (!signed) return "its record in the ledger is not the one the runtime signed";
    if (planHash(digests) !== row.hash) return "its stored hash does not match its digests";
    const entry = this.audit.entry(row.audit_seq);
    const p = entry?.kind === "plan.created" ? (entry.payload as Record<string, unknown>) : undefined;
    if (
      p?.plan_id !== row.id ||
      p.hash !== row.hash ||
      p.steps_digest !== row.steps_digest ||
      p.grants_digest !== row.grants_digest ||
      p.policy_digest !== row.policy_digest ||
      entry?.agent_id !== row.agent_id
    )
      return "its record does not match the plan.created entry of the audit log";
    return undefined;
  }

  /** The plan.started entry of an execution, if the audit log has one (whatever the row says). */
  startedInAudit(row: PlanRow): boolean {
    return this.audit.since(row.audit_seq, "plan.started").some((e) => e.payload.plan_id === row.id);
  }

  /**
   * created -> executing, with plan.started in the same commit, under the executing agent and
   * its goal (where the steps run); false when it was not "created".
   */
  start(row: PlanRow, ids: { agentId: string; goalId: string }): boolean {
    return this.db
      .transaction(() => {
        const changed = prepared(
          this.db,
          "UPDATE plans SET status = 'executing', executed_at = ? WHERE id = ? AND status = 'created'",
        ).run(Date.now(), row.id).changes;
        if (changed === 0) return false;
        this.audit.record("plan.started", { plan_id: row.id, agent_id: ids.agentId }, ids);
        return true;
      })
      .immediate();
  }

  finish(id: string, status: Exclude<PlanStatus, "created" | "executing">, result: unknown): void {
    prepared(this.db, "UPDATE plans SET status = ?, result = ? WHERE id = ?").run(
      status,
      JSON.stringify(result),
      id,
    );
  }

  list(agentId?: string): PlanSummary[] {
    const rows = (
      agentId === undefined
        ? prepared(this.db, "SELECT * FROM plans ORDER BY created_at, id").all()
        : prepared(this.db, "SELECT * FROM plans WHERE agent_id = ? ORDER BY created_at, id").all(agentId)
    ) as PlanRow[];
    return rows.map(summaryOf);
  }

  /** After a restart: an execution the old process was running ended with it. */
  recover(): string[] {
    const ids = prepared(this.db, "SELECT id FROM plans WHERE status = 'executing'")
      .pluck()
      .all() as string[];
    for (const id of ids)
      this.finish(id, "failed", {
        error: "the daemon stopped while the plan was executing; it was not resumed",
      });
    return ids;
  }
}

function summaryOf(r: PlanRow): PlanSummary {
  const s: PlanSummary = {
    plan_id: r.id,
    agent_id: r.agent_id,
    goal_id: r.goal_id,
    title: r.title,
    status: r.status,
    steps: (JSON.parse(r.steps) as unknown[]).length,
    hash: r.hash,
    simulated_ok: (JSON.parse(r.simulation) as Simulation).ok,
    created_at: new Date(r.created_at).toISOString(),
  };
  if (r.executed_at !== null) s.executed_at = new Date(r.executed_at).toISOString();
  return s;
}

function rowMessage(
  id: string,
  agentId: string,
  hash: string,
  d: PlanDigests,
  seq: number,
  keyId: string,
): Buffer {
  return Buffer.from(
    JSON.stringify([PLAN_FORMAT, id, agentId, hash, d.steps, d.grants, d.policy, seq, keyId]),
    "utf8",
  );
}
