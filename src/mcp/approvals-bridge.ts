// mcp/approvals-bridge.ts — a call of the session's agent that waits for a human, as the
// MCP client sees it. The daemon's gate asks (approval.requested on the event stream);
// this bridge finds the MCP call it belongs to and then either asks the MCP client through
// elicitation — a form with Allow Once / Allow Session / Allow Always / Deny and what each
// standing answer would cover — answering the daemon with approval.respond, or, for a
// client without the elicitation capability, tells it (progress and log notifications)
// that the call waits for `aido approvals`, naming the approval id, until a human answers
// there. Whoever answers first wins: the gate takes one decision per request.
//
// Which call a request belongs to is the daemon's word: each call that may ask gets an id
// from the daemon (request.started, on the call's own connection, before it asks), and
// every approval request it makes names that id (request_id). A request is routed to the
// call of its id and to no other; one that arrives before its call learned its id waits
// for it (parked: a bounded number in all and for each id, so one id's flood never pushes
// out another call's), and one whose id no call of this session holds (a
// request of the session's agent made by another socket client) is left to `aido
// approvals`. Routed by what a request asks, two calls with the same input had their
// requests swapped: a cancel of one denied the other's, and its own stayed open to be
// allowed after the client had cancelled it.
//
// A request that names no id is no call's of this session: every daemon method a call of
// this server uses (tool.invoke, plan.execute, intent.check) names its requests; one naming
// none was made by an agent's own turn or by a process a call left running, and is left to
// `aido approvals`. Before, such a request went to a call of the same tool that had not yet
// learned its id (the first of several, or the one whose input the request's stored input
// held: stored blanked, a call carrying a secret matched none, and a call beside it got the
// question), so a plan's form could ask about a left process's connection, and a cancel of
// the plan denied it.

import { AidoClient, type Subscription } from "../client/client.js";
import type { WireEvent } from "../client/types.js";
import { errorMessage } from "../errors.js";
import { codeNotShown, type ShownCode, wholeInput } from "../security/approval-shown.js";
import { inertLines } from "../security/terminal-text.js";

export type Decision = "allow_once" | "allow_session" | "allow_always" | "deny";

export interface ApprovalAsk {
  approval_id: string;
  tool: string;
  summary: string;
  target: string;
  covers: { allow_once: string; allow_session: string; allow_always: string };
  /** The secrets the call carries, by kind (the event's carries_secrets): what its blanks stand for. */
  carries_secrets: string[];
  /** Whose call asks (the approval.requested event's submitted_by): this session's own; absent from an older daemon. */
  submitted_by?: { kind: string; session_id: string };
  /**
   * The request's stored input (approval.list, secrets blanked), read before the call is
   * shown: the summary cuts it. Absent when it could not be read; the form is then not offered.
   * `code`: the text of each file an exec runs as code (approval.list `code`), shown in the form.
   */
  stored?: StoredRequest;
}

/** What approval.list holds of a request beyond its event: its input and the code it runs. */
export interface StoredRequest {
  input: unknown;
  code: ShownCode[];
}

/** What one waiting call does with its approval request. */
export type OnApproval = (ask: ApprovalAsk) => void;

const DECISIONS: { value: Decision; title: string }[] = [
  { value: "allow_once", title: "Allow Once" },
  { value: "allow_session", title: "Allow Session" },
  { value: "allow_always", title: "Allow Always" },
  { value: "deny", title: "Deny" },
];

/**
 * Why a request is not asked about in a form, but left to `aido approvals`: its input could
 * not be read, or is too long to show whole (security/approval-shown.ts); undefined: it can be.
 */
export function formWithheld(ask: ApprovalAsk): string | undefined {
  if (ask.stored === undefined) return "its input could not be read to show it";
  const whole = wholeInput(ask.stored.input);
  if (whole !== undefined && whole.rest > 0)
    return `its input is too long to show in a form (${whole.total} characters; \`aido approvals --json\` shows all of it)`;
  const notShown = codeNotShown(ask.stored.code);
  if (notShown > 0)
    return `the code it runs is too long to show whole (${notShown} characters not shown; \`aido approvals\` shows the rest of the request)`;
  return undefined;
}

/**
 * The elicitation form for one request (one formWithheld lets through): its text says what
 * each answer would cover, and shows the call's whole input when the summary cut it.
 */
export function approvalForm(ask: ApprovalAsk) {
  const whole = ask.stored === undefined ? undefined : wholeInput(ask.stored.input);
  return {
    mode: "form" as const,
    message: [
      `Aido asks before this call runs: ${ask.summary}`,
      ...(whole !== undefined ? [`The whole call (${whole.total} characters): ${whole.shown}`] : []),
      ...codeText(ask.stored?.code ?? []),
      ...(ask.carries_secrets.length > 0
        ? [`This call carries secrets (shown blanked): ${ask.carries_secrets.join("; ")}`]
        : []),
      ...(ask.submitted_by
        ? [
            `Asked by: MCP session ${ask.submitted_by.session_id} (this session's own call, not one of the user's goals)`,
          ]
        : []),
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

/** The text of each file the call runs as code, as the form shows it (inert; lines kept). */
function codeText(code: readonly ShownCode[]): string[] {
  return code.map(
    (c) =>
      `It runs ${inertLines(c.path)} (sha256 ${c.sha256.slice(0, 16)}…, ${c.chars} characters), which reads:\n${inertLines(c.content)}\n(end of ${inertLines(c.path)})`,
  );
}

/** The decision an elicitation result carries; anything but an accepted, valid one is a denial. */
export function decisionOf(result: { action: string; content?: Record<string, unknown> }): Decision {
  const d = result.content?.decision;
  if (result.action !== "accept") return "deny";
  return DECISIONS.some((x) => x.value === d) ? (d as Decision) : "deny";
}

/** withHuman's tool for a call that may make any tool of the session's agent ask (plan.execute). */
export const ANY_TOOL = "*";

/** The stored input and code of a pending approval request (approval.list); undefined when it is no longer pending. */
export type RequestInput = (approvalId: string) => Promise<StoredRequest>;

interface Waiting {
  on: OnApproval;
  /** The id the daemon gave the call: the requests naming it are this call's. */
  requestId?: string;
}

/**
 * Requests kept for calls that have not yet learned their id, all ids together; beyond
 * this, the id that keeps the most loses its oldest.
 */
export const MAX_PARKED = 256;

/**
 * Requests kept for one id: beyond this its own oldest goes. A flood naming one id (a
 * command opening hundreds of connections under a confirm rule, another socket client's
 * plan) stays within its own share and never pushes out another call's request.
 */
export const MAX_PARKED_PER_ID = 32;

/**
 * Requests by request id, arrived before a call claimed the id (or of no call of this
 * session): at most `perId` for one id, `max` in all. Counted per request, not per id: one
 * id whose call never claims it could otherwise park without bound. When all are full the
 * id keeping the most loses its oldest, so the ids that keep a few (a real call's
 * question that arrived before its call learned its id) keep them whatever the others do.
 */
export class ParkedRequests {
  private readonly byId = new Map<string, WireEvent[]>();
  /** Ids no running call of this session can have: parked while every running call knew its id. */
  private readonly orphans = new Set<string>();
  private count = 0;

  constructor(
    private readonly max = MAX_PARKED,
    private readonly perId = MAX_PARKED_PER_ID,
  ) {}

  /** How many requests are kept, all ids together. */
  get size(): number {
    return this.count;
  }

  /** Keep `ev` for `requestId`; `orphan`: no running call of this session can have that id. */
  park(requestId: string, ev: WireEvent, orphan = false): void {
    const list = this.byId.get(requestId) ?? [];
    if (list.length >= this.perId) {
      list.shift();
      this.count--;
    }
    if (orphan && list.length === 0) this.orphans.add(requestId);
    if (!orphan) this.orphans.delete(requestId);
    while (this.count >= this.max) this.dropFromLargest();
    list.push(ev);
    this.byId.set(requestId, list);
    this.count++;
  }

  /** Every running call knows its id: no id kept now is a running call's. */
  orphanAll(): void {
    for (const id of this.byId.keys()) this.orphans.add(id);
  }

  /** The requests kept for `requestId`, oldest first; they are no longer kept. */
  take(requestId: string): WireEvent[] {
    const list = this.byId.get(requestId) ?? [];
    this.byId.delete(requestId);
    this.orphans.delete(requestId);
    this.count -= list.length;
    return list;
  }

  /** An approval that was answered (or timed out) is no longer kept for any id. */
  resolved(approvalId: string): void {
    for (const [id, list] of this.byId) {
      const at = list.findIndex((e) => e.approval_id === approvalId);
      if (at < 0) continue;
      list.splice(at, 1);
      this.count--;
      if (list.length === 0) {
        this.byId.delete(id);
        this.orphans.delete(id);
      }
      return;
    }
  }

  /**
   * The id keeping the most (the first parked of those tied) loses its oldest request,
   * taken from the ids no running call can have while there are any, so a flood of ids
   * never pushes out a request a running call is about to claim.
   */
  private dropFromLargest(): void {
    let largest: [string, WireEvent[]] | undefined;
    const pool = [...this.byId].filter(([id]) => this.orphans.has(id));
    for (const entry of pool.length > 0 ? pool : this.byId)
      if (!largest || entry[1].length > largest[1].length) largest = entry;
    if (!largest) return;
    const [id, list] = largest;
    list.shift();
    this.count--;
    if (list.length === 0) {
      this.byId.delete(id);
      this.orphans.delete(id);
    }
  }
}

/** Tells the bridge the id the daemon gave the call (AidoClient CallOptions.onStarted). */
export type Started = (requestId: string) => void;

export class ApprovalsBridge {
  private readonly waiting: Waiting[] = [];
  /** Requests by request id, arrived before a call claimed the id (or of no call of this session). */
  private readonly parked = new ParkedRequests();

  private constructor(
    private readonly agentId: string,
    private readonly sub: Subscription,
    private readonly requestInput: RequestInput,
    private readonly log: (m: string) => void,
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
      if (bridge) bridge.onEvent(ev);
      else pending.push(ev);
    });
    bridge = new ApprovalsBridge(agentId, sub, requestInput, log);
    for (const ev of pending) bridge.onEvent(ev);
    return bridge;
  }

  /**
   * Route the approval requests of the call `fn` makes to `on` while it runs: `fn` passes
   * the id the daemon gives its call to `started` (CallOptions.onStarted), and every request
   * naming that id is this call's (a plan's steps ask one by one: all of them).
   */
  async during<T>(on: OnApproval, fn: (started: Started) => Promise<T>): Promise<T> {
    const w: Waiting = { on };
    this.waiting.push(w);
    const started: Started = (requestId) => {
      if (w.requestId !== undefined || !this.waiting.includes(w)) return;
      w.requestId = requestId;
      for (const ev of this.parked.take(requestId)) this.route(w, ev);
      this.settleParked();
    };
    try {
      return await fn(started);
    } finally {
      this.waiting.splice(this.waiting.indexOf(w), 1);
      this.settleParked();
    }
  }

  /** No running call lacks its id: every id parked now is no running call's. */
  private settleParked(): void {
    if (!this.waiting.some((x) => x.requestId === undefined)) this.parked.orphanAll();
  }

  /** Resolves when the event stream ends: closed, or the daemon went away. */
  get ended(): Promise<void> {
    return this.sub.done;
  }

  close(): void {
    this.sub.close();
  }

  private onEvent(ev: WireEvent): void {
    if (ev.type === "approval.decided" && ev.agent_id === this.agentId) {
      this.parked.resolved(String(ev.approval_id));
      return;
    }
    if (ev.type !== "approval.requested" || ev.agent_id !== this.agentId) return;
    // No id: an agent's own turn or a process a call left running asked; `aido approvals` answers it.
    if (typeof ev.request_id !== "string") return;
    const requestId = ev.request_id;
    const own = this.waiting.find((x) => x.requestId === requestId);
    if (own) this.route(own, ev);
    else this.parked.park(requestId, ev, !this.waiting.some((x) => x.requestId === undefined));
  }

  /** Hand the request to its call, with its stored input (the summary cuts it: approvalForm). */
  private route(w: Waiting, ev: WireEvent): void {
    const approvalId = String(ev.approval_id);
    void this.requestInput(approvalId)
      .then(
        (stored): Pick<ApprovalAsk, "stored"> => ({ stored }),
        (e) => {
          this.log(`reading approval ${approvalId} failed: ${errorMessage(e)}`);
          return {};
        },
      )
      .then((stored) => {
        try {
          w.on({
            approval_id: approvalId,
            tool: String(ev.tool),
            summary: String(ev.summary ?? ""),
            target: String(ev.target ?? ""),
            covers: ev.covers as ApprovalAsk["covers"],
            carries_secrets: Array.isArray(ev.carries_secrets)
              ? ev.carries_secrets.filter((k): k is string => typeof k === "string")
              : [],
            ...submittedByOf(ev),
            ...stored,
          });
        } catch (e) {
          this.log(`handling approval ${approvalId} failed: ${errorMessage(e)}`);
        }
      });
  }
}

/** The event's submitted_by, when it names a session (the daemon's own event; its id is printed as given). */
function submittedByOf(ev: WireEvent): Pick<ApprovalAsk, "submitted_by"> {
  const by = ev.submitted_by as { kind?: unknown; session_id?: unknown } | undefined;
  if (by?.kind !== "mcp_session" || typeof by.session_id !== "string") return {};
  return { submitted_by: { kind: by.kind, session_id: by.session_id } };
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
