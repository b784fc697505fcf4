// cluster/commands.ts — asking another node to do something only it can: cancel a goal it
// runs, answer an approval its agent waits for, list the agents or the audit entries of a
// goal it runs. Each node reads a stream of its own
// (aido:node:<id>:commands) on a blocking connection; a sender (command-sender.ts) appends a
// command with a request id and the node to answer, and waits, bounded, for the one answer
// the owner appends to that node's reply stream (aido:node:<id>:replies).
// A sender that gives up withdraws its command, and a node acts on a command only if it
// takes it first (one compare-and-set on aido:request:<id>, pending -> taken or withdrawn):
// a node that was only paused, or slow, and reads the command after its sender answered
// the client with an error never acts on it (refused, audited), and a sender whose command
// was taken waits for the answer rather than say it failed. Commands sent while a node was
// down are not replayed when it comes back either (their request has expired).

import type { Redis } from "ioredis";
import { withoutConfigSecrets } from "../config-secrets.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { ApprovalDecision } from "../security/approvals.js";
import type { AuditQuery } from "../security/audit-query.js";
import type { Reply } from "./command-replies.js";
import { READ_BLOCK_MS } from "./connections.js";
import type { NodeContext } from "./context.js";
import { blockingReader, streamTip } from "./event-stream.js";
import { NODE_ID } from "./identity.js";
import { RedisKeys } from "./redis-keys.js";

declare module "../security/audit-events.js" {
  interface AuditPayloads {
    /** A command on this node's stream that it refused (anyone with Redis can write one). */
    "cluster.command_refused": { type: string; reason: string };
  }
}

/**
 * Audit a command this node refused. Its type, and what the reason quotes of it (a routed
 * approval's `via`), are whatever was written to Redis; a reason may quote an error naming the
 * Redis URL: the node's secrets are blanked in both (config-secrets.ts withoutConfigSecrets), or the
 * Redis password reached the audit log, and through audit.query the dashboard, as given.
 */
export function auditRefusal(ctx: Pick<NodeContext, "rt" | "config">, type: string, reason: string): void {
  ctx.rt.audit.record("cluster.command_refused", {
    type: withoutConfigSecrets(type, ctx.config),
    reason: withoutConfigSecrets(reason, ctx.config),
  });
}

export type Command =
  /** `reason`: why, when the cancel says (the end of the MCP session that submitted it), kept as the goal's error. */
  | { type: "goal.cancel"; goal_id: string; reason?: string }
  | { type: "agent.list"; goal_id: string; include_stopped: boolean }
  | { type: "audit.query"; query: AuditQuery & { goal_id: string } }
  | { type: "approval.respond"; id: string; decision: ApprovalDecision; via: string }
  | { type: "audit.verify"; anchor: { seq: number; hash: string } };

export interface Envelope {
  request_id: string;
  /** The node whose reply stream the answer goes to (the sender). */
  reply_to: string;
  command: Command;
}

/** How long a request's record, and a reply stream no one reads, are kept. */
export const REPLY_TTL_SECONDS = 120;
/** How many answers a node's reply stream keeps at most (its sender deletes each it reads). */
const REPLIES_MAXLEN = 1_000;

/** pending -> ARGV[1], only while pending (a missing key: the request expired unread). */
const SETTLE = `
if redis.call('GET', KEYS[1]) ~= 'pending' then return 0 end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 1 then ttl = 1 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
return 1`;

/**
 * Move a pending request to `to` ("taken" by its node, "withdrawn" by its sender): true for
 * the first of the two, false for the second.
 */
export async function settle(redis: Redis, requestId: string, to: "taken" | "withdrawn"): Promise<boolean> {
  return (await redis.eval(SETTLE, 1, RedisKeys.request(requestId), to)) === 1;
}

/**
 * Read this node's commands until stop(): each taken (unless its sender withdrew it: then
 * `refuse` says why, and nothing is done), handled by `handle`, its answer (or error) pushed
 * to the sender's reply list. An error's text leaves this node there: `scrub` (config-secrets.ts
 * withoutConfigSecrets) blanks the node's secrets in it first.
 */
export function serveCommands(
  redis: Redis,
  node: string,
  handle: (c: Command) => Promise<unknown>,
  refuse: (type: string, reason: string) => void,
  log: (m: string) => void,
  scrub: (text: string) => string,
): { stop(): void } {
  const reader = blockingReader(redis);
  let stopped = false;
  const answer = async (raw: string) => {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(raw) as Envelope;
    } catch {
      return;
    }
    const type = String(envelope?.command?.type).slice(0, 80);
    const replyTo = envelope?.reply_to;
    if (typeof replyTo !== "string" || !NODE_ID.test(replyTo)) {
      refuse(type, "it names no node to answer (reply_to): not acted on");
      return;
    }
    try {
      if (!(await settle(redis, String(envelope.request_id), "taken"))) {
        refuse(
          type,
          "no sender waits for it any more (its sender gave up and withdrew it, or the request expired or never existed): not acted on",
        );
        return;
      }
    } catch (e) {
      // Not taken: the sender gives up and says so.
      log(`could not take a cluster command (${type}), not acted on: ${errorMessage(e)}`);
      return;
    }
    const request_id = String(envelope.request_id);
    let reply: Reply;
    try {
      reply = { request_id, ok: true, result: await handle(envelope.command) };
    } catch (e) {
      const code = e instanceof AidoError ? e.code : ErrorCode.internal;
      reply = { request_id, ok: false, error: { code, message: scrub(errorMessage(e)) } };
    }
    try {
      const key = RedisKeys.replies(replyTo);
      await redis
        .multi()
        .xadd(key, "MAXLEN", "~", REPLIES_MAXLEN, "*", "r", JSON.stringify(reply))
        .expire(key, REPLY_TTL_SECONDS)
        .exec();
    } catch (e) {
      log(`answering a cluster command failed: ${errorMessage(e)}`);
    }
  };
  void (async () => {
    // From the newest entry's id, not "$": a read sent again on a new connection (its socket
    // timeout fired as the node resumed from a long pause) read from the tip at that moment,
    // skipping every command that came in while the node was away.
    let last: string | undefined;
    while (!stopped) {
      let batch: [string, [string, string[]][]][] | null;
      try {
        last ??= await streamTip(reader, RedisKeys.commands(node));
        batch = (await reader.xread(
          "BLOCK",
          READ_BLOCK_MS,
          "STREAMS",
          RedisKeys.commands(node),
          last,
        )) as typeof batch;
      } catch (e) {
        if (stopped) return;
        log(`reading cluster commands failed (retrying): ${errorMessage(e)}`);
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      for (const [, entries] of batch ?? []) {
        for (const [id, fields] of entries) {
          last = id;
          void answer(fields[1] ?? "");
        }
      }
    }
  })();
  return {
    stop() {
      stopped = true;
      reader.disconnect();
    },
  };
}
