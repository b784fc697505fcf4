// Red team: a fifo wedged the goal's file tools. The executor opened the file a file_read
// names without O_NONBLOCK; opening a fifo for reading blocks until a writer comes, and it
// blocked one of the four threads of Node's file-system pool. A child agent that made a
// few fifos in its own folder and file_read them took all four: from then on every file
// tool and script judgement of every agent of the goal waited out its 30 s, and the session
// was never restarted. Now every read opens without blocking and refuses what fstat says
// is not a regular file, before reading (file_read, file_read_many, file_edit, grep, the
// scripts an exec runs); and a session whose call gets no answer in time is taken as stuck:
// it is killed, its pending calls fail saying so, and the next call gets a new executor.

import { execFileSync } from "node:child_process";
import { chownSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AidoError } from "../../src/errors.js";
import { parseManifestValue } from "../../src/manifest/load.js";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import { expectOk, noSnapshots, useBench } from "./fixture.js";

const b = useBench(noSnapshots);

const text = (r: unknown) =>
  r instanceof AidoError ? `${r.code}: ${r.message}` : (r as { output: string }).output;

/** A parent that may do anything in /workspace, its notes, and its sandbox. */
async function parentAgent(
  name: string,
): Promise<{ id: string; goalId: string; ws: string; sandbox: DockerSandbox }> {
  const parent = b.agent(name, [
    "tool: *",
    "file_read: /workspace/**",
    "file_write: /workspace/**",
    "spawn_child: [*]",
    "exec: python3 *",
    "exec: sh *",
  ]);
  const sandbox = (await b.rt.backend.acquire(parent.goalId)) as DockerSandbox;
  await sandbox.ready();
  const ws = join(b.home.config.goalsDir, parent.goalId, "workspace");
  const { uid, gid } = statSync(ws);
  mkdirSync(join(ws, "scratch"));
  chownSync(join(ws, "scratch"), uid, gid);
  writeFileSync(join(ws, "notes.txt"), "the parent's notes\n");
  chownSync(join(ws, "notes.txt"), uid, gid);
  return { ...parent, ws, sandbox };
}

describe("a child that reads fifos it made in its own folder", () => {
  it("is refused at once by every file tool, and its parent's file_read goes on", async () => {
    const parent = await parentAgent("reader");
    const child = b.rt.spawner.spawn({
      goalId: parent.goalId,
      manifest: parseManifestValue(
        {
          name: "jammer",
          system_prompt: "x",
          capabilities: [
            "tool: exec",
            "tool: file_read",
            "tool: file_read_many",
            "tool: file_edit",
            "tool: grep",
            "file_read: /workspace/scratch/**",
            "file_write: /workspace/scratch/**",
            "exec: python3 *",
            "exec: sh *",
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
    const started = Date.now();
    const jams = await Promise.all([
      ...Array.from({ length: 6 }, (_, i) =>
        b.call(child.id, "file_read", { path: `/workspace/scratch/f${i}` }),
      ),
      b.call(child.id, "file_read_many", { paths: ["/workspace/scratch/f0", "/workspace/scratch/f1"] }),
      b.call(child.id, "file_edit", { path: "/workspace/scratch/f2", old_string: "a", new_string: "b" }),
      b.call(child.id, "exec", { command: "sh /workspace/scratch/f3", cwd: "/workspace/scratch" }),
    ]);
    for (const r of jams) expect(text(r)).toMatch(/is a fifo; only regular files can be read/);
    const grep = expectOk(await b.call(child.id, "grep", { pattern: "x", path: "/workspace/scratch" }));
    expect(grep.isError ?? false).toBe(false);
    expect(Date.now() - started).toBeLessThan(10_000);
    const read = await b.call(parent.id, "file_read", { path: "/workspace/notes.txt" });
    expect(text(read)).toBe("the parent's notes\n");
  }, 60_000);
});

describe("an executor that stops answering", () => {
  it("is replaced: the waiting calls fail saying so and the next call gets a new executor", async () => {
    const parent = await parentAgent("stuck");
    const old = parent.sandbox.executorPid;
    // Stop the executor from outside, as a wedged process would behave.
    execFileSync("docker", ["exec", parent.sandbox.containerId, "kill", "-STOP", String(old)]);
    const [exec, read] = await Promise.all([
      b.call(parent.id, "exec", { command: "python3 -c 'print(1)'", timeout_ms: 200 }),
      b.call(parent.id, "file_read", { path: "/workspace/notes.txt" }),
    ]);
    // Both ask realpath first (10 s for a few lstat calls): one is the call that timed out,
    // the other fails with it.
    const both = `${text(exec)}\n${text(read)}`;
    expect(both).toMatch(/realpath got no answer within 10000 ms; the executor is taken as stuck/);
    expect(both).toMatch(/did not answer a realpath call within 10000 ms and was taken as stuck/);
    expect([text(exec), text(read)].every((t) => t.startsWith("sandbox_failed: "))).toBe(true);
    expect(text(await b.call(parent.id, "file_read", { path: "/workspace/notes.txt" }))).toBe(
      "the parent's notes\n",
    );
    expect(parent.sandbox.executorPid).not.toBe(old);
    const ps = execFileSync("docker", ["exec", parent.sandbox.containerId, "ps", "-eo", "pid,args"], {
      encoding: "utf8",
    });
    expect(ps.split("\n").filter((l) => l.includes("executor.js"))).toHaveLength(1);
  }, 60_000);
});
