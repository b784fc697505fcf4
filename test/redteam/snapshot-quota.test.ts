// Red team (was open-snapshot-quota): snapshots carried a goal's writes to the host past
// sandbox.workspace_max_mb. Snapshots before mutation (on by default) are stored under
// goals/<id>/snapshots, outside the quota's folders; an agent rewriting one file with fresh
// bytes before every mutating call made every snapshot store a new copy, so the goal's
// folder on the host grew by the file's size per call, without bound (eight rounds of a
// 6 MiB file left ~48 MiB against a 16 MiB cap). Now the snapshot store has a cap of its
// own, sandbox.snapshots_max_mb: the oldest snapshots are pruned (audited as
// snapshot.pruned) and their packs compacted, so the goal's folder holds at most the
// workspace cap plus the snapshots cap; a snapshot that cannot fit at all is refused and
// the call it came before does not run. Every snapshot that remains restores.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { AidoError } from "../../src/errors.js";
import { MIB } from "../../src/sandbox/quota.js";
import { expectOk, useBench } from "./fixture.js";

const WORKSPACE_MB = 16;
const SNAPSHOTS_MB = 8;
const b = useBench((c) => {
  c.sandbox.workspaceMaxMb = WORKSPACE_MB;
  c.sandbox.snapshotsMaxMb = SNAPSHOTS_MB;
});
beforeAll(async () => {}, 120_000);

const grants = [
  "tool: *",
  "file_read: /workspace/**",
  "file_write: /workspace/**",
  "exec: head *",
  "exec: rm *",
];
const du = (dir: string) => Number(execFileSync("du", ["-sb", dir], { encoding: "utf8" }).split("\t")[0]);
const sha = (file: string) =>
  existsSync(file) ? createHash("sha256").update(readFileSync(file)).digest("hex") : "absent";

describe("a goal's snapshots on the host", () => {
  it("stay within sandbox.snapshots_max_mb while the model churns fresh bytes, and every one left restores", async () => {
    const a = b.agent("churner", grants);
    const folder = join(b.home.dir, "goals", a.goalId);
    const blob = join(folder, "workspace", "blob");
    // The state each snapshot saw: the one taken before call i holds the blob as it was then.
    const seen = new Map<string, string>();
    for (let i = 0; i < 8; i++) {
      const before = sha(blob);
      const r = expectOk(
        await b.call(a.id, "exec", { command: "head -c 6291456 /dev/urandom > /workspace/blob" }),
      );
      expect(r.isError, r.output).toBe(false);
      const [taken] = b.rt.audit.query({ agent_id: a.id, kind: "snapshot.created", limit: 1 }).slice(-1);
      seen.set((taken!.payload as { snapshot_id: string }).snapshot_id, before);
      expect(du(join(folder, "snapshots"))).toBeLessThanOrEqual(SNAPSHOTS_MB * MIB);
    }
    const usage = await b.rt.quota.usage(a.goalId, { fresh: true });
    expect(usage.bytes).toBeLessThanOrEqual(WORKSPACE_MB * MIB);
    const onHost = du(folder);
    expect(
      onHost,
      `the goal's folder holds ${(onHost / MIB).toFixed(1)} MiB against ${WORKSPACE_MB} + ${SNAPSHOTS_MB} MiB of caps`,
    ).toBeLessThanOrEqual((WORKSPACE_MB + SNAPSHOTS_MB) * MIB);
    const prunings = b.rt.audit.query({ agent_id: a.id, kind: "snapshot.pruned", limit: 100 });
    expect(prunings.length).toBeGreaterThan(0);
    for (const p of prunings) {
      expect(p.payload).toMatchObject({ limit_bytes: SNAPSHOTS_MB * MIB });
      expect((p.payload as { snapshot_ids: string[] }).snapshot_ids.length).toBeGreaterThan(0);
    }

    // snapshot_restore of every snapshot that remains, oldest first, as the model would.
    const listed = expectOk(await b.call(a.id, "snapshot_list", {})).data as { id: string }[];
    expect(listed.length).toBeGreaterThan(0);
    for (const { id } of listed) {
      const r = expectOk(await b.call(a.id, "snapshot_restore", { id }));
      expect(r.data, `restore of ${id}`).toMatchObject({ files_failed: [] });
      expect(sha(blob), `the blob as snapshot ${id} saw it`).toBe(seen.get(id));
    }
    const pruned = prunings.flatMap((p) => (p.payload as { snapshot_ids: string[] }).snapshot_ids);
    const gone = await b.call(a.id, "snapshot_restore", { id: pruned[0]! });
    expect(gone).toBeInstanceOf(AidoError);
    expect((gone as AidoError).code).toBe("not_found");
  }, 180_000);

  it("refuses a snapshot whose contents alone pass the cap: the call does not run, and says why", async () => {
    const a = b.agent("hoarder", grants);
    const ws = join(b.home.dir, "goals", a.goalId, "workspace");
    for (const f of ["one", "two"]) {
      expectOk(await b.call(a.id, "exec", { command: `head -c 5242880 /dev/urandom > /workspace/${f}` }));
    }
    // /workspace now holds 10 MiB of distinct contents: no snapshot of it fits in 8 MiB.
    const before = sha(join(ws, "two"));
    const r = await b.call(a.id, "exec", { command: "head -c 1024 /dev/urandom > /workspace/two" });
    expect(r).toBeInstanceOf(AidoError);
    expect((r as AidoError).code).toBe("quota_exceeded");
    expect((r as AidoError).message).toMatch(
      /^the snapshot before exec could not be taken, so the call did not run: snapshot refused: .*sandbox\.snapshots_max_mb \(8 MiB\)/,
    );
    expect(sha(join(ws, "two"))).toBe(before);
    const failed = b.rt.audit.query({ agent_id: a.id, kind: "tool.failed", limit: 1 })[0];
    expect(failed?.payload).toMatchObject({ tool: "exec", code: "quota_exceeded" });
    expect(du(join(b.home.dir, "goals", a.goalId, "snapshots"))).toBeLessThanOrEqual(SNAPSHOTS_MB * MIB);
  }, 120_000);
});
