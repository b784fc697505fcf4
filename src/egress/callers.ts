// egress/callers.ts — who may speak through a goal's relay, and on which port. Each caller
// (an agent holding network grants) gets, when it first needs one, a slot of its goal's
// relay — TCP port EGRESS_BASE_PORT + n, the only port its execs' Landlock domain lets them
// connect to — and a random password; the proxy credentials are `<agent id>:<password>`.
// The port says who a connection claims to be (the daemon's listener maps it back), the
// credentials confirm it: authenticate() compares in constant time and only against the
// caller of that port, so another caller's credentials are refused. A caller's slot is
// freed when it stops, a goal's slots when its network goes.
//
// Credentials live in this process's memory only: they reach the container as the
// environment of the agent's execs (proxyEnv), never the audit, logs, events or the model.
//
// A call a socket client made (tool.invoke, a plan's step: the daemon's request id) runs
// its exec with credentials of its own: a key derived from the agent's password and the
// call's secret (HMAC), a ".", and that secret, minted for the call (openCall), which names
// the call's request id while the call runs. The exec never holds the agent's own
// password: a command could otherwise speak as the agent (no call named) and so escape its
// call's share of the agent's connections (call-shares.ts callShare), or append a secret of its
// own making; the key proves the secret was minted here. The
// relay's question to a human about a connection then carries that id, so `aido mcp
// serve` shows it to the MCP call that ran the command. Once the call ended its secret
// names nothing: a process it left running still speaks as the agent (the key is checked
// against the agent's password), and asks with no id (left to \`aido approvals\`), never as another call;
// its connections, and those of every other ended call of the agent, count together
// within one share (endedCall, proxy.ts), so credentials kept in a file for a later call
// do not leave that call's share. Each
// exec is its own Landlock domain, so a command cannot read another exec's environment
// (sandbox/executor/confinement.ts) to borrow its call's secret; an exec in no domain (a
// kernel without Landlock, or landlock off below ABI 4) can (docs/egress.md).

import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { AidoError, ErrorCode } from "../errors.js";
import { parseMcpEgressId } from "./mcp-callers.js";
import { decodedViews } from "./secret-spellings.js";
import { EGRESS_BASE_PORT, EGRESS_SLOTS, type EgressCaller } from "./types.js";

/** One caller's place on its goal's relay. */
export interface EgressSlot {
  port: number;
  /** The proxy user: the agent id (or "sandbox", or mcp.<server> for a server caller). */
  user: string;
  password: string;
  /** Calls running now with credentials of their own: digest of the call's secret -> the call. */
  calls: Map<string, { requestId: string; cancel: AbortController }>;
}

/** A call's own proxy credentials (openCall): the call's key, ".", the call's secret. */
export interface CallCredentials {
  slot: EgressSlot;
  /** What the call's execs authenticate with. */
  password: string;
  /** The key part of it (before the "."): blanked on its own too. */
  key: string;
  /** The call's part of it (after the "."): blanked on its own too, a command may print it alone. */
  secret: string;
  /** The call ended: its secret names no request any more. */
  end(): void;
  /**
   * The call was cancelled: a question its connections ask or wait to ask ends now with
   * `reason` (egress/gate-policy.ts), before the command is stopped and its connections
   * close (which would otherwise end it as "the client left").
   */
  cancel(reason: string): void;
}

const PASSWORD_BYTES = 24;

/**
 * A call's credentials as written: its key (an HMAC-SHA256, base64url), ".", its secret; found
 * at each dot, whatever touches them (`x<key>.<secret>y`, a decoy key before another dot: a
 * match consumes only its dot). Before, a word character on either side hid them.
 */
const CALL_CREDENTIALS = new RegExp(
  `\\.(?<=([\\w-]{43})\\.)(?=([\\w-]{${Math.ceil((PASSWORD_BYTES * 4) / 3)}}))`,
  "g",
);

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/** The key of a call's secret under the agent's password: only this process can make it. */
function callKey(password: string, secret: string): string {
  return createHmac("sha256", password).update(secret).digest("base64url");
}

export class EgressCallers {
  /** goal id -> agent id -> slot */
  private readonly byGoal = new Map<string, Map<string, EgressSlot>>();

  /**
   * The caller's slot, assigned on first need (the lowest free port of its goal's relay).
   * `user` is its proxy user: the agent id unless given (Basic credentials cannot hold a
   * ":" in the user, so a server caller mcp:<server> has another).
   */
  slotOf(caller: EgressCaller, user: string = caller.agentId): EgressSlot {
    let slots = this.byGoal.get(caller.goalId);
    if (!slots) {
      slots = new Map();
      this.byGoal.set(caller.goalId, slots);
    }
    const held = slots.get(caller.agentId);
    if (held) return held;
    const used = new Set([...slots.values()].map((s) => s.port));
    for (let n = 0; n < EGRESS_SLOTS; n++) {
      const port = EGRESS_BASE_PORT + n;
      if (used.has(port)) continue;
      const slot = {
        port,
        user,
        password: randomBytes(PASSWORD_BYTES).toString("base64url"),
        calls: new Map<string, { requestId: string; cancel: AbortController }>(),
      };
      slots.set(caller.agentId, slot);
      return slot;
    }
    throw new AidoError(
      ErrorCode.limitExceeded,
      `goal ${caller.goalId} has ${EGRESS_SLOTS} callers on its egress relay already; no port is left for ${caller.agentId}`,
      { goalId: caller.goalId, agentId: caller.agentId },
    );
  }

  /** The caller a relay port of the goal belongs to now; undefined for a free port. */
  callerOfPort(goalId: string, port: number): EgressCaller | undefined {
    for (const [agentId, slot] of this.byGoal.get(goalId) ?? []) {
      if (slot.port === port) return { goalId, agentId };
    }
    return undefined;
  }

  /**
   * Credentials of the caller's own for one call serving socket request `requestId`, until
   * end(): the slot's password with a secret of the call's appended.
   */
  openCall(caller: EgressCaller, requestId: string): CallCredentials {
    const slot = this.slotOf(caller);
    const secret = randomBytes(PASSWORD_BYTES).toString("base64url");
    const key = digest(secret).toString("hex");
    const cancel = new AbortController();
    slot.calls.set(key, { requestId, cancel });
    const callPart = callKey(slot.password, secret);
    return {
      slot,
      password: `${callPart}.${secret}`,
      key: callPart,
      secret,
      end: () => {
        slot.calls.delete(key);
      },
      cancel: (reason) => {
        if (!cancel.signal.aborted) cancel.abort(new Error(`call ${requestId} was cancelled: ${reason}`));
      },
    };
  }

  /**
   * Are `user:password` this caller's credentials? Constant time in the password. A call's
   * credentials (openCall: its key, ".", its secret) are the caller's too, while its call
   * runs and after; so is the agent's own password with anything after a ".".
   */
  authenticate(caller: EgressCaller, user: string, password: string): boolean {
    const slot = this.byGoal.get(caller.goalId)?.get(caller.agentId);
    if (!slot) return false;
    const dot = password.indexOf(".");
    const first = dot < 0 ? password : password.slice(0, dot);
    // Digests first: timingSafeEqual needs equal lengths, and a length must not leak either.
    const ownOk = timingSafeEqual(digest(first), digest(slot.password));
    const callOk =
      dot >= 0 && timingSafeEqual(digest(first), digest(callKey(slot.password, password.slice(dot + 1))));
    const userOk = timingSafeEqual(digest(user), digest(slot.user));
    return (ownOk || callOk) && userOk;
  }

  /**
   * The request id of the call whose credentials these are, while it runs; undefined for the
   * caller's own, or a call that ended. Ask it only of credentials authenticate() took.
   */
  requestOf(caller: EgressCaller, password: string): string | undefined {
    return this.callOf(caller, password)?.requestId;
  }

  /** Aborts when the call these credentials name is cancelled (CallCredentials.cancel). */
  cancelOf(caller: EgressCaller, password: string): AbortSignal | undefined {
    return this.callOf(caller, password)?.cancel.signal;
  }

  /** How many calls of the caller run now with credentials of their own (openCall, not yet ended). */
  callsOf(caller: EgressCaller): number {
    return this.byGoal.get(caller.goalId)?.get(caller.agentId)?.calls.size ?? 0;
  }

  /**
   * Are these credentials a call's own (its key, ".", its secret) whose call ended? Not the
   * agent's own password with a suffix. Constant time in the password, like authenticate().
   */
  endedCall(caller: EgressCaller, password: string): boolean {
    const dot = password.indexOf(".");
    const slot = this.byGoal.get(caller.goalId)?.get(caller.agentId);
    if (dot < 0 || !slot) return false;
    const secret = password.slice(dot + 1);
    const keyOk = timingSafeEqual(digest(password.slice(0, dot)), digest(callKey(slot.password, secret)));
    return keyOk && !slot.calls.has(digest(secret).toString("hex"));
  }

  /**
   * The credentials of this caller's calls (openCall: key, ".", secret) that `text` holds, of a
   * call running or ended: a command of one call can leave them in a file (`printf %s
   * "$HTTP_PROXY" > f`) that a later call reads, whose own credentials are others, and they
   * still speak as the agent (authenticate). Found by their form as a call's exec is given
   * them, as written or in a spelling credentialSpellings blanks (secret-spellings.ts
   * decodedViews: percent-encoded, base64 or hex on one line), each checked by its key.
   */
  callCredentialsIn(caller: EgressCaller, text: string): { password: string; key: string; secret: string }[] {
    const slot = this.byGoal.get(caller.goalId)?.get(caller.agentId);
    return slot ? callCredentialsOf([slot], text) : [];
  }

  /**
   * Every caller's credentials of the goal (credentials): its agents' and its MCP servers',
   * each a user and a password. A file one of them wrote to the goal's workspace can be read
   * by another (a child reading its parent's proxy URL): each tool output of the goal blanks
   * them all (plumbing.ts access). Before, only the reader's own were blanked.
   */
  credentialsIn(goalId: string): { user: string; password: string }[] {
    return this.slotsOfGoal(goalId).map((s) => ({ user: s.user, password: s.password }));
  }

  /** callCredentialsIn for every caller of the goal (credentialsIn), each with its proxy user. */
  goalCallCredentialsIn(
    goalId: string,
    text: string,
  ): { user: string; password: string; key: string; secret: string }[] {
    return callCredentialsOf(this.slotsOfGoal(goalId), text);
  }

  /** The slots of the goal and of its MCP servers' pseudo-goals (mcp-callers.ts). */
  private slotsOfGoal(goalId: string): EgressSlot[] {
    const slots: EgressSlot[] = [];
    for (const [id, held] of this.byGoal) {
      if (id === goalId || parseMcpEgressId(id)?.goalId === goalId) slots.push(...held.values());
    }
    return slots;
  }

  private callOf(caller: EgressCaller, password: string) {
    const dot = password.indexOf(".");
    if (dot < 0) return undefined;
    const slot = this.byGoal.get(caller.goalId)?.get(caller.agentId);
    return slot?.calls.get(digest(password.slice(dot + 1)).toString("hex"));
  }

  /** The caller stopped: its port and password are no one's (a later caller may get the port). */
  free(caller: EgressCaller): void {
    const slots = this.byGoal.get(caller.goalId);
    slots?.delete(caller.agentId);
    if (slots?.size === 0) this.byGoal.delete(caller.goalId);
  }

  /** Every agent of the goal, wherever it runs (an agent id is unique across goals). */
  freeAgent(agentId: string): void {
    for (const goalId of [...this.byGoal.keys()]) this.free({ goalId, agentId });
  }

  /** The goal's network went: all its slots are free. */
  freeGoal(goalId: string): void {
    this.byGoal.delete(goalId);
  }
}

/**
 * The call credentials (openCall: key, ".", secret) of any of `slots` that `text` holds, of a
 * call running or ended, as written or in a spelling credentialSpellings blanks
 * (secret-spellings.ts decodedViews), each checked by its key; with the slot's proxy user.
 */
function callCredentialsOf(
  slots: readonly EgressSlot[],
  text: string,
): { user: string; password: string; key: string; secret: string }[] {
  if (slots.length === 0) return [];
  const found = new Map<string, { user: string; password: string; key: string; secret: string }>();
  for (const view of decodedViews(text)) {
    for (const [, key = "", secret = ""] of view.matchAll(CALL_CREDENTIALS)) {
      const password = `${key}.${secret}`;
      if (found.has(password)) continue;
      const slot = slots.find((s) => timingSafeEqual(digest(key), digest(callKey(s.password, secret))));
      if (slot) found.set(password, { user: slot.user, password, key, secret });
    }
  }
  return [...found.values()];
}

/**
 * The environment an exec of the caller gets on an egress network: the proxy variables
 * pip, npm, git, curl and python's urllib read, with its credentials, and NO_PROXY for the
 * container's own loopback.
 */
export function proxyEnv(
  slot: EgressSlot,
  relayAddress: string,
  password: string = slot.password,
): Record<string, string> {
  const url = `http://${encodeURIComponent(slot.user)}:${encodeURIComponent(password)}@${relayAddress}:${slot.port}`;
  const noProxy = "localhost,127.0.0.1,::1";
  return {
    HTTP_PROXY: url,
    HTTPS_PROXY: url,
    http_proxy: url,
    https_proxy: url,
    ALL_PROXY: url,
    NO_PROXY: noProxy,
    no_proxy: noProxy,
    npm_config_proxy: url,
    npm_config_https_proxy: url,
  };
}
