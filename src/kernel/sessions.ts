// kernel/sessions.ts — MCP sessions as principals. A session (socket session.open, made
// by `aido mcp serve` for each MCP client) is a standalone root agent like agent.spawn's:
// its own pseudo-goal, budget account, capability token and audit identity, so every
// call its MCP client makes passes the gate as that agent. With a workspace, the
// pseudo-goal's container mounts that host folder (checked by sandbox/workspace-binds.ts)
// as /workspace; snapshots, quota and the setid sweep follow the bind. The pseudo-goal is the
// session's, not the user's: its project names the session (submitted_by, projectOf), so its
// agent's memories are `mcp_session:<id>/agent:<name>`'s and its approval prompts show the session.
//
// One end for every way a session ends (session.close, agent.stop of its agent, the
// socket connection that opened it closing, the runtime closing, a cluster node shutting
// down before it leaves the cluster: endAll): its agent stops, and
// on that agent's agent.stopped event the container is removed, setuid/setgid bits are
// cleared in the host folder too, the bind is dropped and session.closed is audited. The
// host folder stays as the session left it, and the goals it submitted that have not ended
// fail (their shares of its budget closed with its account: session-budget.ts); in cluster
// mode those queued in Redis or running on another node are cancelled (whenEnded). The agent
// never calls a model (the MCP client's model acts through it), so a session needs no
// provider key. Sessions live in memory: after a restart the registry stops their
// (on-demand) agents and the sweeper removes their containers.

import { randomBytes } from "node:crypto";
import { offeredTools } from "../agent/prompt.js";
import type { Config } from "../config.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { confinementFor, readViewOf } from "../gate/confinement.js";
import type { ToolDef } from "../gate/types.js";
import type { LoadedManifest } from "../manifest/load.js";
import { defaultUser } from "../sandbox/docker-options.js";
import { parseUser } from "../sandbox/folders.js";
import type { InputReader } from "../sandbox/inputs.js";
import { checkHostWorkspace, type WorkspaceBinds } from "../sandbox/workspace-binds.js";
import {
  folderProject,
  goalOnlyProject,
  type ProjectBinding,
  sessionOwnProject,
  sessionProject,
} from "../security/approval-project.js";
import type { AuditLog } from "../security/audit.js";
import { parseGrant } from "../security/grants.js";
import type { PolicyEngine } from "../security/policy.js";
import type { EventBus } from "./events.js";
import { type SessionReach, sessionReach } from "./goal-reach.js";
import type { AgentRecord, AgentRegistry } from "./registry.js";
import type { SessionAccount } from "./session-budget.js";
import type { Spawner } from "./spawn.js";

export interface SessionRequest {
  manifest: LoadedManifest;
  /** A host folder to bind as /workspace (checked here). */
  workspace?: string;
  /** Free text naming the MCP client, for the audit. */
  client?: string;
}

export interface SessionInfo {
  session_id: string;
  agent_id: string;
  /** The real path of the bound host folder, or null (the pseudo-goal's own workspace). */
  workspace: string | null;
  /** The manifest's name. */
  manifest: string;
  /** The grants its capability token holds. */
  grants: string[];
  /** The tools its grants let it call (as the agent loop would offer them), sorted. */
  tools: string[];
  /** Tools whose calls wait for a human (the manifest's approval_required). */
  approval_required: string[];
}

interface Session {
  info: SessionInfo;
  goalId: string;
  /** How far outside its container it reaches: the ceiling of the goals it submits (goal-reach.ts). */
  reach: SessionReach;
  /** Its agent's budget account: the goals it submits spend from it (session-budget.ts). */
  account: string;
}

export interface SessionsDeps {
  config: Config;
  binds: WorkspaceBinds;
  spawner: Spawner;
  registry: AgentRegistry;
  /** The runtime's tools (what a session may call is offered from these). */
  tools: ReadonlyMap<string, ToolDef<unknown>>;
  audit: AuditLog;
  /** The operator's rules: which paths a session's reads are shut to (projectReads). */
  policy: PolicyEngine;
  events: EventBus;
  /** A fresh standalone pseudo-goal id (s_…, as agent.spawn's). */
  newGoalId(): string;
  /** Remove the pseudo-goal's container and clear setid bits (GoalSandboxes.retire). */
  retire(goalId: string): Promise<void>;
  /** The session ended (its account closed already): the goals it submitted that have not ended fail. */
  ended?(session: SessionAccount, reason: string): void;
  log(message: string): void;
}

const MAX_CLIENT_CHARS = 200;

export class Sessions {
  private readonly byId = new Map<string, Session>();
  private readonly byAgent = new Map<string, Session>();
  private readonly ending = new Set<Promise<void>>();
  /**
   * Every session pseudo-goal of this process, with its session's id: their containers are
   * released here, not by Runtime, and their projects name the session (projectOf).
   */
  private readonly goals = new Map<string, string>();
  /** The folder and project of each bound session's pseudo-goal, as it opened: what its Allow Always answers bind to. */
  private readonly projects = new Map<string, { path: string; opened: ProjectBinding }>();
  private readonly unsubscribe: () => void;
  /** Told of each session's end after `ended` (a cluster node cancels the goals it queued for the session). */
  private readonly endListeners = new Set<(session: SessionAccount, reason: string) => void>();

  constructor(private readonly deps: SessionsDeps) {
    this.unsubscribe = deps.events.subscribe({ types: ["agent.stopped"] }, (ev) => {
      if (ev.type !== "agent.stopped") return;
      const s = this.byAgent.get(ev.agentId);
      if (s) this.end(s, ev.reason);
    });
  }

  open(req: SessionRequest): SessionInfo {
    const { config, audit } = this.deps;
    const refuse = (e: unknown): never => {
      audit.record("session.refused", {
        reason: errorMessage(e),
        manifest: req.manifest.name,
        ...(req.workspace !== undefined ? { workspace: req.workspace } : {}),
      });
      throw e;
    };
    if (req.manifest.lifecycle === "persistent") {
      refuse(
        new AidoError(
          ErrorCode.invalidInput,
          `manifest: "${req.manifest.name}" is lifecycle: persistent; a session's agent ends with the session (use on-demand)`,
          { field: "manifest.lifecycle" },
        ),
      );
    }
    let workspace: string | null = null;
    let project: ProjectBinding | undefined;
    if (req.workspace !== undefined) {
      try {
        workspace = checkHostWorkspace(req.workspace, config.home);
        project = folderProject(workspace);
      } catch (e) {
        refuse(e);
      }
    }
    const goalId = this.deps.newGoalId();
    const sessionId = `mcp_${randomBytes(8).toString("hex")}`;
    this.goals.set(goalId, sessionId);
    if (workspace !== null) this.deps.binds.bind(goalId, workspace);
    if (workspace !== null && project !== undefined)
      this.projects.set(goalId, { path: workspace, opened: project });
    let rec: AgentRecord;
    try {
      rec = this.deps.spawner.spawn({ goalId, manifest: req.manifest, parent: null, withoutModel: true });
      this.deps.registry.setState(rec.id, "paused");
    } catch (e) {
      this.deps.binds.unbind(goalId);
      this.projects.delete(goalId);
      throw e;
    }
    const agentId = rec.id;
    const grants = [...rec.token.grants];
    const info: SessionInfo = {
      session_id: sessionId,
      agent_id: agentId,
      workspace,
      manifest: req.manifest.name,
      grants,
      tools: offeredTools(this.deps.tools, grants.map(parseGrant), req.manifest).map((t) => t.name),
      approval_required: [...req.manifest.approval_required],
    };
    const reach = sessionReach(info.session_id, grants.map(parseGrant), rec.manifest.mcp_servers ?? []);
    const session: Session = { info, goalId, reach, account: rec.budgetAccount };
    this.byId.set(info.session_id, session);
    this.byAgent.set(agentId, session);
    const client = req.client?.slice(0, MAX_CLIENT_CHARS);
    audit.record(
      "session.opened",
      {
        session_id: info.session_id,
        manifest: req.manifest.name,
        workspace,
        ...(client ? { client } : {}),
      },
      { goalId, agentId },
    );
    return info;
  }

  /** End a session: its agent stops, and the agent.stopped event ends the rest. */
  close(sessionId: string, reason: string): SessionInfo {
    const s = this.requireOpen(sessionId);
    this.deps.registry.stopAgent(s.info.agent_id, reason);
    return s.info;
  }

  /**
   * The MCP server refused a call of the session itself (what it checks before asking the
   * daemon: aido_approve's reach, a plan not this session's, a malformed step): audited
   * here, as every denial is. Returns the entry's seq.
   */
  refused(sessionId: string, tool: string, reason: string): { seq: number } {
    const s = this.requireOpen(sessionId);
    const entry = this.deps.audit.record(
      "session.call_refused",
      { session_id: sessionId, tool, reason },
      { goalId: s.goalId, agentId: s.info.agent_id },
    );
    return { seq: entry.seq };
  }

  /** How far the open session reaches outside its container: not_found once it ended. */
  reachOf(sessionId: string): SessionReach {
    return this.requireOpen(sessionId).reach;
  }

  /** The open session's budget account, which its goals' shares are carved from: not_found once it ended. */
  accountOf(sessionId: string): SessionAccount {
    return { session_id: sessionId, account: this.requireOpen(sessionId).account };
  }

  private requireOpen(sessionId: string): Session {
    const s = this.byId.get(sessionId);
    if (!s) {
      throw new AidoError(ErrorCode.notFound, `no open session ${sessionId}`, { session_id: sessionId });
    }
    return s;
  }

  /**
   * What the session of `agentId` may read of its project (goal.submit `inputs_as`): the host
   * folder bound as its /workspace, and its read view there: the file_read grants its token
   * holds less the operator's path deny rules and every path confirm rule (no human
   * confirmed a copy), as its execs and grep see it, and the user its container runs as
   * (the daemon, run as root, reads what 1000:1000 may not). Inputs it hands a goal are held to it.
   */
  projectReads(agentId: string): InputReader {
    const s = this.byAgent.get(agentId);
    if (s === undefined)
      throw new AidoError(ErrorCode.notFound, `inputs_as: ${agentId} is not the agent of an open session`, {
        field: "inputs_as",
      });
    if (s.info.workspace === null)
      throw new AidoError(
        ErrorCode.invalidInput,
        `inputs_as: the session of ${agentId} has no project folder to hand inputs from`,
        { field: "inputs_as" },
      );
    const grants = s.info.grants.map(parseGrant);
    const confinement = confinementFor(grants, this.deps.policy.closedPaths(new Set()), agentId, undefined);
    return { root: s.info.workspace, user: parseUser(defaultUser()), ...readViewOf(confinement) };
  }

  /** The open session whose agent this is, if any. */
  ofAgent(agentId: string): SessionInfo | undefined {
    return this.byAgent.get(agentId)?.info;
  }

  /**
   * The project of a session's pseudo-goal: the folder bound as its /workspace, read again on
   * every use, the pseudo-goal alone once the folder at its path is not the one it opened on
   * (security/approval-project.ts sessionProject), or for a session without one. Either way it
   * names the session (`submitted_by`): its client's calls are the session's, not the user's,
   * so its agents' memories are the session's own and every approval prompt says whose call
   * asks. Undefined for a goal that is not a session's.
   */
  projectOf(goalId: string): ProjectBinding | undefined {
    const sessionId = this.goals.get(goalId);
    if (sessionId === undefined) return undefined;
    const p = this.projects.get(goalId);
    const project = p === undefined ? goalOnlyProject(goalId) : sessionProject(goalId, p.path, p.opened);
    return sessionOwnProject(project, sessionId);
  }

  /** Is this a session's pseudo-goal (its container is released when the session ends)? */
  ownsGoal(goalId: string): boolean {
    return this.goals.has(goalId);
  }

  /**
   * Be told of each session's end (its account closed already), after the local goals it
   * submitted failed: cluster/node.ts cancels those it queued in the cluster. Returns the unsubscribe.
   */
  whenEnded(listener: (session: SessionAccount, reason: string) => void): () => void {
    this.endListeners.add(listener);
    return () => this.endListeners.delete(listener);
  }

  /**
   * End every open session now, with `reason` (a cluster node leaving: cluster/node.ts
   * endSessions), as session.close does: its agent stops and the agent.stopped event ends
   * the rest, the whenEnded listeners told before this returns. A stop that cannot be
   * recorded is logged and the others still end. Returns how many were open.
   */
  endAll(reason: string): number {
    const open = [...this.byId.values()];
    for (const s of open) {
      try {
        this.deps.registry.stopAgent(s.info.agent_id, reason);
      } catch (e) {
        this.deps.log(`ending session ${s.info.session_id} failed: ${errorMessage(e)}`);
      }
    }
    return open.length;
  }

  /** Wait until every session that is ending has ended (runtime close). */
  async settled(): Promise<void> {
    while (this.ending.size > 0) await Promise.all([...this.ending]);
  }

  dispose(): void {
    this.unsubscribe();
  }

  private end(session: Session, reason: string): void {
    const s = session.info;
    this.byId.delete(s.session_id);
    this.byAgent.delete(s.agent_id);
    const account: SessionAccount = { session_id: s.session_id, account: session.account };
    for (const ended of [this.deps.ended, ...this.endListeners]) {
      try {
        ended?.(account, reason);
      } catch (e) {
        this.deps.log(`ending the goals of session ${s.session_id} failed: ${errorMessage(e)}`);
      }
    }
    const p = (async () => {
      try {
        await this.deps.retire(session.goalId);
      } finally {
        this.deps.binds.unbind(session.goalId);
        this.projects.delete(session.goalId);
      }
      this.deps.audit.record(
        "session.closed",
        { session_id: s.session_id, reason, workspace: s.workspace },
        { goalId: session.goalId, agentId: s.agent_id },
      );
    })()
      .catch((e) => this.deps.log(`ending session ${s.session_id} failed: ${errorMessage(e)}`))
      .finally(() => this.ending.delete(p));
    this.ending.add(p);
  }
}
