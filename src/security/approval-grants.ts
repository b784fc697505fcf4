// security/approval-grants.ts — Allow Always, as signed grants. A grant says: calls of
// this tool with this scope (approval-scope.ts), made by agents of this identity (a root's
// manifest name, a child's lineage: kernel/registry.ts; a model cannot choose a child's) in this
// project (approval-project.ts: the host folder the answer was given about), need no human
// until it expires. The runtime key signs (identity, project, tool, scope, expiry, the audit
// seq of the decision) and every use re-verifies the signature, the expiry, the audit
// entry that approved exactly this grant, and that no revocation was audited since; so a
// row edited in SQLite (widened, extended, moved to another identity or project,
// un-revoked) is not honoured. Grants are listed and revoked over the socket
// (approval.grants/revoke).

import type { Db } from "../db/database.js";
import { prepared } from "../db/database.js";
import { AidoError, ErrorCode } from "../errors.js";
import type { ProjectBinding } from "./approval-project.js";
import type { AuditLog, Signer } from "./audit.js";

/**
 * v3 binds the project too. v2 grants (identity, tool, scope: every project) and v1 grants
 * (tool + scope only, any agent) are never honoured again.
 */
const GRANT_FORMAT = "aido.approval.grant.v3";

/**
 * no_project: made before grants named their project (they covered the same container path
 * in every project); honoured nowhere, answer the next request again.
 */
export type GrantStatus = "active" | "expired" | "revoked" | "invalid" | "no_project";

/** A grant as `approval.grants` and `aido approvals grants` show it. */
export interface GrantRecord {
  id: string;
  identity: string;
  /** The project's key (approval-project.ts); null on grants made before projects were bound. */
  project_key: string | null;
  /** The project in words: "project /home/u/app"; null as project_key. */
  project: string | null;
  tool: string;
  scope_key: string;
  /** What the grant covers, in words: "file_write on /workspace/out.md". */
  target: string;
  approval_id: string | null;
  decided_by: string | null;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  revoked_by: string | null;
  /** active: honoured now; invalid: fails verification (edited, foreign key, old format); no_project: see GrantStatus. */
  status: GrantStatus;
}

export interface NewGrant {
  id: string;
  identity: string;
  project: ProjectBinding;
  tool: string;
  scopeKey: string;
  target: string;
  expiresAt: number;
  auditSeq: number;
  approvalId: string;
  by: string | null;
  now: number;
}

interface GrantRow {
  id: string;
  identity: string | null;
  project: string | null;
  project_shown: string | null;
  tool: string;
  scope_key: string;
  target: string | null;
  approval_id: string | null;
  decided_by: string | null;
  expires_at: number;
  audit_seq: number;
  key_id: string;
  sig: string;
  created_at: number;
  revoked_at: number | null;
  revoked_by: string | null;
}

/** How far the audit log has been searched for a grant's revocation (it only grows). */
interface RevocationScan {
  after: number;
  revoked: boolean;
}

export class ApprovalGrants {
  /**
   * Per grant: the audit seq up to which no revocation of it was found. The log is append-only,
   * so each check reads only the entries written since the last one (a grant checked on every
   * call would otherwise rescan everything written since it was minted).
   */
  private readonly scans = new Map<string, RevocationScan>();

  constructor(
    private readonly db: Db,
    private readonly audit: AuditLog,
    private readonly signer: Signer,
    private readonly now: () => number,
  ) {}

  /** Store a grant; call inside the transaction that audited the decision at `auditSeq`. */
  mint(g: NewGrant): void {
    const keyId = this.signer.keyId;
    const sig = this.signer
      .sign(grantMessage(g.id, g.identity, g.project.key, g.tool, g.scopeKey, g.expiresAt, g.auditSeq, keyId))
      .toString("base64");
    prepared(
      this.db,
      `INSERT INTO approval_grants (id, identity, project, project_shown, tool, scope_key, target, approval_id,
         decided_by, expires_at, audit_seq, key_id, sig, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      g.id,
      g.identity,
      g.project.key,
      g.project.shown,
      g.tool,
      g.scopeKey,
      g.target,
      g.approvalId,
      g.by,
      g.expiresAt,
      g.auditSeq,
      keyId,
      sig,
      g.now,
    );
  }

  /** The first grant honoured for (identity, project, tool, scope), or undefined. */
  find(identity: string, project: ProjectBinding, tool: string, scopeKey: string): GrantRecord | undefined {
    const rows = prepared(
      this.db,
      "SELECT * FROM approval_grants WHERE tool = ? AND scope_key = ? AND identity = ? AND project = ? AND expires_at > ? AND revoked_at IS NULL ORDER BY created_at",
    ).all(tool, scopeKey, identity, project.key, this.now()) as GrantRow[];
    for (const row of rows) {
      const rec = this.toRecord(row);
      if (rec.status === "active") return rec;
    }
    return undefined;
  }

  /** Every grant honoured now, or with `all` every grant ever minted, with its status. Oldest first. */
  list(all = false): GrantRecord[] {
    const rows = prepared(
      this.db,
      "SELECT * FROM approval_grants ORDER BY created_at, id",
    ).all() as GrantRow[];
    const recs = rows.map((r) => this.toRecord(r));
    return all ? recs : recs.filter((r) => r.status === "active");
  }

  /** Revoke a grant (audited); it is never honoured again. */
  revoke(id: string, by: string | null): GrantRecord {
    return this.db
      .transaction(() => {
        const row = prepared(this.db, "SELECT * FROM approval_grants WHERE id = ?").get(id) as
          | GrantRow
          | undefined;
        if (!row)
          throw new AidoError(ErrorCode.notFound, `no approval grant with id ${id}`, { grant_id: id });
        if (row.revoked_at !== null) {
          throw new AidoError(ErrorCode.invalidInput, `approval grant ${id} is already revoked`, {
            grant_id: id,
          });
        }
        const now = this.now();
        this.audit.record("approval.grant_revoked", {
          grant_id: id,
          identity: row.identity ?? "",
          ...(row.project !== null ? { project: row.project } : {}),
          tool: row.tool,
          scope_key: row.scope_key,
          ...(by !== null ? { by } : {}),
        });
        prepared(this.db, "UPDATE approval_grants SET revoked_at = ?, revoked_by = ? WHERE id = ?").run(
          now,
          by,
          id,
        );
        return this.toRecord({ ...row, revoked_at: now, revoked_by: by });
      })
      .immediate();
  }

  private toRecord(row: GrantRow): GrantRecord {
    return {
      id: row.id,
      identity: row.identity ?? "",
      project_key: row.project,
      project: row.project === null ? null : (row.project_shown ?? row.project),
      tool: row.tool,
      scope_key: row.scope_key,
      target: row.target ?? `${row.tool} (${row.scope_key})`,
      approval_id: row.approval_id,
      decided_by: row.decided_by,
      created_at: row.created_at,
      expires_at: row.expires_at,
      revoked_at: row.revoked_at,
      revoked_by: row.revoked_by,
      status: this.statusOf(row),
    };
  }

  private statusOf(g: GrantRow): GrantStatus {
    if (g.revoked_at !== null) return "revoked";
    if (g.identity === null) return "invalid";
    if (g.project === null) return "no_project";
    if (!this.verifies({ ...g, identity: g.identity, project: g.project })) return "invalid";
    // Revoked in the audit log although the row says otherwise: the row was edited.
    if (this.revokedInAudit(g)) return "invalid";
    return g.expires_at <= this.now() ? "expired" : "active";
  }

  private revokedInAudit(g: GrantRow): boolean {
    let scan = this.scans.get(g.id);
    if (!scan || scan.after < g.audit_seq) {
      scan = { after: g.audit_seq, revoked: false };
      this.scans.set(g.id, scan);
    }
    if (scan.revoked) return true;
    const head = this.audit.tail(1)[0]?.seq ?? 0;
    for (const e of this.audit.since(scan.after, "approval.grant_revoked")) {
      if (e.payload.grant_id === g.id) scan.revoked = true;
      scan.after = Math.max(scan.after, e.seq);
    }
    scan.after = Math.max(scan.after, head);
    return scan.revoked;
  }

  /** Signed by the runtime key, and the audit entry it cites approved exactly it. */
  private verifies(g: GrantRow & { identity: string; project: string }): boolean {
    if (g.key_id !== this.signer.keyId) return false;
    let signed = false;
    try {
      signed = this.signer.verify(
        grantMessage(g.id, g.identity, g.project, g.tool, g.scope_key, g.expires_at, g.audit_seq, g.key_id),
        Buffer.from(g.sig, "base64"),
      );
    } catch {
      signed = false;
    }
    if (!signed) return false;
    const entry = this.audit.entry(g.audit_seq);
    if (entry?.kind !== "approval.decided") return false;
    const p = entry.payload as {
      grant_id?: string;
      decision?: string;
      tool?: string;
      scope_key?: string;
      identity?: string;
      project?: string;
    };
    return (
      p.grant_id === g.id &&
      p.decision === "allow_always" &&
      p.tool === g.tool &&
      p.scope_key === g.scope_key &&
      p.identity === g.identity &&
      p.project === g.project
    );
  }
}

function grantMessage(
  id: string,
  identity: string,
  project: string,
  tool: string,
  scopeKey: string,
  expiresAt: number,
  auditSeq: number,
  keyId: string,
): Buffer {
  return Buffer.from(
    JSON.stringify([GRANT_FORMAT, id, identity, project, tool, scopeKey, expiresAt, auditSeq, keyId]),
    "utf8",
  );
}
