// cluster/audit-heads.ts — audit across nodes. Each node's audit chain is signed by its own
// key (cluster/identity.ts); its signed head (security/audit-head.ts: seq + hash of the
// newest entry, rewritten with every commit and so covering every checkpoint) is published
// to Redis with each heartbeat — but only while it extends the head published before: a
// log truncated or rolled back (its entry at the published seq gone or different) never
// overwrites the evidence, whatever its new length. `audit.verify {cluster: true}` (and
// `aido audit verify --cluster`) checks every node: the published head's signature against
// that node's published public key, then the node's chain against that head as an anchor,
// verified by the node itself (this one locally, others over their command stream).

import type { Redis } from "ioredis";
import { errorMessage } from "../errors.js";
import type { AuditVerifyResult } from "../security/audit.js";
import { type AuditHead, headSignedWith, readHeadFile, signHead } from "../security/audit-head.js";
import { RuntimeKey } from "../security/keys.js";
import type { NodeContext } from "./context.js";
import { RedisKeys } from "./redis-keys.js";

declare module "../security/audit-events.js" {
  interface AuditPayloads {
    /** This node's log no longer holds the head it published to the cluster (truncated or rolled back). */
    "cluster.audit_head_diverged": {
      published_seq: number;
      published_hash: string;
      local_hash: string | null;
    };
  }
}

/** One node's part of `audit.verify {cluster: true}`. */
export interface NodeAuditResult {
  node_id: string;
  ok: boolean;
  /** The seq of the head the node published, that its log was checked against. */
  published_seq?: number;
  entries?: number;
  first_bad_seq?: number;
  reason?: string;
}

const VERIFY_TIMEOUT_MS = 60_000;

/** Publish this node's signed head, if it extends the one already published. */
export async function publishHead(ctx: NodeContext, diverged: { reported: boolean }): Promise<void> {
  const { rt, config, redis, identity } = ctx;
  const key = RuntimeKey.load(config.keysDir);
  const file = readHeadFile(config.auditHeadPath, key);
  if (file.state !== "ok") return;
  const head = file.head;
  const published = await readPublished(redis, identity.nodeId);
  if (published && published.seq >= head.seq && published.hash === head.hash) return;
  if (published) {
    const local = published.seq <= head.seq ? rt.audit.hashAt(published.seq) : undefined;
    if (local !== published.hash) {
      // The evidence stays in Redis; the node says so once in its own log.
      if (!diverged.reported) {
        diverged.reported = true;
        rt.audit.record("cluster.audit_head_diverged", {
          published_seq: published.seq,
          published_hash: published.hash,
          local_hash: local ?? null,
        });
        ctx.log(
          `cluster: this node's audit log no longer holds the head it published (seq ${published.seq})`,
        );
      }
      return;
    }
  }
  // The file's head is MACed for this node alone; the cluster gets it signed, for the public key.
  const signed = signHead(key, head.seq, head.hash, head.time);
  await redis.hset(RedisKeys.auditHead(identity.nodeId), {
    seq: String(signed.seq),
    hash: signed.hash,
    key_id: signed.key_id,
    time: signed.time,
    sig: signed.sig as string,
  });
}

async function readPublished(redis: Redis, node: string): Promise<AuditHead | undefined> {
  const h = await redis.hgetall(RedisKeys.auditHead(node));
  if (!h.seq || !h.hash || !h.key_id || !h.time || !h.sig) return undefined;
  return { seq: Number(h.seq), hash: h.hash, key_id: h.key_id, time: h.time, sig: h.sig };
}

/** Check every node's chain against the head it published. */
export async function verifyCluster(ctx: NodeContext): Promise<{ ok: boolean; nodes: NodeAuditResult[] }> {
  const { redis, identity, rt } = ctx;
  const ids = (await redis.smembers(RedisKeys.nodes)).sort();
  const nodes: NodeAuditResult[] = [];
  for (const node_id of ids) {
    const head = await readPublished(redis, node_id);
    const publicKey = await redis.hget(RedisKeys.node(node_id), "public_key");
    if (!head) {
      nodes.push({ node_id, ok: false, reason: "the node published no signed audit head" });
      continue;
    }
    if (!publicKey || !headSignedWith(head, publicKey)) {
      nodes.push({
        node_id,
        ok: false,
        published_seq: head.seq,
        reason: "its published head is not signed by its key",
      });
      continue;
    }
    const anchor = { seq: head.seq, hash: head.hash };
    let r: AuditVerifyResult;
    try {
      r =
        node_id === identity.nodeId
          ? rt.audit.verify({ anchor })
          : ((await ctx.sender.send(
              node_id,
              { type: "audit.verify", anchor },
              VERIFY_TIMEOUT_MS,
            )) as AuditVerifyResult);
    } catch (e) {
      nodes.push({ node_id, ok: false, published_seq: head.seq, reason: errorMessage(e) });
      continue;
    }
    nodes.push({
      node_id,
      ok: r.ok,
      published_seq: head.seq,
      entries: r.entries,
      ...(r.first_bad_seq !== undefined ? { first_bad_seq: r.first_bad_seq } : {}),
      ...(r.reason !== undefined ? { reason: r.reason } : {}),
    });
  }
  return { ok: nodes.every((n) => n.ok), nodes };
}
