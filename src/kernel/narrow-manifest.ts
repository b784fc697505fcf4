// kernel/narrow-manifest.ts — what a manifest may ask for on every axis besides its grants
// (security/narrowing.ts) and its budget's size (security/budget.ts), given who starts it.
//
// A child's manifest is written by a model. On each axis it could widen, it is held to
// its parent's EFFECTIVE manifest (the one the parent was started with, after this same
// step), and a refusal names every offending key at once:
//   skills              each one in the parent's list; omitted = the parent's list.
//   model               must match models.allowed (config); omitted = the parent's model.
//   limits.max_iterations, limits.max_children, limits.max_depth
//                       no higher than the parent's; omitted = the parent's.
//   memory.episodic     cannot be turned on below a parent that has it off.
//   budget.reset_period_seconds
//                       only when the parent's budget has a reset period: a period is for
//                       persistent agents and a goal's root (see security/budget.ts).
//   mcp_servers         each one in the parent's list; omitted = the parent's list.
//   approval_required   the parent's tools are added: a child can add tools that wait for a
//                       human, never shed one. Inherited rather than refused, since adding
//                       a human check never widens anything.
// A root's manifest comes from the operator (a manifest folder, goal.submit, agent.spawn):
// its model is held to models.allowed, its mcp_servers to the servers the operator
// declared, and its omissions are written out — no `skills:` means every discovered skill,
// no `mcp_servers:` none, and its limits become the config's where it sets none — so
// every agent's effective manifest states each axis, and what its children inherit is
// exactly what it holds (the per-agent /skills view is built from that list).

import type { Config } from "../config.js";
import type { LoadedManifest } from "../manifest/load.js";
import { wildcardMatch } from "../security/glob.js";

/** One key a manifest may not have as it is, and why. */
export interface Offense {
  key: string;
  message: string;
}

export interface ParentView {
  /** The parent's effective manifest. */
  manifest: LoadedManifest;
  /** "provider/model" the parent calls. */
  model: string;
  /** Whether the parent's budget account has a reset period. */
  periodic: boolean;
}

type LimitKey = "max_iterations" | "max_children" | "max_depth";
const LIMIT_KEYS: readonly LimitKey[] = ["max_iterations", "max_children", "max_depth"];

/** Every models.allowed list names `model` as itself, not through a glob (AgentRecord.modelNamedByOperator). */
export function modelNamedLiterally(config: Pick<Config, "models">, model: string): boolean {
  return config.models.allowed.length > 0 && config.models.allowed.every((list) => list.includes(model));
}

/**
 * The child manifest names the operator chose among those `m`'s spawn_child grants list
 * (AgentRecord.childNamesByOperator): every name a root lists; of a child's, only those its
 * parent's set has — a name listed under a parent's `[*]` is a model's text.
 */
export function childNamesByOperator(
  m: LoadedManifest,
  parent: { childNamesByOperator: ReadonlySet<string> } | undefined,
): ReadonlySet<string> {
  const out = new Set<string>();
  for (const g of m.capabilities)
    if (g.kind === "spawn_child" && g.names !== "*")
      for (const n of g.names) if (parent === undefined || parent.childNamesByOperator.has(n)) out.add(n);
  return out;
}

/** The offense of a model models.allowed does not allow, or undefined. */
export function modelOffense(config: Pick<Config, "models">, model: string): Offense | undefined {
  const refusing = config.models.allowed.find((list) => !list.some((glob) => wildcardMatch(glob, model)));
  if (refusing === undefined) return undefined;
  return {
    key: "model",
    message: `"${model}" is not allowed by models.allowed (${refusing.join(", ")})`,
  };
}

/** The limits an agent runs under when its manifest sets none (the loop's and admission's rules). */
function effectiveLimits(m: LoadedManifest, config: Pick<Config, "limits">): Record<LimitKey, number> {
  const l = m.limits ?? {};
  return {
    max_iterations: l.max_iterations ?? config.limits.maxIterations,
    max_children: Math.min(config.limits.maxChildren, l.max_children ?? Number.POSITIVE_INFINITY),
    max_depth: Math.min(config.limits.maxDepth, l.max_depth ?? Number.POSITIVE_INFINITY),
  };
}

/** A root's effective manifest: every discovered skill when it names none, its limits written out. */
export function completeRoot(
  m: LoadedManifest,
  config: Pick<Config, "limits">,
  discoveredSkills: readonly string[],
): LoadedManifest {
  return {
    ...m,
    skills: m.skills ?? [...discoveredSkills],
    limits: effectiveLimits(m, config),
    mcp_servers: [...(m.mcp_servers ?? [])],
  };
}

/** The offense of a root manifest naming MCP servers the operator did not declare, or undefined. */
export function mcpServersOffense(config: Pick<Config, "mcp">, m: LoadedManifest): Offense | undefined {
  const declared = Object.keys(config.mcp.servers);
  const unknown = (m.mcp_servers ?? []).filter((s) => !declared.includes(s));
  if (unknown.length === 0) return undefined;
  return {
    key: "mcp_servers",
    message: `${unknown.map((s) => `"${s}"`).join(", ")} not declared in the operator's config (mcp_servers: ${declared.length > 0 ? declared.join(", ") : "none"})`,
  };
}

/**
 * A child's effective manifest under `parent`, and every key on which it asks for more
 * than the parent holds (empty when it fits). Grants and the budget's size are checked
 * by the caller and join the same refusal.
 */
export function narrowChild(
  child: LoadedManifest,
  parent: ParentView,
  config: Pick<Config, "limits">,
): { manifest: LoadedManifest; offenses: Offense[] } {
  const offenses: Offense[] = [];
  const held = parent.manifest;

  const parentSkills = held.skills ?? [];
  const extraSkills = (child.skills ?? []).filter((s) => !parentSkills.includes(s));
  if (extraSkills.length > 0) {
    offenses.push({
      key: "skills",
      message: `${extraSkills.map((s) => `"${s}"`).join(", ")} not in the parent's skills [${parentSkills.join(", ")}]`,
    });
  }

  const parentServers = held.mcp_servers ?? [];
  const extraServers = (child.mcp_servers ?? []).filter((s) => !parentServers.includes(s));
  if (extraServers.length > 0) {
    offenses.push({
      key: "mcp_servers",
      message: `${extraServers.map((s) => `"${s}"`).join(", ")} not in the parent's mcp_servers [${parentServers.join(", ")}]`,
    });
  }

  const parentLimits = effectiveLimits(held, config);
  const limits = { ...parentLimits };
  for (const key of LIMIT_KEYS) {
    const asked = child.limits?.[key];
    if (asked === undefined) continue;
    if (asked > parentLimits[key]) {
      offenses.push({
        key: `limits.${key}`,
        message: `${asked} is above the parent's ${parentLimits[key]}`,
      });
    } else limits[key] = asked;
  }

  if (child.memory?.episodic === true && held.memory?.episodic === false) {
    offenses.push({ key: "memory.episodic", message: "cannot be on when the parent's is off" });
  }

  if (child.budget?.reset_period_seconds !== undefined && !parent.periodic) {
    offenses.push({
      key: "budget.reset_period_seconds",
      message: "the parent's budget has no reset period, so a child's cannot have one",
    });
  }

  const manifest: LoadedManifest = {
    ...child,
    skills: child.skills ?? [...parentSkills],
    mcp_servers: child.mcp_servers ?? [...parentServers],
    limits,
    approval_required: [...new Set([...held.approval_required, ...child.approval_required])],
  };
  if (held.memory?.episodic === false) manifest.memory = { ...child.memory, episodic: false };
  return { manifest, offenses };
}

/** "key: why; key: why" for a refusal message. */
export function formatOffenses(offenses: readonly Offense[]): string {
  return offenses.map((o) => `${o.key}: ${o.message}`).join("; ");
}
