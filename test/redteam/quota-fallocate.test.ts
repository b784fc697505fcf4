// Red team: the file-size limit and the workspace quota against fallocate(2). An exec runs
// under RLIMIT_FSIZE = the room the goal has left, which stops write, truncate and a plain
// fallocate at the room; but FALLOC_FL_KEEP_SIZE (and PUNCH_HOLE, which needs it) allocates
// blocks past the end of a file without growing its size, so no limit was consulted: one
// syscall reserved 1 GiB of the host's disk under a 64 MiB cap, faster than the quota's
// poll. Now the helper's seccomp filter refuses every fallocate mode but 0 with EOPNOTSUPP
// (callers fall back to writing), and mode 0 stays bounded by RLIMIT_FSIZE.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MIB } from "../../src/sandbox/quota.js";
import { type Bench, expectOk, openBench } from "./fixture.js";

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
  it("cannot reserve 1 GiB of the host's disk with fallocate under a 64 MiB cap, in any mode", async () => {
    const a = b.agent("reserver", [
      "tool: exec",
      "file_read: /workspace/**",
      "file_write: /workspace/**",
      "exec: python3 *",
    ]);
    const py = [
      "import os,ctypes",
      "l=ctypes.CDLL(None, use_errno=True)",
      "fd=os.open('/workspace/big', os.O_CREAT|os.O_WRONLY, 0o644)",
      "def fa(mode, n):",
      "    ctypes.set_errno(0); r=l.fallocate(fd, mode, ctypes.c_long(0), ctypes.c_long(n))",
      "    return '%d %d' % (r, ctypes.get_errno())",
      // KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE, ZERO_RANGE|KEEP_SIZE, then mode 0 past the room and within it.
      "print('keep', fa(1, 1<<30), 'punch', fa(3, 1<<30), 'zero', fa(0x11, 1<<30))",
      "print('plain-big', fa(0, 1<<30), 'plain-small', fa(0, 1<<20), os.fstat(fd).st_size)",
      "os.posix_fallocate(fd, 0, 2<<20); print('posix', os.fstat(fd).st_size)",
    ].join("\n");
    const r = expectOk(await b.call(a.id, "exec", { command: `python3 -c "${py}"` }));
    const usage = await b.rt.quota.usage(a.goalId, { fresh: true });
    try {
      expect(r.output).toContain("keep -1 95 punch -1 95 zero -1 95"); // EOPNOTSUPP
      expect(r.output).toContain("plain-big -1 27 plain-small 0 0 1048576"); // EFBIG at the room
      expect(r.output).toContain("posix 2097152");
      expect(usage.bytes, `the goal holds ${(usage.bytes / MIB).toFixed(0)} MiB`).toBeLessThanOrEqual(
        64 * MIB,
      );
    } finally {
      await b.call(a.id, "exec", { command: "python3 -c \"import os; os.remove('/workspace/big')\"" });
    }
  });
});
