// mcp/approvals-bridge.ts — a call of the session's agent that waits for a human, as the
// MCP client sees it. The daemon's gate asks (approval.requested on the event stream);
// this bridge finds the MCP call it belongs to (same agent, same tool, first call still
// without one) and then either asks the MCP client through elicitation — a form with
// Allow Once / Allow Session / Allow Always / Deny and what each standing answer would
// cover — answering the daemon with approval.respond, or, for a client without the
// elicitation capability, tells it (progress and log notifications) that the call waits
// for `aido approvals`, naming the approval id, until a human answers there. Whoever
// answers first wins: the gate takes one decision per request.
//
// Calls side by side (a plan running while the model calls exec, two execs at once) each
// get their own request: when more than one call could own it, the request's stored input
// (approval.list) picks the typed call whose input it is, else the call that runs any
// tool (a plan's step, an intent's check). Routed by arrival order alone, a request went to
// whichever call waited first, so cancelling one call denied another's request and left
// its own open to be allowed after the client had cancelled it.

import { AidoClient, type Subscription } from "../client/client.js";
import type { WireEvent } from "../client/types.js";
import { errorMessage } from "../errors.js";

export type Decision = "allow_once" | "allow_session" | "allow_always" | "deny";

export interface ApprovalAsk {
  approval_id: string;
  tool: string;
  summary: string;
  target: string;
  covers: { allow_once: string; allow_session: string; allow_always: string };
}

/** What one waiting call does with its approval request. */
export type OnApproval = (ask: ApprovalAsk) => void;

const DECISIONS: { value: Decision; title: string }[] = [
  { value: "allow_once", title: "Allow Once" },
  { value: "allow_session", title: "Allow Session" },
  { value: "allow_always", title: "Allow Always" },
  { value: "deny", title: "Deny" },
];

/** The elicitation form for one request: its text says what each answer would cover. */
export function approvalForm(ask: ApprovalAsk) {
  return {
    mode: "form" as const,
    message: [
      `Aido asks before this call runs: ${ask.summary}`,
      `Allow Once: ${ask.covers.allow_once}`,
      `Allow Session: ${ask.covers.allow_session}`,
      `Allow Always: ${ask.covers.allow_always}`,
      "Deny: the call is refused.",
      `(approval ${ask.approval_id}; it can also be answered with \`aido approvals\`)`,
    ].join("\n"),
    requestedSchema: {
      type: "object" as const,
      properties: {
        decision: {
          type: "string" as const,
          title: "Decision",
          oneOf: DECISIONS.map((d) => ({ const: d.value, title: d.title })),
        },
      },
      required: ["decision"],
    },
  };
}

/** The decision an elicitation result carries; anything but an accepted, valid one is a denial. */
export function decisionOf(result: { action: string; content?: Record<string, unknown> }): Decision {
  const d = result.content?.decision;
  if (result.action !== "accept") return "deny";
  return DECISIONS.some((x) => x.value === d) ? (d as Decision) : "deny";
}

/** `during`'s tool for a call that may make any tool of the session's agent ask (plan.execute). */
export const ANY_TOOL = "*";

/** The stored input of a pending approval request; undefined when it is no longer pending. */
export type RequestInput = (approvalId: string) => Promise<unknown>;

interface Waiting {
  tool: string;
  on: OnApproval;
  claimed: boolean;
  many: boolean;
  /** A typed call's input: the request whose stored input holds it is this call's. */
  input?: Record<string, unknown>;
}

export class ApprovalsBridge {
  private readonly waiting: Waiting[] = [];

  private constructor(
    private readonly agentId: string,
    private readonly sub: Subscription,
    private readonly requestInput: RequestInput,
  ) {}

  /** Listen to the daemon's events for approval requests of `agentId`'s calls. */
  static async start(
    socketPath: string,
    agentId: string,
    log: (m: string) => void,
    requestInput: RequestInput,
  ): Promise<ApprovalsBridge> {
    let bridge: ApprovalsBridge | undefined;
    const pending: WireEvent[] = [];
    const sub = await AidoClient.subscribe(socketPath, undefined, (ev) => {
      if (bridge) bridge.onEvent(ev, log);
      else pending.push(ev);
    });
    bridge = new ApprovalsBridge(agentId, sub, requestInput);
    for (const ev of pending) bridge.onEvent(ev, log);
    return bridge;
  }

  /**
   * Route the next approval request for `tool` to `on` while `fn` runs. `ANY_TOOL` with
   * `many` routes every request of the session's agent (a plan's steps ask one by one).
   * `input`, a typed call's, tells its request from those of calls beside it.
   */
  async during<T>(
    tool: string,
    on: OnApproval,
    fn: () => Promise<T>,
    many = false,
    input?: Record<string, unknown>,
  ): Promise<T> {
    const w: Waiting = { tool, on, claimed: false, many, ...(input ? { input } : {}) };
    this.waiting.push(w);
    try {
      return await fn();
    } finally {
      this.waiting.splice(this.waiting.indexOf(w), 1);
    }
  }

  /** Resolves when the event stream ends: closed, or the daemon went away. */
  get ended(): Promise<void> {
    return this.sub.done;
  }

  close(): void {
    this.sub.close();
  }

  /** The calls still without a request that one for `tool` may belong to. */
  private candidates(tool: string): Waiting[] {
    return this.waiting.filter((x) => !x.claimed && (x.tool === tool || x.tool === ANY_TOOL));
  }

  private onEvent(ev: WireEvent, log: (m: string) => void): void {
    if (ev.type !== "approval.requested" || ev.agent_id !== this.agentId) return;
    const tool = String(ev.tool);
    const now = this.candidates(tool);
    if (now.length === 0) return;
    if (now.length === 1) {
      this.route(now[0] as Waiting, ev, log);
      return;
    }
    // More than one call could own it: its stored input says whose it is.
    void this.requestInput(String(ev.approval_id)).then(
      (stored) => this.routeByInput(tool, stored, ev, log),
      (e) => {
        log(`reading approval ${String(ev.approval_id)} failed: ${errorMessage(e)}`);
        this.routeByInput(tool, undefined, ev, log);
      },
    );
  }

  /** The typed call whose input the request holds, else a call that runs any tool, else the first. */
  private routeByInput(tool: string, stored: unknown, ev: WireEvent, log: (m: string) => void): void {
    const now = this.candidates(tool);
    const w =
      now.find((x) => x.tool === tool && x.input !== undefined && holds(stored, x.input)) ??
      now.find((x) => x.tool === ANY_TOOL) ??
      now.find((x) => x.input === undefined) ??
      now[0];
    if (w) this.route(w, ev, log);
  }

  private route(w: Waiting, ev: WireEvent, log: (m: string) => void): void {
    w.claimed = !w.many;
    try {
      w.on({
        approval_id: String(ev.approval_id),
        tool: String(ev.tool),
        summary: String(ev.summary ?? ""),
        target: String(ev.target ?? ""),
        covers: ev.covers as ApprovalAsk["covers"],
      });
    } catch (e) {
      log(`handling approval ${String(ev.approval_id)} failed: ${errorMessage(e)}`);
    }
  }
}

/** `stored` holds `wanted`: every value `wanted` names is there, equal (the gate's parse may add defaults). */
export function holds(stored: unknown, wanted: unknown): boolean {
  if (wanted === null || typeof wanted !== "object") return stored === wanted;
  if (stored === null || typeof stored !== "object") return false;
  if (Array.isArray(wanted) !== Array.isArray(stored)) return false;
  if (Array.isArray(wanted)) {
    const s = stored as unknown[];
    return wanted.length === s.length && wanted.every((v, i) => holds(s[i], v));
  }
  const s = stored as Record<string, unknown>;
  return Object.entries(wanted).every(([k, v]) => v === undefined || holds(s[k], v));
}

/** Answer the daemon; a request a human already answered (or that ended) is left alone. */
export async function respond(
  client: AidoClient,
  id: string,
  decision: Decision,
  log: (m: string) => void,
): Promise<void> {
  try {
    await client.call("approval.respond", { id, decision });
  } catch (e) {
    log(`approval ${id} was not answered from MCP (${errorMessage(e)})`);
  }
}
