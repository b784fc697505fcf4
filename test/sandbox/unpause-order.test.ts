// A goal's call waiting on its frozen container (cluster/fence.ts: the node's fence paused
// it) goes on only once the engine has unpaused it. The backend let waiting acquires go as it
// sent the unpause, and a call that went on at once had its exec refused by an engine still
// holding the container paused ("is paused, unpause the container before exec"). The engine
// here is the real one, behind a socket that holds every unpause request a while (an engine
// slow to unfreeze: cgroup freezer under load).

import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

const HOLD_MS = 800;

/** The real engine behind a socket that forwards requests matching `slow` HOLD_MS late. */
async function slowEngine(slow: RegExp): Promise<{ docker: Docker; close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "aido-engine-"));
  const socket = join(dir, "docker.sock");
  const server = createServer((client) => {
    const upstream = connect("/var/run/docker.sock");
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
    upstream.pipe(client);
    // Chunks keep their order: a held request holds what follows it on its connection.
    let queue = Promise.resolve();
    client.on("data", (chunk: Buffer) => {
      const line = /^[A-Z]+ \S+/.exec(chunk.toString("latin1"))?.[0];
      const wait = line && slow.test(line) ? HOLD_MS : 0;
      queue = queue.then(async () => {
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        upstream.write(chunk);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return {
    docker: new Docker({ socketPath: socket }),
    close: async () => {
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let engine: Awaited<ReturnType<typeof slowEngine>>;
let fx: SandboxFixture;
beforeAll(async () => {
  engine = await slowEngine(/^POST \S+\/unpause$/);
  fx = makeSandboxFixture(() => {}, { docker: engine.docker });
});
afterAll(async () => {
  await fx?.cleanup();
  await engine?.close();
});

describe("a call waiting on its goal's frozen container", () => {
  it("runs once the engine has unpaused it, not as the unpause is sent", async () => {
    const goalId = "unpause-order";
    await fx.backend.acquire(goalId);
    await fx.backend.pause(goalId);
    const waiting = fx.backend
      .acquire(goalId)
      .then((sb) => sb.exec({ confinement: "unconfined", command: "echo went-on" }));
    await fx.backend.unpause(goalId);
    const r = await waiting;
    expect(r.stdout.trim()).toBe("went-on");
  }, 120_000);

  it("holds its waiting calls when it is frozen again while an unpause is under way", async () => {
    const goalId = "unpause-again";
    await fx.backend.acquire(goalId);
    await fx.backend.pause(goalId);
    let went = false;
    const waiting = fx.backend.acquire(goalId).then(() => {
      went = true;
    });
    const unpausing = fx.backend.unpause(goalId);
    await fx.backend.pause(goalId); // the fence falls again while the engine unfreezes
    await unpausing;
    await new Promise((r) => setTimeout(r, 200));
    expect(went).toBe(false);
    await fx.backend.unpause(goalId);
    await waiting;
    expect(went).toBe(true);
  }, 120_000);
});
