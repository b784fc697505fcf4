// mcp/approvals-bridge.ts — a call of the session's agent that waits for a human, as the
// MCP client sees it. The daemon's gate asks (approval.requested on the event stream);
// this bridge finds the MCP call it belongs to (same agent, same tool, first call still
// without one) and then either asks the MCP client through elicitation — a form with
// Allow Once / Allow Session / Allow Always / Deny and what each standing answer would
// cover — answering the daemon with approval.respond, or, for a client without the
// elicitation capability, tells it (progress and log notifications) that the call waits
// for `aido approvals`, naming the approval id, until a human answers there. Whoever
// answers first wins: the gate takes one decision per request.

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

export class ApprovalsBridge {
  private readonly waiting: { tool: string; on: OnApproval; claimed: boolean; many: boolean }[] = [];

  private constructor(
    private readonly agentId: string,
    private readonly sub: Subscription,
  ) {}

  /** Listen to the daemon's events for approval requests of `agentId`'s calls. */
  static async start(
    socketPath: string,
    agentId: string,
    log: (m: string) => void,
  ): Promise<ApprovalsBridge> {
    let bridge: ApprovalsBridge | undefined;
    const pending: WireEvent[] = [];
    const sub = await AidoClient.subscribe(socketPath, undefined, (ev) => {
      if (bridge) bridge.onEvent(ev, log);
      else pending.push(ev);
    });
    bridge = new ApprovalsBridge(agentId, sub);
    for (const ev of pending) bridge.onEvent(ev, log);
    return bridge;
  }

  /**
   * Route the next approval request for `tool` to `on` while `fn` runs. `ANY_TOOL` with
   * `many` routes every request of the session's agent (a plan's steps ask one by one).
   */
  async during<T>(tool: string, on: OnApproval, fn: () => Promise<T>, many = false): Promise<T> {
    const w = { tool, on, claimed: false, many };
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

  private onEvent(ev: WireEvent, log: (m: string) => void): void {
    if (ev.type !== "approval.requested" || ev.agent_id !== this.agentId) return;
    const w = this.waiting.find((x) => !x.claimed && (x.tool === ev.tool || x.tool === ANY_TOOL));
    if (!w) return;
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
