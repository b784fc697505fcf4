// cli/commands/cluster.ts — `aido cluster status`: the nodes of the cluster this daemon is
// part of (docs/scale-out.md), each with whether it heartbeats, its load and its running
// goals, and whether this node is fenced (cluster/fence.ts). Exit 1 when the daemon is not in
// a cluster, a node stopped heartbeating, this node is fenced, or it cannot reach Redis.

import { UNPERSISTED_REDIS } from "../../cluster/redis-url.js";
import { refusalAdvice } from "../../cluster/refusal-advice.js";
import { inert } from "../../security/terminal-text.js";
import { type Command, jsonOption, parseCommandArgs, printJson } from "../command.js";
import { withClient } from "./daemon-client.js";
import { commandSpec } from "./index.js";

export const clusterStatus: Command = {
  ...commandSpec("cluster status"),
  async run(ctx) {
    const { values } = parseCommandArgs(this, ctx.argv, { ...jsonOption }, false);
    const r = await withClient(ctx, (c) => c.call("cluster.status", {}));
    if (values.json) printJson(ctx.io, r);
    if (!r.enabled) {
      if (!values.json)
        ctx.io.err(
          "this daemon is not in a cluster (set cluster.redis_url in config.yaml or AIDO_REDIS_URL)",
        );
      return 1;
    }
    if (!values.json) {
      // A daemon from before this field says nothing of it.
      const fence = r.fence;
      ctx.io.out(
        `this node: ${inert(r.node_id)}${fence?.fenced ? `  FENCED${fence.fenced_since ? ` since ${fence.fenced_since.slice(0, 19).replace("T", " ")}` : ""}: it could not renew its lease; its goals wait until Redis answers and it has looked which are still its own` : ""}`,
      );
      // Then this node alone is listed, from its memory: the others' state is not known.
      if (r.redis.unreachable)
        ctx.io.err(
          `Redis cannot be reached from this node: ${inert(r.redis.unreachable)}; this node alone is listed, from its memory`,
        );
      // Redis answered, with a refusal: not a network fault to look for; an ACL to fix only
      // when an ACL refused it (a junk key, a read-only replica are not the user's).
      if (r.redis.refused)
        ctx.io.err(
          `Redis refuses this node's reads: ${inert(r.redis.refused)}; ${refusalAdvice(r.redis.refused)}; this node alone is listed, from its memory`,
        );
      for (const n of r.nodes) {
        const beat = n.last_heartbeat ? n.last_heartbeat.slice(0, 19).replace("T", " ") : "never";
        ctx.io.out(
          `${inert(n.node_id).padEnd(20)} ${(n.alive ? "up" : "DOWN").padEnd(5)} load ${n.running}/${n.capacity}  last heartbeat ${beat}  key ${inert(n.key_id)}  host ${inert(n.host)}`,
        );
        // Cut off from Redis past its lease: the others take this node for dead (node-status.ts).
        if ((r.redis.unreachable || r.redis.refused) && n.node_id === r.node_id && !n.alive)
          ctx.io.out(
            "  its lease ran out: no heartbeat of it reached Redis within lease_ms, so the other nodes take it for dead and may take its goals over",
          );
        // Its load and heartbeat above are what could be read of its record (docs/scale-out.md).
        if (typeof n.malformed === "string") ctx.io.out(`  MALFORMED: ${inert(n.malformed)}`);
        if (n.goals.length > 0) ctx.io.out(`  goals: ${n.goals.map(inert).join(" ")}`);
      }
      // A daemon from before this field says nothing of it.
      const p = r.redis?.persistence ?? "unknown";
      ctx.io.out(`redis persistence: ${p}`);
      if (p === "none") ctx.io.err(`warning: ${UNPERSISTED_REDIS}`);
    }
    return r.nodes.every((n) => n.alive) && !r.fence?.fenced && !r.redis?.unreachable && !r.redis?.refused
      ? 0
      : 1;
  },
};
