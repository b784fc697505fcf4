// `aido approvals` on a cluster node lists the cluster's pending approvals, read from Redis
// (cluster/approval-view.ts): what a Redis writer put there (another node's record, junk, a
// record of an older format) reaches the operator's terminal. It is printed inert, and a
// record lacking a field does not fail the listing of the others. Real redis-server, a real
// agentd node, the real CLI.

import { describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import type { ProviderServer } from "../support/provider-server.js";
import { type RedisServer, startNode } from "./fixture.js";
import { type FileCluster, withCluster } from "./support/file-cluster.js";

let server: ProviderServer;
let redis: RedisServer;
let cluster: FileCluster;
withCluster((c) => {
  ({ server, redis } = c);
  cluster = c;
});

const ESC = "\x1b";
/** An OSC 8 link and a title change: what a raw ESC in a line would do to the terminal. */
const HOSTILE = `${ESC}]8;;https://evil.example/${ESC}\\click${ESC}]8;;${ESC}\\${ESC}]0;owned\x07\r`;

describe("aido approvals in a cluster", () => {
  it("prints a mirrored approval's every field inert, and one lacking fields does not fail the list", async () => {
    const node = await startNode(server, redis.url, "approvals-terminal");
    const now = Date.now();
    const hostile = {
      id: `apr_hostile${HOSTILE}`,
      node: "other-node",
      status: "pending",
      created_at: now - 2,
      deadline_at: now + 60_000,
      goal_id: `g_x${HOSTILE}`,
      agent_id: `agt_x${HOSTILE}`,
      identity: `worker${HOSTILE}`,
      tool: `exec${HOSTILE}`,
      summary: `exec ${HOSTILE}`,
      covers: { allow_once: HOSTILE, allow_session: HOSTILE, allow_always: HOSTILE },
    };
    // A record of an older node: no covers, no deadline, no summary.
    const bare = { id: "apr_bare", node: "old-node", status: "pending", created_at: now - 1, goal_id: null };
    await cluster.raw.hset(
      "aido:approvals",
      hostile.id,
      JSON.stringify(hostile),
      bare.id,
      JSON.stringify(bare),
    );
    await cluster.raw.zadd(
      "aido:approvals:pending",
      hostile.created_at,
      hostile.id,
      bare.created_at,
      bare.id,
    );

    // approval.list (what the dashboard's inbox reads): the bare record has every field its
    // readers take for granted, said missing.
    const listed = (await (await node.client()).call("approval.list", {})).approvals;
    const b = listed.find((x) => x.id === "apr_bare");
    expect(b).toMatchObject({
      tool: expect.any(String),
      summary: expect.any(String),
      target: expect.any(String),
      identity: expect.any(String),
      deadline_at: expect.any(Number),
      covers: {
        allow_once: expect.any(String),
        allow_session: expect.any(String),
        allow_always: expect.any(String),
      },
    });
    expect(b?.summary).toMatch(/not in its record/);

    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(
      ["approvals"],
      { out: (l: string) => out.push(l), err: (l: string) => err.push(l), interactive: false },
      { ...node.home.env, AIDO_HOME: node.home.dir },
    );
    const printed = [...out, ...err].join("\n");
    expect(err).toEqual([]);
    expect(code).toBe(0);
    expect(printed).not.toContain(ESC);
    expect(printed).not.toContain("\x07");
    expect(printed).not.toContain("\r");
    expect(printed).toContain("apr_hostile");
    expect(printed).toContain("apr_bare");
  }, 60_000);
});
