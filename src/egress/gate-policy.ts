// egress/gate-policy.ts — the daemon's side of the egress proxy: who may reach what, and
// what is written down. decide() judges a goal's agent exactly as the gate judges
// web_fetch's hosts (gate/invoke.ts allowNetwork): the caller must be a live agent of the
// goal whose network it speaks from, holding a verified token; then its network grants
// (Need {kind: "network", host, port}; an address — an IP literal asked for, or an inward
// address a name resolved to — only by a grant naming it exactly); then the operator's
// network rules (PolicyEngine.decideNetwork): deny refuses, confirm asks a human, and so
// does a host no grant covers when a confirm rule names it (`policy.confirm: ["network: *"]`
// turns a miss into a question; an address no grant names is never put to a human). A
// question goes through the approvals queue like a tool call's: Allow Once / Session /
// Always for that host (ports 80 and 443 together, another port on its own), an earlier
// standing answer reused and audited, the client waiting meanwhile; an agent has one
// question open at a time per call (a burst of connections is not a burst of questions).
// A connection made with a call's own credentials (callers.ts openCall) asks on behalf of
// that call: the approval request names its request id, as a tool call's does. A cancel of
// the call (CallCredentials.cancel, from the exec tool as the cancel lands) ends its open
// question as expired with the cancel's reason, before the stopped command's connection
// closes (which said only "the client left"); a connection of a cancelled call asks nothing.
// What is written down about each connection (record(), the relay's unheld ports) is
// egress-audit.ts's; the gate hands it on.
// A stdio MCP server's caller (`mcp:<server>` on its own network, egress/mcp-callers.ts) is
// no agent: its grants are the operator's `network:` entries for that server, the same
// grant and address rules apply, a deny rule refuses, and a confirm rule refuses too (no
// human is asked about a server's connections); its records are written under its real goal.
// The caller's proxy credentials (authenticate) belong to the container plumbing, which
// hands its check to proxy().

import type { Config } from "../config.js";
import { errorMessage } from "../errors.js";
import { describeNeed } from "../gate/needs.js";
import type { Need } from "../gate/types.js";
import { goalOnlyProject, type ProjectBinding } from "../security/approval-project.js";
import { type ApprovalScope, approvalScopeOf } from "../security/approval-scope.js";
import type { ApprovalQueue, AskedBy } from "../security/approvals.js";
import type { AuditLog } from "../security/audit.js";
import type { Grant } from "../security/grants.js";
import { grantsAllow } from "../security/narrowing.js";
import type { PolicyEngine } from "../security/policy.js";
import { inert } from "../security/terminal-text.js";
import type { CapabilityToken, TokenAuthority } from "../security/tokens.js";
import { EgressAudit } from "./egress-audit.js";
import type { UnheldReport } from "./listener.js";
import { parseMcpEgressId, serverOfCaller } from "./mcp-callers.js";
import { createEgressProxy, type EgressResolver } from "./proxy.js";
import type {
  EgressCall,
  EgressCaller,
  EgressPolicy,
  EgressProxy,
  EgressRecord,
  EgressStage,
  EgressTarget,
  EgressVerdict,
} from "./types.js";

/** Why a connection asks a human: the text the prompt shows, and the rule the approval records. */
interface Asking {
  why: string;
  askedBy: AskedBy;
  /** The call whose command connects (its own credentials): the question names it while it runs. */
  call?: EgressCall;
}

/** The name approvals, standing decisions and Allow Always grants file egress under. */
export const EGRESS_APPROVAL_TOOL = "egress";

/** What decide() needs to know of an agent (kernel/registry.ts AgentRecord). */
export interface EgressAgent {
  goalId: string;
  /** A world's pseudo-goal the agent acts in (kernel/worlds.ts): no human is asked there. */
  sandboxGoal?: string;
  state: string;
  identity: string;
  token: CapabilityToken;
}

export interface EgressGateDeps {
  config: Config["egress"];
  agent(agentId: string): EgressAgent | undefined;
  tokens: Pick<TokenAuthority, "verify">;
  policy: Pick<PolicyEngine, "decideNetwork">;
  approvals: Pick<ApprovalQueue, "authorize" | "covering">;
  audit: AuditLog;
  approvalTimeoutMs: number;
  /**
   * The project of a goal (security/approval-project.ts), which an Allow Always answer about a
   * host binds to; absent: each goal is its own project.
   */
  project?(goalId: string): ProjectBinding;
  /**
   * The operator's `network:` entries of a stdio MCP server (config mcp_servers); empty or
   * undefined: the server may reach nothing.
   */
  serverNetwork?(server: string): readonly Grant[] | undefined;
  /** After each record is audited: the kernel's event bus. */
  notify(entry: EgressRecord): void;
  /** Where a count of refusals that could not be audited is reported. */
  log(message: string): void;
}

export class EgressGate {
  /** Per agent, the end of its line of egress questions (one open at a time). */
  private readonly asking = new Map<string, Promise<void>>();

  /** What is written down: egress.open / close / denied, refusals throttled (egress-audit.ts). */
  private readonly records: EgressAudit;

  constructor(private readonly deps: EgressGateDeps) {
    this.records = new EgressAudit(deps);
  }

  /** Write the counts of repeated refusals still open (before the audit log closes). */
  flush(): void {
    this.records.flush();
  }

  /** Audit (synchronous; throws when the log cannot take it), then tell the event bus. */
  record(entry: EgressRecord): void {
    this.records.record(entry);
  }

  /** Connections on relay ports no caller holds (the relay listener's report): audited. */
  recordUnheldPort(egressId: string, report: UnheldReport): void {
    this.records.recordUnheldPort(egressId, report);
  }

  /**
   * The egress proxy for this runtime's goals. `authenticate` checks a caller's proxy
   * credentials (the container plumbing issues them); `resolve` replaces DNS (tests).
   */
  proxy(
    authenticate: EgressPolicy["authenticate"],
    opts: {
      resolve?: EgressResolver;
      headerTimeoutMs?: number;
      requestOf?: EgressPolicy["requestOf"];
      cancelOf?: EgressPolicy["cancelOf"];
      callsOf?: EgressPolicy["callsOf"];
      endedCall?: EgressPolicy["endedCall"];
    } = {},
  ): EgressProxy {
    const { config } = this.deps;
    const { requestOf, cancelOf, callsOf, endedCall, ...proxyOpts } = opts;
    return createEgressProxy(
      {
        authenticate,
        ...(requestOf ? { requestOf } : {}),
        ...(cancelOf ? { cancelOf } : {}),
        ...(callsOf ? { callsOf } : {}),
        ...(endedCall ? { endedCall } : {}),
        decide: (caller, target, signal, call) => this.decide(caller, target, signal, call),
        record: (entry) => this.record(entry),
      },
      {
        hosts: config.hosts,
        connectTimeoutMs: config.connectTimeoutMs,
        idleTimeoutMs: config.idleTimeoutMs,
        maxConnections: config.maxConnections,
        maxConnectionsPerCaller: config.maxConnectionsPerAgent,
        ...proxyOpts,
      },
    );
  }

  async decide(
    caller: EgressCaller,
    target: EgressTarget,
    signal: AbortSignal,
    call?: EgressCall,
  ): Promise<EgressVerdict> {
    const server = serverOfCaller(caller.agentId);
    if (server !== undefined) return this.decideServer(caller, server, target);
    const agent = this.deps.agent(caller.agentId);
    if (!agent || (agent.goalId !== caller.goalId && agent.sandboxGoal !== caller.goalId))
      return refuse("capability", `${caller.agentId} is not an agent of ${caller.goalId}`);
    if (agent.state === "stopped") return refuse("capability", `agent ${caller.agentId} has stopped`);
    let grants: ReturnType<TokenAuthority["verify"]>["grants"];
    try {
      const verified = this.deps.tokens.verify(agent.token);
      if (verified.token.agentId !== caller.agentId)
        return refuse("capability", "the capability token was issued to another agent");
      grants = verified.grants;
    } catch (e) {
      return refuse("capability", `capability token refused: ${errorMessage(e)}`);
    }
    const { need, grant, rule } = this.judge(grants, target);
    if (rule.decision === "deny") return refuse("policy", `${rule.reason} (rule ${rule.rule})`);
    const missing = missingGrant(need, target.literal);
    if (!grant && (target.literal || rule.decision !== "confirm")) return refuse("capability", missing);
    if (rule.decision === "allow") return { allow: true };
    // Only a confirm rule gets here (allow returned, deny refused above).
    const confirm = rule as Extract<typeof rule, { decision: "confirm" }>;
    return this.ask(
      caller,
      agent,
      need,
      {
        why: grant ? confirm.reason : `${missing}; ${confirm.reason}`,
        askedBy: { source: "policy.confirm", rule: confirm.rule, text: confirm.text },
        ...(call !== undefined ? { call } : {}),
      },
      signal,
    );
  }

  /**
   * What both kinds of caller (an agent, a server) are judged by: the grant covering the
   * target, and the operator's network rule for it.
   */
  private judge(grants: readonly Grant[], target: EgressTarget) {
    const need: Extract<Need, { kind: "network" }> = {
      kind: "network",
      host: target.host,
      port: target.port,
    };
    return { need, grant: networkGrantFor(grants, target), rule: this.deps.policy.decideNetwork(need) };
  }

  /**
   * A stdio MCP server's connection: only from its own network (the pseudo-goal of its goal
   * and server), only to what the operator's entries for it grant, never past a deny or a
   * confirm rule (nobody is asked for a server).
   */
  private decideServer(caller: EgressCaller, server: string, target: EgressTarget): EgressVerdict {
    if (parseMcpEgressId(caller.goalId)?.server !== server)
      return refuse("capability", `${caller.agentId} may speak only from its own server's network`);
    const grants = this.deps.serverNetwork?.(server) ?? [];
    if (grants.length === 0)
      return refuse(
        "capability",
        `MCP server ${server} is not configured with network (mcp_servers.${server}.network): it may reach nothing`,
      );
    const { need, grant, rule } = this.judge(grants, target);
    if (rule.decision === "deny") return refuse("policy", `${rule.reason} (rule ${rule.rule})`);
    if (!grant)
      return refuse("capability", `${missingGrant(need, target.literal)} (mcp_servers.${server}.network)`);
    if (rule.decision === "confirm")
      return refuse(
        "approval",
        `${rule.reason}; no human is asked about an MCP server's connections (rule ${rule.rule})`,
      );
    return { allow: true };
  }

  /**
   * A human's answer (or a standing one) for this agent and host:port. An agent has one
   * egress question open at a time: a command opening many connections at once (the same
   * host, or a host each) would otherwise put as many questions to the human at once. The
   * others wait their turn (their client may leave meanwhile), and each looks for a standing
   * answer first, so Allow Session or Always for the first covers the rest unasked. A
   * connection a standing answer covers already never waits behind an open question.
   */
  /** The project of the agent's own goal (a world's agent: the goal it was spawned in). */
  private projectOf(agent: EgressAgent): ProjectBinding {
    return this.deps.project?.(agent.goalId) ?? goalOnlyProject(agent.goalId);
  }

  private async ask(
    caller: EgressCaller,
    agent: EgressAgent,
    need: Extract<Need, { kind: "network" }>,
    asking: Asking,
    signal: AbortSignal,
  ): Promise<EgressVerdict> {
    // What asks nobody does not wait in line: a standing answer, an agent in a world.
    const who = {
      agentId: caller.agentId,
      identity: agent.identity,
      project: this.projectOf(agent),
      tool: EGRESS_APPROVAL_TOOL,
      scope: egressScope(need),
    };
    if (agent.sandboxGoal !== undefined || this.deps.approvals.covering(who))
      return this.askNow(caller, agent, need, asking, signal);
    // A call cancelled before its connection asks asks nothing: refused, saying so.
    const cancelled = asking.call?.running() ? asking.call.cancelled : undefined;
    if (cancelled?.aborted) return refuse("approval", `${reasonOf(cancelled)}; nobody is asked for it`);
    // One line per agent and call: a call's question never waits behind another call's,
    // whose human may answer in another client.
    const key = `${caller.agentId}\n${asking.call?.requestId ?? ""}`;
    const before = this.asking.get(key) ?? Promise.resolve();
    let done = () => {};
    const mine = new Promise<void>((resolve) => {
      done = resolve;
    });
    const line = before.then(() => mine);
    this.asking.set(key, line);
    try {
      const left = await untilTurn(before, withCancel(signal, cancelled));
      if (cancelled?.aborted)
        return refuse("approval", `${reasonOf(cancelled)} while it waited to ask; nobody was asked for it`);
      if (left) return refuse("approval", "the client left while another question of this agent was open");
      if (asking.call === undefined || asking.call.running())
        return await this.askNow(caller, agent, need, asking, signal);
    } finally {
      done();
      if (this.asking.get(key) === line) this.asking.delete(key);
    }
    // Its call ended while it waited (a process that outlived the call): it asks as the
    // agent, in the agent's line, naming no call.
    const { call: _ended, ...asAgent } = asking;
    return this.ask(caller, agent, need, asAgent, signal);
  }

  private async askNow(
    caller: EgressCaller,
    agent: EgressAgent,
    need: Extract<Need, { kind: "network" }>,
    asking: Asking,
    signal: AbortSignal,
  ): Promise<EgressVerdict> {
    const scope = egressScope(need);
    const who = {
      agentId: caller.agentId,
      identity: agent.identity,
      project: this.projectOf(agent),
      tool: EGRESS_APPROVAL_TOOL,
      scope,
    };
    if (agent.sandboxGoal !== undefined && !this.deps.approvals.covering(who))
      return refuse(
        "approval",
        "an agent in a world asks no human, and no standing decision covers this host",
      );
    const outcome = await this.deps.approvals.authorize({
      goalId: caller.goalId,
      ...who,
      input: { host: need.host, port: need.port },
      summary: inert(`egress to ${need.host} port ${need.port} — ${asking.why}`),
      askedBy: asking.askedBy,
      // A call that ended names nothing: what asks then is a process it left behind.
      ...(asking.call?.running() ? { requestId: asking.call.requestId } : {}),
      timeoutMs: this.deps.approvalTimeoutMs,
      // The call's cancel ends the request first, with its reason (approval.expired says the
      // call was cancelled): the command it then stops closes the connection after.
      signal: withCancel(signal, asking.call?.running() ? asking.call.cancelled : undefined),
    });
    if (outcome.allowed) return { allow: true };
    const answer =
      outcome.decision === "deny"
        ? "a human denied the connection"
        : outcome.decision === "timed_out"
          ? "approval timed out"
          : `the approval was closed unanswered${outcome.reason ? `: ${outcome.reason}` : ""}`;
    return refuse("approval", `${answer} (approval ${outcome.approvalId})`);
  }
}

function missingGrant(need: Extract<Need, { kind: "network" }>, literal: boolean): string {
  return `no capability grants ${describeNeed(need)}${literal ? " (an address needs a grant naming it exactly)" : ""}`;
}

/** `signal`, or whichever of it and the call's cancel aborts first (its reason kept). */
function withCancel(signal: AbortSignal, cancelled: AbortSignal | undefined): AbortSignal {
  return cancelled ? AbortSignal.any([cancelled, signal]) : signal;
}

function reasonOf(signal: AbortSignal): string {
  return signal.reason instanceof Error ? signal.reason.message : String(signal.reason);
}

/** Wait for `turn`; true when `signal` aborted first. */
function untilTurn(turn: Promise<void>, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onAbort = () => resolve(true);
    signal.addEventListener("abort", onAbort, { once: true });
    void turn.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(false);
    });
  });
}

/**
 * The grant that lets a caller reach the target, if any: its network grants cover host and
 * port (Need {kind: "network"}); a literal target (an IP asked for, an inward address a name
 * resolved to) only by a grant naming that address exactly (`*`, `*.domain` never do).
 * The daemon's decisions and a human sandbox's host list (humansandbox/egress.ts) both ask it.
 */
export function networkGrantFor(grants: readonly Grant[], target: EgressTarget): Grant | undefined {
  const need: Need = { kind: "network", host: target.host, port: target.port };
  return target.literal
    ? grantsAllow(
        grants.filter((g) => g.kind === "network" && g.host === target.host),
        need,
      )
    : grantsAllow(grants, need);
}

function refuse(stage: EgressStage, reason: string): EgressVerdict {
  return { allow: false, stage, reason };
}

/** The scope an answer covers: the host (ports 80 and 443 together, like a grant), or host:port. */
function egressScope(need: Extract<Need, { kind: "network" }>): ApprovalScope {
  const web = need.port === 80 || need.port === 443;
  return {
    key: approvalScopeOf(EGRESS_APPROVAL_TOOL, {}, [need]).key,
    target: `network connections to ${inert(need.host)} ${web ? "on ports 80 and 443" : `on port ${need.port}`}`,
  };
}
