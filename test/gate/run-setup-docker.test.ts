// What a run is handed is put together after tool.invoked (its egress relay port, its
// confinement): a failure there ends the call as tool.failed, like a failure of the run.
// Before, it threw between tool.invoked and settle(), and the log held a call invoked that never
// ended. The failure here is real: a goal with a network (real Docker: its internal network and
// relay) whose relay has no port left for another caller (egress/callers.ts EGRESS_SLOTS).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { openDatabase } from "../../src/db/database.js";
import { EgressPlumbing } from "../../src/egress/plumbing.js";
import { EGRESS_SLOTS } from "../../src/egress/types.js";
import type { AidoError } from "../../src/errors.js";
import { Gate } from "../../src/gate/invoke.js";
import type { ToolDef } from "../../src/gate/types.js";
import { lazySandbox } from "../../src/sandbox/lazy.js";
import { ApprovalQueue } from "../../src/security/approvals.js";
import { AuditLog } from "../../src/security/audit.js";
import { parseGrant } from "../../src/security/grants.js";
import { RuntimeKey } from "../../src/security/keys.js";
import { PolicyEngine } from "../../src/security/policy.js";
import { TokenAuthority } from "../../src/security/tokens.js";
import { makeSandboxFixture, type SandboxFixture } from "../sandbox/fixture.js";

const GOAL = "run-setup-egress";
const net = [parseGrant("network: example.org")];

let fx: SandboxFixture;
let plumbing: EgressPlumbing;
let runs = 0;

beforeAll(async () => {
  fx = makeSandboxFixture();
  plumbing = new EgressPlumbing({
    home: fx.config.home,
    backend: fx.backend,
    proxy: () => ({ handle: (s) => s.destroy(), close: async () => {} }),
    unheldPort: () => {},
    log: () => {},
  });
  const share = await plumbing.open(GOAL);
  await fx.backend.acquire(GOAL, { egressShare: share });
  // Every relay port of the goal taken by another caller.
  for (let i = 0; i < EGRESS_SLOTS; i++) plumbing.access(GOAL, `filler-${i}`, net);
}, 120_000);
afterAll(async () => {
  await plumbing?.closeAll();
  await fx?.cleanup();
});

describe("a call whose run cannot be put together", () => {
  it("ends as tool.failed after tool.invoked, the caller getting the error", async () => {
    const db = openDatabase(fx.config.dbPath);
    const key = RuntimeKey.load(fx.config.keysDir);
    const audit = new AuditLog({ db, signer: key });
    const tokens = new TokenAuthority({ db, key });
    const approvals = new ApprovalQueue({
      db,
      audit,
      signer: key,
      timeoutMs: 2_000,
      allowAlwaysTtlSeconds: 3600,
    });
    const ping: ToolDef<{ host: string }> = {
      name: "ping_host",
      description: "test tool: counts its runs",
      input: z.strictObject({ host: z.string() }),
      mutates: false,
      needs: async (i) => [{ kind: "network", host: i.host, port: 443 }],
      run: async () => ({ output: `ran ${++runs}` }),
    };
    const gate = new Gate({
      tools: new Map([["ping_host", ping as ToolDef<unknown>]]),
      tokens,
      policy: new PolicyEngine({ policy: { deny: [], confirm: [], snapshotBeforeMutation: false } }),
      audit,
      approvals,
      sandbox: (goalId) => lazySandbox(goalId, () => fx.backend.acquire(goalId)),
      snapshotBeforeMutation: false,
      outputMaxBytes: 4096,
      approvalTimeoutMs: 2_000,
      egress: plumbing,
    });
    const agentId = "late-agent";
    const token = tokens.issue({
      agentId,
      goalId: GOAL,
      grants: [parseGrant("tool: ping_host"), ...net],
      ttlSeconds: 600,
    });
    const e = await gate
      .invoke(
        { agentId, goalId: GOAL, identity: "tester", token, approvalRequired: new Set() },
        { name: "ping_host", input: { host: "example.org" }, callId: "c1" },
      )
      .catch((x: unknown) => x);
    expect((e as AidoError).code).toBe("limit_exceeded");
    expect(runs).toBe(0);
    const entries = audit
      .query({ agent_id: agentId, after_seq: 0 })
      .filter((x) => x.kind.startsWith("tool."));
    expect(entries.map((x) => x.kind)).toEqual(["tool.invoked", "tool.failed"]);
    expect(entries[1]?.payload).toMatchObject({ invoked_seq: entries[0]?.seq, code: "limit_exceeded" });
    expect(audit.verify().ok).toBe(true);
    db.close();
  }, 120_000);
});
