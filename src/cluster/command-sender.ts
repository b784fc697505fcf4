// cluster/command-sender.ts — this node's side of a routed command (commands.ts): send it to
// the node that must act, wait, bounded, for its answer. The answers to every command this
// node sends come on one stream of its own (aido:node:<id>:replies), read by one blocking
// connection while any command waits: a command cost a connection of its own before (a
// duplicate for its BLPOP), and a dashboard's goal page, asking a goal's agents about twice a
// second, opened and closed connections at that rate. Each answer names its request: one for
// a request no command here waits on (given up, or written by someone else) is dropped, and
// the answer a command gets is checked before it is handed on (command-replies.ts).
// A node that is not heartbeating is refused at once (nobody would read the command); a
// command sent to a node that stops heartbeating (leaves or dies) before answering fails
// within a second or so, one it does not answer in time times out, each with an error that
// says so. A sender that gives up withdraws its command (commands.ts: a node acts on a command
// only if it takes it first), and a sender whose command was taken waits for the answer
// rather than say it failed. Redis failing on the way out (the alive check, the reply
// stream's tip, the send; each bounded) is cluster_unavailable naming the step and Redis,
// never a raw error: callers (goal.cancel, a watch) act on that code. Every error send()
// throws, from any step or in the answer another node wrote, has the node's Redis secret
// blanked (scrub, the node's withoutRedisSecret) before it is handed on: a refusal of Redis
// may name the URL's user (a hosted Redis's token), and an answer carries whatever its node
// (or whoever wrote to Redis) put in it; they reached the socket client as given.

import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { checkedReply, replyRequestId } from "./command-replies.js";
import { type Command, type Envelope, REPLY_TTL_SECONDS, settle } from "./commands.js";
import { READ_BLOCK_MS } from "./connections.js";
import { REDIS_ANSWER_MS, withTimeout } from "./context.js";
import { blockingReader, streamTip } from "./event-stream.js";
import { redisErrorText, redisFailureOf } from "./redis-failure.js";
import { RedisKeys } from "./redis-keys.js";
import { withoutSecretIn } from "./redis-url.js";

const COMMANDS_MAXLEN = 1_000;
/** How many answers one read of the reply stream takes. */
const REPLIES_PER_READ = 100;

export class CommandSender {
  /** Commands waiting for their answer, by request id: each is handed its raw answer. */
  private readonly waiting = new Map<string, (raw: string) => void>();
  /** The one connection the reply stream is read on (made with the first command). */
  private reader: Redis | undefined;
  /** Where the next read of the reply stream starts (its tip when the first command was sent). */
  private last: string | undefined;
  private reading = false;
  private closed = false;

  constructor(
    private readonly redis: Redis,
    /** This node: the one whose reply stream the answers are written to. */
    private readonly nodeId: string,
    private readonly log: (m: string) => void,
    /** What every error send() throws passes through: the Redis URL's secret blanked. */
    private readonly scrub: (text: string) => string,
  ) {}

  /** Stop reading answers (the node leaves): commands still waiting time out. */
  close(): void {
    this.closed = true;
    this.reader?.disconnect();
  }

  /** Send `command` to `node` and wait for its answer (at most `timeoutMs`). */
  async send(node: string, command: Command, timeoutMs: number): Promise<unknown> {
    try {
      return await this.sendOnce(node, command, timeoutMs);
    } catch (e) {
      throw withoutSecretIn(e, this.scrub);
    }
  }

  private async sendOnce(node: string, command: Command, timeoutMs: number): Promise<unknown> {
    const { redis } = this;
    if (this.closed)
      throw new AidoError(ErrorCode.clusterUnavailable, "this node is leaving the cluster", { node });
    const unreachable = (step: string, e: unknown, after = "nothing was sent"): never => {
      // A refusal (NOPERM, OOM) is not a Redis that cannot be reached; a Redis that cannot
      // serve now (BUSY, LOADING) refuses nothing (redis-failure.ts).
      const failure = redisFailureOf(e);
      const what = failure === "refused" ? "refused a command" : "cannot be reached";
      throw new AidoError(
        ErrorCode.clusterUnavailable,
        `the cluster's Redis ${what} (${step} for ${command.type} to node ${node}: ${redisErrorText(e)}); ${after}`,
        { node, redis: failure },
      );
    };
    const alive = await withTimeout(redis.exists(RedisKeys.alive(node)), REDIS_ANSWER_MS).catch(
      (e: unknown) => unreachable("asking whether the node heartbeats", e),
    );
    if (alive === 0) {
      throw new AidoError(
        ErrorCode.clusterUnavailable,
        `node ${node} is not heartbeating; nobody can act on its goal now`,
        { node },
      );
    }
    // Read from before the command goes out: its answer cannot land before the point read from.
    this.last ??= await withTimeout(streamTip(redis, RedisKeys.replies(this.nodeId)), REDIS_ANSWER_MS).catch(
      (e: unknown) => unreachable("reading where its answers will start", e),
    );
    const requestId = randomUUID();
    const envelope: Envelope = { request_id: requestId, reply_to: this.nodeId, command };
    let answered: (raw: string) => void = () => {};
    const answer = new Promise<string>((resolve) => {
      answered = resolve;
    });
    this.waiting.set(requestId, (raw) => answered(raw));
    try {
      // Pending for as long as this sender may wait, and then some: a node that reads it later
      // finds it expired and does not act on it.
      const ttl = Math.ceil(timeoutMs / 1000) + REPLY_TTL_SECONDS;
      // Failing here, it may have reached Redis all the same (the answer lost, not the write).
      const sent = await withTimeout(
        redis
          .multi()
          .set(RedisKeys.request(requestId), "pending", "EX", ttl)
          .xadd(RedisKeys.commands(node), "MAXLEN", "~", COMMANDS_MAXLEN, "*", "c", JSON.stringify(envelope))
          .exec(),
        REDIS_ANSWER_MS,
      ).catch((e: unknown) =>
        unreachable(
          "sending it",
          e,
          `if it reached Redis, node ${node} may still act on it once Redis is back`,
        ),
      );
      const refused = (sent ?? []).find(([e]) => e !== null)?.[0];
      if (!sent || refused)
        throw new AidoError(
          ErrorCode.clusterUnavailable,
          `the cluster's Redis refused ${command.type} for node ${node} (${refused ? redisErrorText(refused) : "its transaction was aborted"}); nothing was sent`,
          { node, redis: "refused" },
        );
      this.readReplies();
      const raw = await this.awaitAnswer(node, command, requestId, answer, timeoutMs);
      return checkedReply(command, node, raw);
    } finally {
      this.waiting.delete(requestId);
    }
  }

  /** The answer, a second at a time: a node that leaves (or dies) is told apart from a slow one. */
  private async awaitAnswer(
    node: string,
    command: Command,
    requestId: string,
    answer: Promise<string>,
    timeoutMs: number,
  ): Promise<string> {
    const { redis } = this;
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
    const deadline = Date.now() + timeoutMs;
    let taken = false;
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const raw = await Promise.race([
        answer,
        new Promise<undefined>((r) => {
          timer = setTimeout(() => r(undefined), Math.min(READ_BLOCK_MS, Math.max(0, deadline - Date.now())));
        }),
      ]).finally(() => clearTimeout(timer));
      if (raw !== undefined) return raw;
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
  }

  /**
   * Read the reply stream while any command waits: each answer to the command that waits for
   * it, each entry read deleted (an answer is read once, and can be large: an audit page).
   */
  private readReplies(): void {
    if (this.reading || this.closed) return;
    this.reading = true;
    this.reader ??= blockingReader(this.redis);
    const reader = this.reader;
    const key = RedisKeys.replies(this.nodeId);
    void (async () => {
      // Stops in the same turn as it finds nobody waiting: a command sent after that starts it again.
      while (this.waiting.size > 0 && !this.closed) {
        let batch: [string, [string, string[]][]][] | null;
        try {
          batch = (await reader.xread(
            "COUNT",
            REPLIES_PER_READ,
            "BLOCK",
            READ_BLOCK_MS,
            "STREAMS",
            key,
            this.last ?? "$",
          )) as typeof batch;
        } catch (e) {
          if (this.closed) break;
          this.log(`cluster: reading the answers to routed commands failed (retrying): ${errorMessage(e)}`);
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        const read: string[] = [];
        for (const [, entries] of batch ?? []) {
          for (const [entryId, fields] of entries) {
            this.last = entryId;
            read.push(entryId);
            const raw = fields[1] ?? "";
            const requestId = replyRequestId(raw);
            if (requestId !== undefined) this.waiting.get(requestId)?.(raw);
          }
        }
        if (read.length > 0) this.redis.xdel(key, ...read).catch(() => 0);
      }
      this.reading = false;
    })();
  }
}
