// egress/proxy-admit.ts — what the egress proxy (proxy.ts) checks before a byte goes
// upstream, in order: the caller's credentials, the share of its call (a call's own
// credentials: call-shares.ts callShare), its goal's connection limit, the policy's
// verdict on the host asked, then every address the name resolves to (an inward one needs a
// verdict on that literal address); and the pinned TCP connection to the first checked
// address that answers (no second resolution, so no rebinding). Each check that fails throws
// a Refusal naming its stage; the proxy records and reports it.

import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { errorMessage } from "../errors.js";
import { blockedReason, grantHostOf, hostAddressReason } from "../tools/net-address.js";
import { basicCredentials, Refusal } from "./proxy-forms.js";
import { type Conn, callOf, connectOne } from "./proxy-relay.js";
import type { EgressPolicy, EgressStage, EgressTarget } from "./types.js";

/** How a host name becomes addresses: all answers, in the resolver's order. */
export type EgressResolver = (host: string) => Promise<{ address: string; family: number }[]>;

/** What the checks need from the proxy. */
export interface AdmitContext {
  policy: EgressPolicy;
  /** Static resolution (config egress.hosts): these names never go to DNS. */
  hosts: Readonly<Record<string, string>>;
  resolver: EgressResolver;
  /** Connections open at once per goal (caller.goalId). */
  maxConnections: number;
  /** Connections the goal has open now, this one included. */
  openOfGoal: (goalId: string) => number;
  /**
   * Count the connection against the call its credentials name (conn.call): the reason to
   * refuse it when that call holds its share already, else undefined.
   */
  claimCallShare: (conn: Conn) => string | undefined;
}

/** Credentials, the goal's limit, the host's policy, then every address: what to connect to. */
export async function admit(
  ctx: AdmitContext,
  conn: Conn,
  req: IncomingMessage,
  target: EgressTarget,
): Promise<string[]> {
  const { caller } = conn;
  const creds = basicCredentials(req.headers["proxy-authorization"]);
  if (!creds || !ctx.policy.authenticate(caller, creds.user, creds.password)) {
    throw new Refusal(
      407,
      "auth",
      creds
        ? "these proxy credentials are not the caller's"
        : "proxy credentials required (Proxy-Authorization: Basic)",
    );
  }
  // Per request: a plain HTTP client may send the next request with other credentials.
  conn.call = callOf(ctx.policy, caller, creds.password);
  conn.endedCall = conn.call === undefined && ctx.policy.endedCall?.(caller, creds.password) === true;
  const overShare = ctx.claimCallShare(conn);
  if (overShare !== undefined) throw new Refusal(503, "limit", overShare);
  const open = ctx.openOfGoal(caller.goalId);
  if (open > ctx.maxConnections) {
    throw new Refusal(
      503,
      "limit",
      `goal ${caller.goalId} has ${open - 1} other connections open, the most egress.max_connections allows (${ctx.maxConnections})`,
    );
  }
  await judge(ctx.policy, conn, target);
  if (target.literal) return [target.host.startsWith("[") ? target.host.slice(1, -1) : target.host];
  const addresses = await resolveName(ctx, target.host);
  for (const address of addresses) {
    const why = blockedReason(address) ?? hostAddressReason(address);
    if (why === null) continue;
    // An inward address a name leads to: only a grant naming that address opens it.
    await judge(
      ctx.policy,
      conn,
      { host: grantHostOf(address), port: target.port, literal: true },
      (reason) => ({
        stage: "address",
        reason: `${target.host} resolves to ${address} (${why}): ${reason}`,
      }),
    );
  }
  return addresses;
}

async function judge(
  policy: EgressPolicy,
  conn: Conn,
  target: EgressTarget,
  explain?: (reason: string) => { stage: EgressStage; reason: string },
): Promise<void> {
  let verdict: Awaited<ReturnType<EgressPolicy["decide"]>>;
  try {
    verdict = await policy.decide(conn.caller, target, conn.abort.signal, conn.call);
  } catch (e) {
    throw new Refusal(403, "policy", `the policy could not decide: ${errorMessage(e)}`);
  }
  if (conn.abort.signal.aborted)
    throw new Refusal(403, "policy", "the client left while its host was judged");
  if (verdict.allow) return;
  const refusal = explain?.(verdict.reason) ?? { stage: verdict.stage ?? "policy", reason: verdict.reason };
  throw new Refusal(403, refusal.stage, refusal.reason);
}

async function resolveName(ctx: AdmitContext, host: string): Promise<string[]> {
  const fixed = ctx.hosts[host];
  if (fixed !== undefined) return [fixed];
  let answers: { address: string }[];
  try {
    answers = await ctx.resolver(host);
  } catch (e) {
    throw new Refusal(502, "resolve", `cannot resolve ${host}: ${errorMessage(e)}`);
  }
  if (answers.length === 0) throw new Refusal(502, "resolve", `${host} has no address`);
  return answers.map((a) => a.address);
}

/** A TCP connection to the first checked address that answers (the connect timeout each). */
export async function connectPinned(
  conn: Conn,
  addresses: readonly string[],
  port: number,
  connectTimeoutMs: number,
): Promise<Socket> {
  const failures: string[] = [];
  for (const address of addresses) {
    if (conn.abort.signal.aborted) break;
    try {
      return await connectOne(address, port, connectTimeoutMs, conn.abort.signal);
    } catch (e) {
      failures.push(`${address}: ${errorMessage(e)}`);
    }
  }
  const why = failures.join("; ") || "the client left";
  throw new Refusal(502, "upstream", `cannot connect to ${conn.host} port ${port} (${why})`);
}
