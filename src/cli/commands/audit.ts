// cli/commands/audit.ts — `aido audit verify | tail | query`, read straight from
// $AIDO_HOME/aido.db with the runtime's key: verifying must not depend on the daemon
// (the daemon is one of the things an auditor may not trust).

import { existsSync } from "node:fs";
import type { Config } from "../../config.js";
import { openDatabase } from "../../db/database.js";
import { AidoError, ErrorCode } from "../../errors.js";
import { AuditLog } from "../../security/audit.js";
import { AUDIT_KINDS, type AuditEntry } from "../../security/audit-events.js";
import { RuntimeKey } from "../../security/keys.js";
import { type CliIo, type Command, jsonOption, parseCommandArgs, printJson, UsageError } from "../command.js";

function openAudit(config: Config): { audit: AuditLog; close(): void } {
  if (!existsSync(config.dbPath)) {
    throw new AidoError(ErrorCode.notFound, `no Aido state at ${config.home} (nothing has run yet)`, {
      home: config.home,
    });
  }
  const db = openDatabase(config.dbPath);
  const audit = new AuditLog({ db, signer: RuntimeKey.load(config.keysDir) });
  return { audit, close: () => db.close() };
}

function printEntries(io: CliIo, entries: AuditEntry[]): void {
  for (const e of entries) {
    const who = [e.goal_id && `goal=${e.goal_id}`, e.agent_id && `agent=${e.agent_id}`]
      .filter(Boolean)
      .join(" ");
    io.out(`${String(e.seq).padStart(6)} ${e.time} ${e.kind.padEnd(18)} ${who} ${JSON.stringify(e.payload)}`);
  }
}

export const auditVerify: Command = {
  name: "audit verify",
  summary: "check the audit hash chain and its signed checkpoints",
  usage: "aido audit verify [--json]",
  example: "aido audit verify || echo 'audit log was tampered with'",
  async run(ctx) {
    const { values } = parseCommandArgs(this, ctx.argv, jsonOption, false);
    const { audit, close } = openAudit(ctx.config());
    try {
      const r = audit.verify();
      if (values.json) printJson(ctx.io, r);
      else if (r.ok) ctx.io.out(`ok: ${r.entries} entries, chain and checkpoints intact`);
      else
        ctx.io.err(`FAILED at seq ${r.first_bad_seq}: ${r.reason ?? "chain broken"} (${r.entries} entries)`);
      return r.ok ? 0 : 1;
    } finally {
      close();
    }
  },
};

export const auditTail: Command = {
  name: "audit tail",
  summary: "show the newest audit entries",
  usage: "aido audit tail [-n N] [--json]",
  example: "aido audit tail -n 50",
  async run(ctx) {
    const { values } = parseCommandArgs(
      this,
      ctx.argv,
      { ...jsonOption, n: { type: "string", short: "n" } },
      false,
    );
    const n = values.n === undefined ? 20 : Number(values.n);
    if (!Number.isInteger(n) || n <= 0)
      throw new UsageError(`-n must be a positive integer, got "${values.n}"`);
    const { audit, close } = openAudit(ctx.config());
    try {
      const entries = audit.tail(n);
      if (values.json) printJson(ctx.io, entries);
      else printEntries(ctx.io, entries);
      return 0;
    } finally {
      close();
    }
  },
};

export const auditQuery: Command = {
  name: "audit query",
  summary: "find audit entries by goal, agent or kind",
  usage: "aido audit query [--goal ID] [--agent ID] [--kind KIND] [--limit N] [--json]",
  example: "aido audit query --kind tool.denied --limit 20",
  async run(ctx) {
    const { values } = parseCommandArgs(
      this,
      ctx.argv,
      {
        ...jsonOption,
        goal: { type: "string" },
        agent: { type: "string" },
        kind: { type: "string" },
        limit: { type: "string" },
      },
      false,
    );
    if (values.kind !== undefined && !(AUDIT_KINDS as readonly string[]).includes(values.kind)) {
      throw new UsageError(`unknown kind "${values.kind}"; kinds: ${AUDIT_KINDS.join(", ")}`);
    }
    const limit = values.limit === undefined ? 100 : Number(values.limit);
    if (!Number.isInteger(limit) || limit <= 0) throw new UsageError(`--limit must be a positive integer`);
    const { audit, close } = openAudit(ctx.config());
    try {
      const entries = audit.query({
        ...(values.goal ? { goal_id: values.goal } : {}),
        ...(values.agent ? { agent_id: values.agent } : {}),
        ...(values.kind ? { kind: values.kind } : {}),
        limit,
      });
      if (values.json) printJson(ctx.io, entries);
      else printEntries(ctx.io, entries);
      return 0;
    } finally {
      close();
    }
  },
};
