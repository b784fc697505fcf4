// The gate test world (test/gate/gate.test.ts, gate-before-run.test.ts): small real tools of the
// suite whose side effects are observable, and real SQLite-backed tokens, policy, approvals and audit.

import { z } from "zod";
import { openDatabase } from "../../src/db/database.js";
import { Gate, GateDenied, type Principal, type SnapshotHook } from "../../src/gate/invoke.js";
import type { ToolDef } from "../../src/gate/types.js";
import { lazySandbox } from "../../src/sandbox/lazy.js";
import { ApprovalQueue } from "../../src/security/approvals.js";
import { AuditLog } from "../../src/security/audit.js";
import { parseGrant } from "../../src/security/grants.js";
import { RuntimeKey } from "../../src/security/keys.js";
import { execNeeds, PolicyEngine } from "../../src/security/policy.js";
import { analyzeCommand } from "../../src/security/shell.js";
import { TokenAuthority } from "../../src/security/tokens.js";
import { makeTempHome, type TempHome } from "../support/home.js";

export interface World {
  home: TempHome;
  gate: Gate;
  audit: AuditLog;
  tokens: TokenAuthority;
  approvals: ApprovalQueue;
  writes: string[];
  runs: string[];
  principal(grants: string[], opts?: Partial<Principal>): Principal;
}

/** A tool whose "write" lands in an array: the side effect a denial must never cause. */
function noteTool(writes: string[]): ToolDef<{ path: string; text: string }> {
  return {
    name: "note_write",
    description: "test tool: records a write",
    input: z.strictObject({ path: z.string().startsWith("/"), text: z.string().max(100) }),
    mutates: true,
    needs: async (i) => [{ kind: "file_write", path: i.path }],
    run: async (i) => {
      writes.push(`${i.path}=${i.text}`);
      return { output: "written" };
    },
  };
}

function shellTool(runs: string[]): ToolDef<{ command: string }> {
  return {
    name: "exec",
    description: "test tool: records a command it would run",
    input: z.strictObject({ command: z.string().min(1) }),
    mutates: true,
    needs: async (i) => execNeeds(analyzeCommand(i.command)),
    run: async (i) => {
      runs.push(i.command);
      return { output: "ran" };
    },
  };
}

export function makeWorld(
  approvalTimeoutMs = 2_000,
  snapshots?: SnapshotHook,
  hold?: (goalId: string, signal?: AbortSignal) => Promise<void>,
): World {
  const home = makeTempHome();
  const db = openDatabase(home.config.dbPath);
  const key = RuntimeKey.load(home.config.keysDir);
  const audit = new AuditLog({ db, signer: key });
  const tokens = new TokenAuthority({ db, key });
  const approvals = new ApprovalQueue({
    db,
    audit,
    signer: key,
    timeoutMs: approvalTimeoutMs,
    allowAlwaysTtlSeconds: 3600,
    pollMs: 20,
  });
  const writes: string[] = [];
  const runs: string[] = [];
  const tools = new Map<string, ToolDef<unknown>>([
    ["note_write", noteTool(writes) as ToolDef<unknown>],
    ["exec", shellTool(runs) as ToolDef<unknown>],
  ]);
  const gate = new Gate({
    tools,
    tokens,
    policy: new PolicyEngine({
      policy: { deny: ["git push *"], confirm: ["tool: exec"], snapshotBeforeMutation: false },
    }),
    audit,
    approvals,
    sandbox: (goalId) =>
      lazySandbox(goalId, async () => {
        throw new Error("these test tools never touch a sandbox");
      }),
    snapshotBeforeMutation: snapshots !== undefined,
    ...(snapshots ? { snapshots } : {}),
    ...(hold ? { beforeRun: hold } : {}),
    outputMaxBytes: 4096,
    approvalTimeoutMs,
  });
  let n = 0;
  return {
    home,
    gate,
    audit,
    tokens,
    approvals,
    writes,
    runs,
    principal(grants, opts = {}) {
      const agentId = `agent-${++n}`;
      const token = tokens.issue({ agentId, goalId: "g1", grants: grants.map(parseGrant), ttlSeconds: 600 });
      return {
        agentId,
        goalId: "g1",
        identity: "tester",
        token,
        approvalRequired: new Set<string>(),
        ...opts,
      };
    },
  };
}

export async function denial(p: Promise<unknown>): Promise<GateDenied> {
  try {
    await p;
  } catch (e) {
    if (e instanceof GateDenied) return e;
    throw e;
  }
  throw new Error("expected the gate to deny the call");
}

export async function waitFor<T>(probe: () => T | undefined, timeoutMs = 3000): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("timed out waiting");
}
