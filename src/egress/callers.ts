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

import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { AidoError, ErrorCode } from "../errors.js";
import { EGRESS_BASE_PORT, EGRESS_SLOTS, type EgressCaller } from "./types.js";

/** One caller's place on its goal's relay. */
export interface EgressSlot {
  port: number;
  /** The proxy user: the agent id (or "sandbox", or mcp.<server> for a server caller). */
  user: string;
  password: string;
}

const PASSWORD_BYTES = 24;

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
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

  /** Are `user:password` this caller's credentials? Constant time in the password. */
  authenticate(caller: EgressCaller, user: string, password: string): boolean {
    const slot = this.byGoal.get(caller.goalId)?.get(caller.agentId);
    if (!slot) return false;
    // Digests first: timingSafeEqual needs equal lengths, and a length must not leak either.
    const passOk = timingSafeEqual(digest(password), digest(slot.password));
    const userOk = timingSafeEqual(digest(user), digest(slot.user));
    return passOk && userOk;
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
 * The environment an exec of the caller gets on an egress network: the proxy variables
 * pip, npm, git, curl and python's urllib read, with its credentials, and NO_PROXY for the
 * container's own loopback.
 */
export function proxyEnv(slot: EgressSlot, relayAddress: string): Record<string, string> {
  const url = `http://${encodeURIComponent(slot.user)}:${encodeURIComponent(slot.password)}@${relayAddress}:${slot.port}`;
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
