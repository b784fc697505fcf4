// cluster/commands.ts — asking another node to do something only it can: cancel a goal it
// runs, answer an approval its agent waits for, list the agents or the audit entries of a
// goal it runs. Each node reads a stream of its own
// (aido:node:<id>:commands) on a blocking connection; a sender appends a command with a
// request id and waits, bounded, for the one answer the owner pushes on a reply list. A
// node that is not heartbeating is refused at once (nobody would read the command); a
// command sent to a node that stops heartbeating (leaves or dies) before answering fails
// within a second or so, one it does not answer in time times out, each with an error that
// says so.
// A sender that gives up withdraws its command, and a node acts on a command only if it
// takes it first (one compare-and-set on aido:request:<id>, pending -> taken or withdrawn):
// a node that was only paused, or slow, and reads the command after its sender answered
// the client with an error never acts on it (refused, audited), and a sender whose command
// was taken waits for the answer rather than say it failed. Commands sent while a node was
// down are not replayed when it comes back either (their request has expired).

import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { ApprovalDecision } from "../security/approvals.js";
import type { AuditQuery } from "../security/audit-query.js";
import { blockingTimeout, READ_BLOCK_MS } from "./connections.js";
import { blockingReader, streamTip } from "./event-stream.js";
import { RedisKeys } from "./redis-keys.js";

export type Command =
  | { type: "goal.cancel"; goal_id: string }
  | { type: "agent.list"; goal_id: string; include_stopped: boolean }
  | { type: "audit.query"; query: AuditQuery & { goal_id: string } }
  | { type: "approval.respond"; id: string; decision: ApprovalDecision; via: string }
  | { type: "audit.verify"; anchor: { seq: number; hash: string } };

interface Envelope {
  request_id: string;
  command: Command;
}

type Reply =
  | { ok: true; result: unknown }
  | { ok: false; error: { code: string; message: string; details?: unknown } };

const REPLY_TTL_SECONDS = 120;
const COMMANDS_MAXLEN = 1_000;

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
async function settle(redis: Redis, requestId: string, to: "taken" | "withdrawn"): Promise<boolean> {
  return (await redis.eval(SETTLE, 1, RedisKeys.request(requestId), to)) === 1;
}

/** Send `command` to `node` and wait for its answer (at most `timeoutMs`). */
export async function sendCommand(
  redis: Redis,
  node: string,
  command: Command,
  timeoutMs: number,
): Promise<unknown> {
  if ((await redis.exists(RedisKeys.alive(node))) === 0) {
    throw new AidoError(
      ErrorCode.clusterUnavailable,
      `node ${node} is not heartbeating; nobody can act on its goal now`,
      {
        node,
      },
    );
  }
  const requestId = randomUUID();
  const envelope: Envelope = { request_id: requestId, command };
  // A connection of its own: BLPOP blocks it for the whole wait.
  const waiter = redis.duplicate({
    lazyConnect: false,
    enableOfflineQueue: true,
    maxRetriesPerRequest: 1,
    socketTimeout: blockingTimeout(redis), // the node's plus the 1 s its BLPOP blocks
  });
  waiter.on("error", () => {});
  try {
    // Pending for as long as this sender may wait, and then some: a node that reads it later
    // finds it expired and does not act on it.
    const ttl = Math.ceil(timeoutMs / 1000) + REPLY_TTL_SECONDS;
    const sent = await redis
      .multi()
      .set(RedisKeys.request(requestId), "pending", "EX", ttl)
      .xadd(RedisKeys.commands(node), "MAXLEN", "~", COMMANDS_MAXLEN, "*", "c", JSON.stringify(envelope))
      .exec();
    const refused = (sent ?? []).find(([e]) => e !== null)?.[0];
    if (!sent || refused) throw refused ?? new Error(`Redis did not take ${command.type} for node ${node}`);
    // Giving up: withdrawn unless the node took it first (then it acts on it and answers, and
    // this waits on). Redis not answering: the node cannot take it either while it is away,
    // but could once Redis is back (within the request's TTL), and the error says so.
    const withdraw = async (): Promise<"withdrawn" | "taken" | "unknown"> => {
      try {
        return (await settle(redis, requestId, "withdrawn")) ? "withdrawn" : "taken";
      } catch {
        return "unknown";
      }
    };
    const fate = (w: "withdrawn" | "unknown") =>
      w === "withdrawn"
        ? "it will not act on it"
        : "Redis did not answer its withdrawal, so it may still act on it once Redis is back";
    // A second at a time: a node that leaves (or dies) before it answers is told apart from
    // a slow one as soon as its heartbeat key is gone, not at the end of the wait.
    const deadline = Date.now() + timeoutMs;
    let taken = false;
    let r: [string, string] | null = null;
    while (r === null) {
      r = await waiter.blpop(RedisKeys.reply(requestId), READ_BLOCK_MS / 1000);
      if (r !== null) break;
      // Redis not answering for a moment proves nothing: keep waiting, up to the deadline.
      if (!taken && (await redis.exists(RedisKeys.alive(node)).catch(() => 1)) === 0) {
        const w = await withdraw();
        if (w !== "taken") {
          throw new AidoError(
            ErrorCode.clusterUnavailable,
            `node ${node} stopped heartbeating before it took ${command.type}; ${fate(w)}`,
            { node },
          );
        }
        taken = true;
      }
      if (Date.now() >= deadline) {
        const w = taken ? "taken" : await withdraw();
        if (w !== "taken") {
          throw new AidoError(
            ErrorCode.clusterUnavailable,
            `node ${node} did not take ${command.type} within ${timeoutMs} ms; ${fate(w)}`,
            { node },
          );
        }
        throw new AidoError(
          ErrorCode.clusterUnavailable,
          `node ${node} took ${command.type} but did not answer within ${timeoutMs} ms; it may still act on it`,
          { node },
        );
      }
    }
    const reply = JSON.parse(r[1]) as Reply;
    if (reply.ok) return reply.result;
    const code = (Object.values(ErrorCode) as string[]).includes(reply.error.code)
      ? (reply.error.code as ErrorCode)
      : ErrorCode.internal;
    throw new AidoError(code, `node ${node}: ${reply.error.message}`, { node });
  } finally {
    waiter.disconnect();
  }
}

/**
 * Read this node's commands until stop(): each taken (unless its sender withdrew it: then
 * `refuse` says why, and nothing is done), handled by `handle`, its answer (or error) pushed
 * to the sender's reply list.
 */
export function serveCommands(
  redis: Redis,
  node: string,
  handle: (c: Command) => Promise<unknown>,
  refuse: (type: string, reason: string) => void,
  log: (m: string) => void,
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
    let reply: Reply;
    try {
      reply = { ok: true, result: await handle(envelope.command) };
    } catch (e) {
      const code = e instanceof AidoError ? e.code : ErrorCode.internal;
      reply = { ok: false, error: { code, message: errorMessage(e) } };
    }
    try {
      const key = RedisKeys.reply(envelope.request_id);
      await redis.multi().rpush(key, JSON.stringify(reply)).expire(key, REPLY_TTL_SECONDS).exec();
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
