// Red team: grep read a file through a folder that was moved out from under it. grep opens
// each folder anchored (O_NOFOLLOW from its judged root), lists it, then judges every entry
// by the path it had when the folder was opened and reads it through the folder's fd. An
// agent that may read and write /workspace/pub and only write /workspace/inbox (where others
// drop what it must not read) cannot move inbox/k.txt into pub (Landlock refuses: EXDEV).
// But it can move the folder pub/a, which grep is walking, into inbox (that only loses
// rights), then move inbox/k.txt into it: grep, still holding the folder, judged the file as
// /workspace/pub/a/0.txt and returned the secret. The swap is timed by the first decoy grep
// reads (its access time changes; stat is not guarded). Now every read through a folder is
// kept only if the folder is still at its judged path afterwards (readlink of
// /proc/self/fd/N): the moved folder reads as /workspace/inbox/a, and grep skips the file.
// (file_read and file_edit check the same way and fail with path_changed.)

import { chownSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AidoError } from "../../src/errors.js";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import { expectOk, noSnapshots, useBench } from "./fixture.js";

const SECRET = "DROPPED-FOR-OTHERS-5150";
const b = useBench(noSnapshots);

const py = (lines: string[]) => ({ command: `python3 -c "${lines.join("\n")}"`, cwd: "/workspace/pub" });

describe("grep over a folder the agent moves into a write-only folder while grep walks it", () => {
  it("does not return what the write-only folder holds", async () => {
    const a = b.agent("mover", [
      "tool: exec",
      "tool: grep",
      "file_read: /workspace/pub/**",
      "file_write: /workspace/pub/**",
      "file_write: /workspace/inbox/**",
      "exec: python3 *",
    ]);
    await ((await b.rt.backend.acquire(a.goalId)) as DockerSandbox).ready();
    const ws = join(b.home.config.goalsDir, a.goalId, "workspace");
    const { uid, gid } = statSync(ws);
    for (const d of ["pub", "inbox"]) {
      mkdirSync(join(ws, d));
      chownSync(join(ws, d), uid, gid);
    }
    writeFileSync(join(ws, "inbox", "k.txt"), `${SECRET}\n`);
    chownSync(join(ws, "inbox", "k.txt"), uid, gid);
    // The direct move is refused by the domain.
    const direct = expectOk(
      await b.call(
        a.id,
        "exec",
        py(["import os", "os.rename('/workspace/inbox/k.txt', '/workspace/pub/k.txt')"]),
      ),
    );
    expect(direct.output).toContain("Invalid cross-device link");
    // A folder of decoys for grep to walk; 0.txt comes last (names are read in reverse order).
    expectOk(
      await b.call(
        a.id,
        "exec",
        py([
          "import os",
          "os.mkdir('/workspace/pub/a')",
          "for i in range(20000): open('/workspace/pub/a/d%05d' % i, 'w').write('decoy')",
          "open('/workspace/pub/a/0.txt', 'w').write('decoy')",
        ]),
      ),
    );
    // Once grep has read its first decoy, move the folder away and the secret into it.
    const swap = b.call(
      a.id,
      "exec",
      py([
        "import os,time",
        "first='/workspace/pub/a/d19999'",
        "end=time.time()+20",
        "while time.time()<end and os.stat(first).st_atime_ns<=os.stat(first).st_mtime_ns: time.sleep(0.001)",
        "os.rename('/workspace/pub/a', '/workspace/inbox/a')",
        "os.rename('/workspace/inbox/k.txt', '/workspace/inbox/a/0.txt')",
        "print('swapped')",
      ]),
    );
    await new Promise((r) => setTimeout(r, 300));
    const g = await b.call(a.id, "grep", { pattern: "DROPPED|decoy-none", path: "/workspace/pub/a" });
    const swapped = expectOk(await swap);
    // The race happened: the folder moved while grep walked it, and the secret went in.
    expect(swapped.output).toContain("swapped");
    expect(g instanceof AidoError ? g.message : g.output, JSON.stringify(swapped)).not.toContain(SECRET);
  }, 90_000);
});
