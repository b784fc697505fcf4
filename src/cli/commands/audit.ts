// cli/commands/audit.ts — `aido audit verify | anchor | tail | query`, read straight from
// $AIDO_HOME/aido.db and $AIDO_HOME/audit.head with the runtime's key: verifying must not
// depend on the daemon (the daemon is one of the things an auditor may not trust). These
// commands only read: the head file is the running runtime's to write. The one exception is
// `aido audit verify --cluster`, which asks the daemon: in cluster mode each node checks its
// own chain against the signed head it published to Redis (cluster/audit-heads.ts).

import { existsSync } from "node:fs";
import type { Config } from "../../config.js";
import { openDatabase } from "../../db/database.js";
import { AidoError, ErrorCode } from "../../errors.js";
import { AuditLog, type AuditVerifyResult } from "../../security/audit.js";
import { AUDIT_KINDS, type AuditEntry } from "../../security/audit-events.js";
import { type AuditAnchor, formatAnchor, parseAnchor, signHead } from "../../security/audit-head.js";
import { RuntimeKey } from "../../security/keys.js";
import { inert } from "../../security/terminal-text.js";
import { type CliIo, type Command, jsonOption, parseCommandArgs, printJson, UsageError } from "../command.js";
import { withClient } from "./daemon-client.js";
import { commandSpec } from "./index.js";

function openAudit(config: Config): { audit: AuditLog; close(): void } {
  if (!existsSync(config.dbPath)) {
    throw new AidoError(ErrorCode.notFound, `no Aido state at ${config.home} (nothing has run yet)`, {
      home: config.home,
    });
  }
  const db = openDatabase(config.dbPath);
  const audit = new AuditLog({ db, signer: RuntimeKey.load(config.keysDir), headFile: config.auditHeadPath });
  return { audit, close: () => db.close() };
}

function printEntries(io: CliIo, entries: AuditEntry[]): void {
  for (const e of entries) {
    const who = [e.goal_id && `goal=${e.goal_id}`, e.agent_id && `agent=${e.agent_id}`]
      .filter(Boolean)
      .join(" ");
    // JSON escapes C0 controls but not DEL, C1 or bidi characters, which payloads a model
    // filled (tool inputs, reasons) may hold.
    io.out(
      `${String(e.seq).padStart(6)} ${e.time} ${e.kind.padEnd(18)} ${who} ${inert(JSON.stringify(e.payload))}`,
    );
  }
}

function reportFailure(io: CliIo, r: AuditVerifyResult): void {
  io.err(`FAILED at seq ${r.first_bad_seq}: ${r.reason ?? "chain broken"} (${r.entries} entries)`);
}

export const auditVerify: Command = {
  ...commandSpec("audit verify"),
  async run(ctx) {
    const { values } = parseCommandArgs(
      this,
      ctx.argv,
      { ...jsonOption, anchor: { type: "string" }, cluster: { type: "boolean" } },
      false,
    );
    if (values.cluster) {
      if (values.anchor !== undefined)
        throw new UsageError("--cluster checks each node against its own head: no --anchor");
      return verifyCluster(ctx, values.json === true);
    }
    let anchor: AuditAnchor | undefined;
    if (values.anchor !== undefined) {
      try {
        anchor = parseAnchor(values.anchor);
      } catch (e) {
        throw new UsageError(`--anchor: ${(e as Error).message}`);
      }
    }
    const { audit, close } = openAudit(await ctx.config());
    try {
      const r = audit.verify(anchor ? { anchor } : {});
      if (values.json) printJson(ctx.io, r);
      else if (r.ok) {
        const head = r.head_seq === undefined ? "" : `, signed head at seq ${r.head_seq}`;
        const anchored = anchor ? `, anchor at seq ${anchor.seq}` : "";
        ctx.io.out(`ok: ${r.entries} entries, chain and checkpoints intact${head}${anchored}`);
      } else reportFailure(ctx.io, r);
      return r.ok ? 0 : 1;
    } finally {
      close();
    }
  },
};

/** `aido audit verify --cluster`: one line per node; exit 1 when any node's check failed. */
async function verifyCluster(ctx: Parameters<Command["run"]>[0], json: boolean): Promise<number> {
  const r = await withClient(ctx, (c) => c.call("cluster.audit_verify", {}, { timeoutMs: 180_000 }));
  if (json) printJson(ctx.io, r);
  else
    for (const n of r.nodes) {
      const at = n.published_seq === undefined ? "" : ` against its head at seq ${n.published_seq}`;
      if (n.ok) ctx.io.out(`ok: node ${inert(n.node_id)}: ${n.entries} entries${at}`);
      else
        ctx.io.err(
          `FAILED: node ${inert(n.node_id)}${at}${n.first_bad_seq !== undefined ? ` at seq ${n.first_bad_seq}` : ""}: ${inert(n.reason ?? "chain broken")}`,
        );
    }
  return r.ok ? 0 : 1;
}

export const auditAnchor: Command = {
  ...commandSpec("audit anchor"),
  async run(ctx) {
    const { values } = parseCommandArgs(this, ctx.argv, jsonOption, false);
    const { audit, close } = openAudit(await ctx.config());
    try {
      const { result, head } = audit.verifyWithHead();
      if (!result.ok) {
        reportFailure(ctx.io, result);
        return 1;
      }
      if (!head) {
        ctx.io.err(
          `no signed head yet at ${(await ctx.config()).auditHeadPath}: the runtime writes it once it has written to this log`,
        );
        return 1;
      }
      // The file's head is MACed; the one shown is signed, for anyone with the public key.
      if (values.json) {
        const key = RuntimeKey.load((await ctx.config()).keysDir);
        printJson(ctx.io, signHead(key, head.seq, head.hash, head.time));
      } else ctx.io.out(formatAnchor(head));
      return 0;
    } finally {
      close();
    }
  },
};

export const auditTail: Command = {
  ...commandSpec("audit tail"),
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
    const { audit, close } = openAudit(await ctx.config());
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
  ...commandSpec("audit query"),
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
    const { audit, close } = openAudit(await ctx.config());
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
