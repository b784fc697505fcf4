// OPEN (red team): a fifo wedges the goal's file tools. The executor opens the file a
// file_read names without O_NONBLOCK; opening a fifo for reading blocks until a writer comes,
// and it blocks one of the four threads of Node's file-system pool. A child agent that makes
// a few fifos in its own folder and file_reads them takes all four: from then on every
// file_read, file_read_many, file_edit and script judgement of every agent of the goal waits
// out its 30 s and fails ("got no answer"), and the session is never restarted, because a
// call that times out leaves the executor in place. (Snapshots already open with
// O_NONBLOCK for this reason: src/sandbox/snapshot-fs.ts.) Not fixed here: the open is in
// the executor, which is in the image (open with O_NONBLOCK and refuse what fstat says is
// not a regular file; and/or restart a session whose call got no answer).

import { chownSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AidoError } from "../../src/errors.js";
import { parseManifestValue } from "../../src/manifest/load.js";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import { type Bench, expectOk, openBench } from "./fixture.js";

let b: Bench;
beforeAll(async () => {
  b = await openBench({}, (c) => {
    c.policy.snapshotBeforeMutation = false;
  });
}, 180_000);
afterAll(async () => {
  await b?.close();
});

describe("a child that file_reads fifos it made in its own folder", () => {
  it("does not stop its parent's file_read", async () => {
    const parent = b.agent("reader", [
      "tool: *",
      "file_read: /workspace/**",
      "file_write: /workspace/**",
      "spawn_child: [*]",
      "exec: python3 *",
    ]);
    await ((await b.rt.backend.acquire(parent.goalId)) as DockerSandbox).ready();
    const ws = join(b.home.config.goalsDir, parent.goalId, "workspace");
    const { uid, gid } = statSync(ws);
    mkdirSync(join(ws, "scratch"));
    chownSync(join(ws, "scratch"), uid, gid);
    writeFileSync(join(ws, "notes.txt"), "the parent's notes\n");
    chownSync(join(ws, "notes.txt"), uid, gid);
    const child = b.rt.spawner.spawn({
      goalId: parent.goalId,
      manifest: parseManifestValue(
        {
          name: "jammer",
          system_prompt: "x",
          capabilities: [
            "tool: exec",
            "tool: file_read",
            "file_read: /workspace/scratch/**",
            "file_write: /workspace/scratch/**",
            "exec: python3 *",
          ],
        },
        "test",
      ),
      parent: b.rt.registry.require(parent.id),
    });
    expectOk(
      await b.call(child.id, "exec", {
        command: "python3 -c \"import os; [os.mkfifo('/workspace/scratch/f%d' % i) for i in range(6)]\"",
        cwd: "/workspace/scratch",
      }),
    );
    const jams = Array.from({ length: 6 }, (_, i) =>
      b.call(child.id, "file_read", { path: `/workspace/scratch/f${i}` }),
    );
    await new Promise((r) => setTimeout(r, 500));
    const read = await b.call(parent.id, "file_read", { path: "/workspace/notes.txt" });
    expect(read instanceof AidoError ? `${read.code}: ${read.message}` : read.output).toBe(
      "the parent's notes\n",
    );
    await Promise.all(jams);
  }, 120_000);
});
