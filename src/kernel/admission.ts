// kernel/admission.ts — the admission limits a spawn passes before any work: agents per goal
// (limits.max_agents_per_goal), depth (limits.max_depth) and children per agent
// (limits.max_children), the last two tightened by the parent manifest's `limits`. Counting:
// "agents per goal" and "children per agent" count agents that are not stopped (the registry
// says how many), plus admissions in progress (counted here). A finished on-demand child
// frees its slot.
//
// A slot is held by an AdmissionGuard: spawn takes one before any work, and the slot is freed
// by release() unless commit() hands it to a registered agent, so a spawn that fails half-way
// (bad grants, no budget, provider misconfigured) never leaks a slot.

import type { Config } from "../config.js";
import { AidoError, ErrorCode } from "../errors.js";
import type { AgentRecord } from "./agent-record.js";

/** A held admission slot. Exactly one of commit/release takes effect; both are idempotent. */
export class AdmissionGuard {
  private done = false;
  constructor(
    readonly goalId: string,
    readonly parentId: string | null,
    readonly depth: number,
    private readonly free: () => void,
  ) {}

  /** The slot now belongs to a registered agent (the registry counts it from here on). */
  commit(): void {
    if (this.done) return;
    this.done = true;
    this.free();
  }

  /** Spawning failed: give the slot back. */
  release(): void {
    this.commit();
  }
}

/** Admissions in progress, per goal and per parent. */
export class Admissions {
  private readonly pendingByGoal = new Map<string, number>();
  private readonly pendingByParent = new Map<string, number>();

  /**
   * A slot for a new agent under `parent` (null: a goal's root agent), or limit_exceeded
   * naming the limit. `live` is what the registry holds: the goal's agents not stopped, and
   * the parent's children not stopped.
   */
  admit(
    limits: Config["limits"],
    goalId: string,
    parent: AgentRecord | null,
    live: { liveInGoal: number; liveChildren: number },
  ): AdmissionGuard {
    const depth = parent ? parent.depth + 1 : 0;
    const inGoal = live.liveInGoal + (this.pendingByGoal.get(goalId) ?? 0);
    if (inGoal >= limits.maxAgentsPerGoal) {
      throw limit(
        `goal ${goalId} already has ${inGoal} agents (limits.max_agents_per_goal ${limits.maxAgentsPerGoal})`,
        { limit: "max_agents_per_goal" },
      );
    }
    if (parent) {
      const maxDepth = Math.min(
        limits.maxDepth,
        parent.manifest.limits?.max_depth ?? Number.POSITIVE_INFINITY,
      );
      if (depth > maxDepth) {
        throw limit(
          `agent ${parent.id} (depth ${parent.depth}) may not spawn: depth ${depth} exceeds max_depth ${maxDepth}`,
          { limit: "max_depth" },
        );
      }
      const maxChildren = Math.min(
        limits.maxChildren,
        parent.manifest.limits?.max_children ?? Number.POSITIVE_INFINITY,
      );
      const kids = live.liveChildren + (this.pendingByParent.get(parent.id) ?? 0);
      if (kids >= maxChildren) {
        throw limit(`agent ${parent.id} already has ${kids} live children (max_children ${maxChildren})`, {
          limit: "max_children",
        });
      }
    }
    bump(this.pendingByGoal, goalId, 1);
    if (parent) bump(this.pendingByParent, parent.id, 1);
    return new AdmissionGuard(goalId, parent?.id ?? null, depth, () => {
      bump(this.pendingByGoal, goalId, -1);
      if (parent) bump(this.pendingByParent, parent.id, -1);
    });
  }
}

function bump(m: Map<string, number>, key: string, d: number): void {
  const n = (m.get(key) ?? 0) + d;
  if (n <= 0) m.delete(key);
  else m.set(key, n);
}

function limit(message: string, details: Record<string, unknown>): AidoError {
  return new AidoError(ErrorCode.limitExceeded, message, details);
}
