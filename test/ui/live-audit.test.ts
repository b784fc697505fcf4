// The dashboard's goal page folds a goal's audit entries into its calls (ui/web/live.ts
// withAuditCalls): what happened before the page was opened. A call that ended as
// tool.errored (a stage of the gate failed, gate/stage-failure.ts) shows as failed with its
// stage and error, as a denied one shows its stage and reason. Real entries from a real log.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/database.js";
import { AuditLog } from "../../src/security/audit.js";
import { RuntimeKey } from "../../src/security/keys.js";
import { emptyState, withAuditCalls } from "../../src/ui/web/live.js";
import { makeTempHome, type TempHome } from "../support/home.js";

let home: TempHome;
let audit: AuditLog;
beforeEach(() => {
  home = makeTempHome();
  audit = new AuditLog({
    db: openDatabase(home.config.dbPath),
    signer: RuntimeKey.load(home.config.keysDir),
  });
});
afterEach(() => home.cleanup());

describe("the goal page's calls from the audit log", () => {
  it("shows a call that ended as tool.errored as failed, with its stage and error", () => {
    const ids = { goalId: "g1", agentId: "a1" };
    audit.record("tool.denied", { tool: "exec", stage: "policy", reason: "no", call_id: "c1" }, ids);
    audit.record(
      "tool.errored",
      {
        tool: "read_file",
        stage: "needs",
        error: "the container could not be started",
        code: "sandbox_unavailable",
        call_id: "c2",
      },
      ids,
    );
    const s = emptyState();
    withAuditCalls(s, [...audit.query({ goal_id: "g1" })].reverse());
    expect(
      s.agents.a1?.calls.map(({ key, tool, status, stage, reason }) => ({
        key,
        tool,
        status,
        stage,
        reason,
      })),
    ).toEqual([
      { key: "c1", tool: "exec", status: "denied", stage: "policy", reason: "no" },
      {
        key: "c2",
        tool: "read_file",
        status: "failed",
        stage: "needs",
        reason: "the container could not be started",
      },
    ]);
  });
});
