// approval.list paged with limit/offset on a node whose own records the mirror does not hold
// (here from before it joined): the pages put together are the whole list, each approval
// once, even when two were asked in the same millisecond. Real redis-server, a real daemon
// whose home ran as a lone daemon first.

import { describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/database.js";
import { goalOnlyProject } from "../../src/security/approval-project.js";
import { ApprovalStore } from "../../src/security/approval-store.js";
import { providerEnv } from "../agent/harness.js";
import { startDaemonChild } from "../daemon/process.js";
import { makeTempHome } from "../support/home.js";
import type { ProviderServer } from "../support/provider-server.js";
import { type RedisServer, startNode } from "./fixture.js";
import { withCluster } from "./support/file-cluster.js";

let server: ProviderServer;
let redis: RedisServer;

withCluster((c) => ({ server, redis } = c));

describe("approval.list pages on a node with approvals from before it joined", () => {
  it("give each approval once, in the order of the whole list, when two share a millisecond", async () => {
    const home = makeTempHome(providerEnv(server));
    // A lone daemon made the home (its database); then two of its agents asked for approvals
    // in the same millisecond, the later-inserted one with the smaller id.
    const lone = await startDaemonChild(home, server);
    lone.child.kill("SIGTERM");
    await lone.exited;
    const db = openDatabase(home.config.dbPath);
    const store = new ApprovalStore(db, 3600);
    const at = Date.now() - 60_000;
    const ids = ["apr_ffffffff-0000-4000-8000-000000000000", "apr_00000000-0000-4000-8000-000000000000"];
    for (const [i, id] of ids.entries()) {
      store.insert({
        id,
        goalId: null,
        agentId: `agt_lone${i}`,
        identity: "agent",
        project: goalOnlyProject(`s_lone${i}`),
        tool: "file_write",
        scopeKey: "file_write",
        target: "/output/x.md",
        input: "{}",
        summary: "write x.md",
        askedBy: { source: "approval_required", text: "file_write needs a human" },
        createdAt: at,
        deadlineAt: at + 3_600_000,
      });
    }
    db.close();

    // It joins; its start closes the two as expired (their calls died with the lone daemon).
    const node = await startNode(server, redis.url, "pages-node", { home });
    const c = await node.client();
    const whole = (await c.call("approval.list", { status: "expired" })).approvals.map((a) => a.id);
    expect([...whole].sort()).toEqual([...ids].sort());
    const pages: string[] = [];
    for (let offset = 0; offset < whole.length; offset++) {
      const page = await c.call("approval.list", { status: "expired", limit: 1, offset });
      pages.push(...page.approvals.map((a) => a.id));
    }
    expect(pages).toEqual(whole);
  }, 60_000);
});
