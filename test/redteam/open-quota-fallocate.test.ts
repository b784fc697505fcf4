// OPEN (red team): the file-size limit and the workspace quota against fallocate(2) with
// FALLOC_FL_KEEP_SIZE. An exec runs under RLIMIT_FSIZE = the room the goal has left, which
// stops write, truncate and a plain fallocate at the room — but KEEP_SIZE allocates blocks
// past the end of the file without growing its size, so no limit is consulted: one syscall
// reserves as much of the host's disk as it asks for, in milliseconds, before the quota's
// 500 ms poll can see it (and then only the measure notices; the call itself succeeds).
// Not fixed here: the fix belongs in the exec helper's seccomp filter (refuse fallocate with
// KEEP_SIZE, or fallocate altogether so libc falls back to writes), which is in the image.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MIB } from "../../src/sandbox/quota.js";
import { type Bench, openBench } from "./fixture.js";

let b: Bench;
beforeAll(async () => {
  b = await openBench({}, (c) => {
    c.sandbox.workspaceMaxMb = 64;
    c.policy.snapshotBeforeMutation = false;
  });
}, 120_000);
afterAll(async () => {
  await b?.close();
});

describe("exec against the workspace quota", () => {
  it("cannot reserve 1 GiB of the host's disk with fallocate(FALLOC_FL_KEEP_SIZE) under a 64 MiB cap", async () => {
    const a = b.agent("reserver", [
      "tool: exec",
      "file_read: /workspace/**",
      "file_write: /workspace/**",
      "exec: python3 *",
    ]);
    const py =
      "import os,ctypes; l=ctypes.CDLL(None, use_errno=True); " +
      "fd=os.open('/workspace/big', os.O_CREAT|os.O_WRONLY, 0o644); " +
      "print('fallocate', l.fallocate(fd, 1, ctypes.c_long(0), ctypes.c_long(1<<30)), ctypes.get_errno(), os.fstat(fd).st_size)";
    const r = await b.call(a.id, "exec", { command: `python3 -c "${py}"` });
    const usage = await b.rt.quota.usage(a.goalId, { fresh: true });
    try {
      // The call reported "fallocate 0 0 0": success, and a file of size 0 holding 1 GiB.
      expect(
        usage.bytes,
        `the goal holds ${(usage.bytes / MIB).toFixed(0)} MiB after ${JSON.stringify(r)}`,
      ).toBeLessThanOrEqual(64 * MIB);
    } finally {
      await b.call(a.id, "exec", { command: "python3 -c \"import os; os.remove('/workspace/big')\"" });
    }
  });
});
