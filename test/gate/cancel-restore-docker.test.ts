// A snapshot_restore whose caller leaves while the gate takes the snapshot before it (a mutation:
// the whole of /workspace and /output copied first, which takes a while on a full workspace).
// tool.invoked is written by then, so the run is the tool's (gate/invoke.ts); a file write gives
// up until it is sent, an exec is killed. snapshot_restore looked at no cancel at all: it went on
// and rewrote the workspace after its caller had gone. It now gives up before it changes
// anything (tool.failed, cancelled). Real Docker, SQLite and snapshot store.

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AidoError, ErrorCode } from "../../src/errors.js";
import { type Bench, expectOk, openBench } from "../redteam/fixture.js";

let b: Bench;
beforeAll(async () => {
  b = await openBench();
}, 180_000);
afterAll(async () => {
  await b?.close();
});

const BROAD = [
  "tool: *",
  "file_read: /workspace/**",
  "file_write: /workspace/**",
  "file_read: /output/**",
  "file_write: /output/**",
];

describe("a snapshot_restore whose caller leaves during the snapshot before it", () => {
  it("changes nothing and ends as tool.failed, cancelled", async () => {
    const a = b.agent("restorer", BROAD);
    const { ws, plant } = await b.workspace(a.goalId);
    plant("a.txt", "v1");
    const snap = expectOk(await b.call(a.id, "snapshot_create", {}));
    const id = (snap.data as { id: string }).id;
    expectOk(await b.call(a.id, "file_write", { path: "/workspace/a.txt", content: "v2" }));
    // A full workspace: the snapshot before the restore takes a while to copy it.
    for (let i = 0; i < 48; i++) plant(`big-${i}.bin`, randomBytes(1024 * 1024).toString("base64"));

    const client = new AbortController();
    const seqOf = (kind: string) =>
      b.rt.audit.query({ agent_id: a.id, kind }).reduce((m, e) => Math.max(m, e.seq), 0);
    const invokedBefore = seqOf("tool.invoked");
    const running = b.rt.invokeTool(a.id, "snapshot_restore", { id }, client.signal).then(
      (r) => r,
      (e: unknown) => e,
    );
    // The client leaves as soon as the restore is audited as invoked (the snapshot is being taken).
    let abortedAfter = 0;
    while (seqOf("tool.invoked") === invokedBefore) await new Promise((r) => setImmediate(r));
    abortedAfter = Math.max(seqOf("snapshot.created"), seqOf("tool.invoked"));
    client.abort(new AidoError(ErrorCode.cancelled, "the tool.invoke client left", {}));
    const r = await running;

    // The abort landed while the snapshot was being taken (else this test proves nothing).
    const taken = b.rt.audit.query({ agent_id: a.id, kind: "snapshot.created" });
    expect(taken.some((e) => e.seq > abortedAfter)).toBe(true);
    expect(r).toBeInstanceOf(AidoError);
    expect((r as AidoError).code).toBe(ErrorCode.cancelled);
    expect(readFileSync(join(ws, "a.txt"), "utf8")).toBe("v2");
    expect(b.rt.audit.query({ agent_id: a.id, kind: "snapshot.restored" })).toHaveLength(0);
    const [failed] = b.rt.audit.query({ agent_id: a.id, kind: "tool.failed", limit: 1 });
    expect(failed?.payload).toMatchObject({ code: ErrorCode.cancelled });
  }, 120_000);
});
