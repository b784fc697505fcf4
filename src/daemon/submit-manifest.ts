// daemon/submit-manifest.ts — the manifest a socket client's request starts an agent or a
// goal with: parsed and held to the operator's ceiling (ceiling.ts), and for goal.submit
// with `session_id` (an MCP session's aido_submit) held to that session's reach as well
// (kernel/goal-reach.ts): a manifest the client named that reaches further is refused,
// audited as the session's refusal (session.call_refused), and the default bootstrap
// manifest is narrowed to it. A goal.submit without session_id is as it always was. Such a
// goal is the session's, not the user's (submittedByOf): recorded on its row as submitted_by.

import type { Config } from "../config.js";
import { AidoError, errorMessage } from "../errors.js";
import { narrowToReach, requireWithinReach, type SessionReach } from "../kernel/goal-reach.js";
import type { Runtime } from "../kernel/runtime.js";
import { type LoadedManifest, loadManifestFile, parseManifestValue } from "../manifest/load.js";
import type { SubmittedBy } from "../security/approval-project.js";
import { formatGrant } from "../security/grants.js";
import { bootstrapManifestPath, enforceCeiling, type SocketCeiling } from "./ceiling.js";

/**
 * A manifest from a client, parsed and held to the ceiling. Returned as the plain value
 * the Runtime parses again (its prompt already inlined, so the value needs no folder).
 */
export function admitManifest(value: unknown, source: string, ceiling: SocketCeiling): unknown {
  const manifest = parseManifestValue(value, source);
  enforceCeiling(ceiling, manifest);
  return value;
}

/** A loaded manifest as a value parseManifestValue accepts again (prompt inlined, grants spelled). */
export function manifestAsValue(m: LoadedManifest): Record<string, unknown> {
  const { source: _source, system_prompt_file: _file, ...rest } = m;
  return { ...rest, capabilities: m.capabilities.map(formatGrant) };
}

/** The parts of a request's context goalManifest reads. */
export interface SubmitContext {
  rt: Runtime;
  config: Config;
  ceiling: SocketCeiling;
}

/**
 * goal.submit's manifest: the client's, held to the ceiling (and to the session's reach
 * with `session_id`); without one, undefined (the runtime's default bootstrap), or with
 * `session_id` that bootstrap narrowed to the session's reach. An unknown or closed
 * session is not_found, naming it.
 */
export function goalManifest(p: { manifest?: unknown; session_id?: string }, ctx: SubmitContext): unknown {
  const reach = p.session_id === undefined ? undefined : openSessionReach(p.session_id, ctx);
  if (p.manifest === undefined) {
    if (reach === undefined) return undefined;
    return manifestAsValue(narrowToReach(loadManifestFile(bootstrapManifestPath(ctx.config)), reach));
  }
  const value = admitManifest(p.manifest, "goal.submit manifest", ctx.ceiling);
  if (reach === undefined) return value;
  try {
    requireWithinReach(parseManifestValue(value, "goal.submit manifest"), reach);
  } catch (e) {
    ctx.rt.sessions.refused(reach.session_id, "aido_submit", errorMessage(e));
    throw e;
  }
  return value;
}

/**
 * The reach of the session a goal.submit names. One that is not open (it ended, or never
 * was) is refused not_found and audited as goal.refused naming it: a client that kept an
 * ended session's id must not have its submits refused unseen.
 */
function openSessionReach(sessionId: string, ctx: SubmitContext): SessionReach {
  try {
    return ctx.rt.sessions.reachOf(sessionId);
  } catch (e) {
    const reason = `session_id: ${errorMessage(e)}; a goal of an MCP session is submitted while the session is open`;
    ctx.rt.audit.record("goal.refused", { field: "session_id", reason, session_id: sessionId });
    throw e instanceof AidoError ? new AidoError(e.code, reason, { ...e.details, field: "session_id" }) : e;
  }
}

/**
 * Who a goal.submit with `session_id` comes from: that MCP session (goalManifest has checked it
 * is open). Kept on the goal's row, shown where a human decides, and bound into its project,
 * so no Allow Always answer crosses between the user's goals and a session's
 * (security/approval-project.ts). Without one: the user, nothing to add.
 */
export function submittedByOf(p: { session_id?: string }): { submittedBy?: SubmittedBy } {
  return p.session_id === undefined ? {} : { submittedBy: { kind: "mcp_session", session_id: p.session_id } };
}
