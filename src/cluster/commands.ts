// cluster/commands.ts — asking another node to do something only it can: cancel a goal it
// runs, answer an approval its agent waits for. Each node reads a stream of its own
// (aido:node:<id>:commands) on a blocking connection; a sender appends a command with a
// request id and waits, bounded, for the one answer the owner pushes on a reply list. A
// node that is not heartbeating is refused at once (nobody would read the command); a
// command sent to a node that stops heartbeating (leaves or dies) before answering fails
// within a second or so, one it does not answer in time times out, each with an error that
// says so.
// Commands sent while a node was down are not replayed when it comes back: their senders
// gave up already.

import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { ApprovalDecision } from "../security/approvals.js";
import { blockingReader } from "./event-stream.js";
import { RedisKeys } from "./redis-keys.js";

export type Command =
  | { type: "goal.cancel"; goal_id: string }
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
  const waiter = redis.duplicate({ lazyConnect: false, enableOfflineQueue: true, maxRetriesPerRequest: 1 });
  waiter.on("error", () => {});
  try {
    await redis.xadd(
      RedisKeys.commands(node),
      "MAXLEN",
      "~",
      COMMANDS_MAXLEN,
      "*",
      "c",
      JSON.stringify(envelope),
    );
    // A second at a time: a node that leaves (or dies) before it answers is told apart from
    // a slow one as soon as its heartbeat key is gone, not at the end of the wait.
    const deadline = Date.now() + timeoutMs;
    let r: [string, string] | null = null;
    while (r === null) {
      r = await waiter.blpop(RedisKeys.reply(requestId), 1);
      if (r !== null) break;
      // Redis not answering for a moment proves nothing: keep waiting, up to the deadline.
      if ((await redis.exists(RedisKeys.alive(node)).catch(() => 1)) === 0) {
        throw new AidoError(
          ErrorCode.clusterUnavailable,
          `node ${node} stopped heartbeating before it answered ${command.type}`,
          { node },
        );
      }
      if (Date.now() >= deadline) {
        throw new AidoError(
          ErrorCode.clusterUnavailable,
          `node ${node} did not answer ${command.type} within ${timeoutMs} ms`,
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
 * Read this node's commands until stop(): each handled by `handle`, its answer (or error)
 * pushed to the sender's reply list.
 */
export function serveCommands(
  redis: Redis,
  node: string,
  handle: (c: Command) => Promise<unknown>,
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
    let last = "$";
    while (!stopped) {
      let batch: [string, [string, string[]][]][] | null;
      try {
        batch = (await reader.xread(
          "BLOCK",
          1000,
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
