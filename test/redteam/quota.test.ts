// An attacker filling the host's disk through exec, against sandbox.workspace_max_mb =
// 64: one `dd` of 1 GiB stops at the cap (RLIMIT_FSIZE = the room left less a block per
// 256 KiB for the filesystem's own blocks, set by the exec helper from
// ExecRequest.maxFileBytes), and a program writing many small files — each below the
// room — is cancelled while it runs (ExecRequest.signal) once a measure of the goal's
// folders is past the cap; deleting still works afterwards. Both rest on executor support
// that the exec helper provides (maxFileBytes -> RLIMIT_FSIZE, signal -> cancel).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AidoError } from "../../src/errors.js";
import { MIB, MIN_ENTRY_BYTES } from "../../src/sandbox/quota.js";
import { type Bench, expectOk, openBench } from "./fixture.js";

let b: Bench;
beforeAll(async () => {
  b = await openBench({}, (c) => {
    c.sandbox.workspaceMaxMb = 64;
  });
}, 120_000);
afterAll(async () => {
  await b?.close();
});

const grants = [
  "tool: exec",
  "file_read: /workspace/**",
  "file_write: /workspace/**",
  "exec: dd *",
  "exec: python3 *",
  "exec: rm *",
];

describe("exec against the workspace quota", () => {
  it("stops `dd if=/dev/zero of=/workspace/big bs=1M count=1024` at the cap", async () => {
    const a = b.agent("dd-filler", grants);
    const r = await b.call(a.id, "exec", { command: "dd if=/dev/zero of=/workspace/big bs=1M count=1024" });
    const usage = await b.rt.quota.usage(a.goalId, { fresh: true });
    expect(usage.bytes).toBeLessThanOrEqual(64 * MIB);
    const result = expectOk(r);
    expect(result.isError).toBe(true);
    expect(result.output).toContain("sandbox.workspace_max_mb");
    expectOk(await b.call(a.id, "exec", { command: "rm /workspace/big" }));
  }, 120_000);

  it("at the cap lets an exec grow no file at all, and delete", async () => {
    const a = b.agent("at-cap", grants);
    // Fill the goal to its cap: dd stops at the room left less a block per 256 KiB kept for
    // the filesystem's own blocks, so a second dd takes most of what the first left.
    await b.call(a.id, "exec", { command: "dd if=/dev/zero of=/workspace/fill bs=1M count=128" });
    await b.call(a.id, "exec", { command: "dd if=/dev/zero of=/workspace/fill2 bs=4K count=1024" });
    const full = await b.rt.quota.usage(a.goalId, { fresh: true });
    expect(full.bytes).toBeGreaterThanOrEqual(64 * MIB - 64 * 1024);
    const r = expectOk(
      await b.call(a.id, "exec", { command: "dd if=/dev/zero of=/workspace/more bs=1M count=8" }),
    );
    expect(r.isError).toBe(true);
    // dd could create its output file, empty (the quota charges an entry at least a block).
    const after = await b.rt.quota.usage(a.goalId, { fresh: true });
    expect(after.bytes).toBeLessThanOrEqual(64 * MIB + MIN_ENTRY_BYTES);
    expectOk(await b.call(a.id, "exec", { command: "rm /workspace/fill /workspace/fill2 /workspace/more" }));
    expect((await b.rt.quota.usage(a.goalId, { fresh: true })).bytes).toBeLessThan(MIB);
  }, 120_000);

  it("counts a goal holding a folder chain deeper than a host path can name as full, and lets it delete the chain", async () => {
    const a = b.agent("deep-filler", grants);
    // Each step relative to the last, as chdir allows at any depth; the files at the bottom
    // are past what a host path can name. On main the walk skipped that folder as gone: the
    // 200 MiB it meant to write went uncounted and the command ran to its end.
    const py =
      "import os, time\nfor _ in range(25):\n    os.mkdir('d' * 200)\n    os.chdir('d' * 200)\nfor i in range(200):\n    open('f%d' % i, 'wb').write(bytes(1048576))\n    time.sleep(0.05)\n";
    const r = await b.call(a.id, "exec", { command: `python3 -c "${py}"` });
    expect(r).toBeInstanceOf(AidoError);
    expect((r as AidoError).code).toBe("quota_exceeded");
    const usage = await b.rt.quota.usage(a.goalId, { fresh: true });
    expect(usage.unreadable).toMatch(/nested deeper than a path on the host can name; delete it/);
    expectOk(await b.call(a.id, "exec", { command: `rm -rf /workspace/${"d".repeat(200)}` }));
    const after = await b.rt.quota.usage(a.goalId, { fresh: true });
    expect(after.unreadable).toBeUndefined();
    expect(after.bytes).toBeLessThan(MIB);
  }, 120_000);

  it("cancels a program writing many small files once the goal passes the cap, and lets it delete after", async () => {
    const a = b.agent("many-filler", grants);
    const py =
      "import time\nfor i in range(400):\n    open('/workspace/f%d' % i, 'wb').write(bytes(1048576))\n    time.sleep(0.05)\n";
    // Real newlines inside the double-quoted argument; the program has no " $ or `.
    const r = await b.call(a.id, "exec", { command: `python3 -c "${py}"` });
    expect(r).toBeInstanceOf(AidoError);
    expect((r as AidoError).code).toBe("quota_exceeded");
    expect((r as AidoError).message).toMatch(/^exec stopped: .*sandbox\.workspace_max_mb \(64 MiB/);
    const usage = await b.rt.quota.usage(a.goalId, { fresh: true });
    // Stopped near the cap: what it wrote between two measures, not the 400 MiB it meant to.
    expect(usage.bytes).toBeLessThan(96 * MIB);
    expectOk(
      await b.call(a.id, "exec", {
        command: "python3 -c \"import glob,os\nfor f in glob.glob('/workspace/f*'): os.remove(f)\"",
      }),
    );
    expect((await b.rt.quota.usage(a.goalId, { fresh: true })).bytes).toBeLessThan(MIB);
  }, 120_000);
});
