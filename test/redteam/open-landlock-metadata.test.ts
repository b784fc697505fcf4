// OPEN (red team): writes to metadata outside the grants. Landlock (ABI <= 7) guards
// opening, listing, creating, removing, renaming and truncating, but not chmod, utimes or
// setxattr; the seccomp filter only refuses set-id bits. All files belong to the one user the
// commands run as, so a child agent that may only read /workspace/public and write
// /workspace/out can, from python3, change the mode, times and extended attributes of any
// file or folder of the goal: here it locks its parent out of /workspace/secret (mode 0)
// and makes the parent's secret world-writable on the host. Not fixed here: there is no
// Landlock right for it yet; the fix needs the exec helper (for example a seccomp rule that
// refuses chmod/utimensat/setxattr outside the folders the domain may write, or running
// commands as a user that does not own the goal's files), which is in the image.

import { chmodSync, chownSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AidoError } from "../../src/errors.js";
import { parseManifestValue } from "../../src/manifest/load.js";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import { type Bench, openBench } from "./fixture.js";

let b: Bench;
beforeAll(async () => {
  b = await openBench({}, (c) => {
    c.policy.snapshotBeforeMutation = false;
  });
}, 180_000);
afterAll(async () => {
  await b?.close();
});

describe("a child that may read public/ and write out/", () => {
  it("cannot change the mode, times or attributes of its parent's files", async () => {
    const parent = b.agent("owner", [
      "tool: *",
      "file_read: /workspace/**",
      "file_write: /workspace/**",
      "exec: python3 *",
      "spawn_child: [*]",
    ]);
    await ((await b.rt.backend.acquire(parent.goalId)) as DockerSandbox).ready();
    const ws = join(b.home.config.goalsDir, parent.goalId, "workspace");
    const { uid, gid } = statSync(ws);
    for (const d of ["public", "out", "secret"]) {
      mkdirSync(join(ws, d));
      chownSync(join(ws, d), uid, gid);
    }
    const secret = join(ws, "secret", "k.txt");
    writeFileSync(secret, "parent's notes\n", { mode: 0o600 });
    chownSync(secret, uid, gid);
    const before = statSync(secret);
    const child = b.rt.spawner.spawn({
      goalId: parent.goalId,
      manifest: parseManifestValue(
        {
          name: "intern",
          system_prompt: "x",
          capabilities: [
            "tool: exec",
            "file_read: /workspace/public/**",
            "file_write: /workspace/out/**",
            "exec: python3 *",
          ],
        },
        "test",
      ),
      parent: b.rt.registry.require(parent.id),
    });
    const py =
      "import os; s='/workspace/secret'; " +
      "os.chmod(s+'/k.txt', 0o666); os.utime(s+'/k.txt', (0, 0)); os.setxattr(s+'/k.txt', 'user.note', b'planted'); " +
      "os.chmod(s, 0)";
    const r = await b.call(child.id, "exec", { command: `python3 -c "${py}"`, cwd: "/workspace/public" });
    const after = statSync(secret.replace("/k.txt", ""));
    try {
      const read = await b.call(parent.id, "file_read", { path: "/workspace/secret/k.txt" });
      expect(read instanceof AidoError ? read.message : read.output, JSON.stringify(r)).toBe(
        "parent's notes\n",
      );
      expect((after.mode & 0o777).toString(8)).toBe("755");
      const now = statSync(secret);
      expect((now.mode & 0o777).toString(8)).toBe("600");
      expect(now.mtimeMs).toBe(before.mtimeMs);
    } finally {
      chmodSync(join(ws, "secret"), 0o755);
    }
  });
});
