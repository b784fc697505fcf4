// Red team: metadata outside the grants. Landlock (ABI <= 7) guards opening, listing,
// creating, removing, renaming and truncating, not chmod, utimes, chown or extended
// attributes, and every file of the goal belongs to the one user commands run as. So a
// child agent that may only read public/ and write out/ could change the mode, times and
// extended attributes of any file of the goal. Extended attributes are closed now: the
// helper's seccomp filter refuses every call that writes them (set/remove, path, link, fd
// and *at forms) with ENOTSUP. Mode and times remain the documented boundary
// (docs/security.md, "What remains"): such a command can change the metadata of files it
// has no grant on — here it makes its parent's secret world-writable, dates it to 1970 and
// locks the parent's file tools out of the folder with mode 0 — but never their content.
// This test pins that boundary exactly, so it fails if it moves either way.

import { chmodSync, chownSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AidoError } from "../../src/errors.js";
import { parseManifestValue } from "../../src/manifest/load.js";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import { expectOk, noSnapshots, useBench } from "./fixture.js";

const b = useBench(noSnapshots);

const text = (r: unknown) =>
  r instanceof AidoError ? `${r.code}: ${r.message}` : (r as { output: string }).output;

describe("a child that may read public/ and write out/, against its parent's secret/", () => {
  it("cannot touch content or extended attributes there, but can change mode and times", async () => {
    const parent = b.agent("owner", [
      "tool: *",
      "file_read: /workspace/**",
      "file_write: /workspace/**",
      "exec: python3 *",
      "exec: chmod *",
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
    const py = [
      "import os",
      "k='/workspace/secret/k.txt'",
      "def t(name, f):",
      "    try: f(); print(name, 'ok')",
      "    except OSError as e: print(name, e.errno)",
      "t('read', lambda: open(k).read())",
      "t('write', lambda: open(k, 'a').write('x'))",
      "t('setxattr', lambda: os.setxattr(k, 'user.note', b'planted'))",
      "t('fsetxattr-out', lambda: os.setxattr('/workspace/out', 'user.note', b'planted'))",
      "t('removexattr', lambda: os.removexattr(k, 'user.note'))",
      "t('chown-other', lambda: os.chown(k, 0, 0))",
      "t('chmod', lambda: os.chmod(k, 0o666))",
      "t('utime', lambda: os.utime(k, (0, 0)))",
      "t('chmod-dir', lambda: os.chmod('/workspace/secret', 0))",
    ].join("\n");
    const r = expectOk(
      await b.call(child.id, "exec", { command: `python3 -c "${py}"`, cwd: "/workspace/public" }),
    );
    try {
      // What holds: content (Landlock) and extended attributes (seccomp: ENOTSUP, 95), and
      // ownership (no capability: EPERM, 1). Even on a folder it may write.
      expect(r.output).toContain(
        "read 13\nwrite 13\nsetxattr 95\nfsetxattr-out 95\nremovexattr 95\nchown-other 1\n",
      );
      expect(readFileSync(secret, "utf8")).toBe("parent's notes\n");
      // The boundary: mode and times of a file with no grant, and a folder's mode.
      expect(r.output).toContain("chmod ok\nutime ok\nchmod-dir ok\n");
      expect((statSync(secret).mode & 0o777).toString(8)).toBe("666");
      expect(statSync(secret).mtimeMs).toBe(0);
      expect(text(await b.call(parent.id, "file_read", { path: "/workspace/secret/k.txt" }))).toMatch(
        /permission denied/,
      );
      // ...which the parent can repair with its own grants.
      expectOk(await b.call(parent.id, "exec", { command: "chmod 755 /workspace/secret" }));
      expect(text(await b.call(parent.id, "file_read", { path: "/workspace/secret/k.txt" }))).toBe(
        "parent's notes\n",
      );
      const attrs = expectOk(
        await b.call(parent.id, "exec", {
          command: `python3 -c "import os; print(os.listxattr('/workspace/secret/k.txt'))"`,
        }),
      );
      expect(attrs.output).toContain("[]");
    } finally {
      chmodSync(join(ws, "secret"), 0o755);
    }
  });
});
