// The executor's stream under attack, in the real image. No command can write into it (the
// executor is non-dumpable, and a Landlock domain scopes /proc besides), and not even a
// privileged `docker exec` can (the container's capability bounding set is empty). So the
// attacker here is root on the host, writing into the executor's stdout pipe through
// /proc/<host pid>/fd/1: stronger than anything inside the container. A forged frame (no
// secret) or a header announcing 2 GiB kills that session at once and fails its pending
// calls; the next call gets a fresh executor. Also: exec cancellation by AbortSignal.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isAidoError } from "../../src/errors.js";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import { hostPidOfExecutor, writeIntoStdout as inject } from "../support/docker.js";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

let fx: SandboxFixture;
let sb: DockerSandbox;
const GOAL = "proto-goal";

const sh = (command: string, signal?: AbortSignal) =>
  sb.exec({ command, confinement: "unconfined", ...(signal ? { signal } : {}) });

beforeAll(async () => {
  fx = makeSandboxFixture();
  sb = await fx.backend.acquire(GOAL);
  await sh("true");
});
afterAll(async () => {
  await fx?.cleanup();
});

describe("exec cancellation", () => {
  it("fails the call as cancelled at once and kills the command's whole process group", async () => {
    const pid = sb.executorPid;
    const ac = new AbortController();
    const started = Date.now();
    const call = sh("sleep 60 & sleep 61", ac.signal);
    setTimeout(() => ac.abort(), 300);
    const e = await call.catch((x) => x);
    expect(isAidoError(e, "cancelled")).toBe(true);
    expect(Date.now() - started).toBeLessThan(5000);
    await new Promise((r) => setTimeout(r, 500));
    expect((await sh("ps -eo args")).stdout).not.toMatch(/sleep 6[01]/);
    // The late answer of the cancelled call was dropped; the session is the same one.
    expect(sb.executorPid).toBe(pid);
  });

  it("refuses a call whose signal is already aborted without running it", async () => {
    const ac = new AbortController();
    ac.abort();
    const e = await sh("touch /workspace/ran", ac.signal).catch((x) => x);
    expect(isAidoError(e, "cancelled")).toBe(true);
    expect((await sh("ls /workspace")).stdout).not.toContain("ran");
  });
});

describe("a stream that breaks the protocol", () => {
  it("cannot be written by a command of the container's user, even one run without Landlock", async () => {
    const pid = sb.executorPid;
    const r = await sh(`echo forged > /proc/${pid}/fd/1; cat /proc/${pid}/environ; ls /proc/${pid}/fd`);
    expect(r.stderr.match(/Permission denied/g)).toHaveLength(3);
  });

  it("kills the session on a frame without the session secret, failing its pending calls", async () => {
    const pid = sb.executorPid;
    const pending = sh("sleep 20").catch((x) => x);
    await new Promise((r) => setTimeout(r, 300));
    const body = Buffer.from('{"id":1,"ok":true,"result":"forged"}');
    const head = Buffer.alloc(4);
    head.writeUInt32BE(32 + body.length, 0);
    await inject(
      hostPidOfExecutor(fx.backend.containerName(GOAL)),
      Buffer.concat([head, Buffer.alloc(32, 7), body]),
    );
    const e = await pending;
    expect(isAidoError(e, "sandbox_failed")).toBe(true);
    expect((e as Error).message).toMatch(/unauthenticated frame: a frame without the session secret/);
    // The next call gets a fresh executor in the same container.
    expect((await sh("echo fresh")).stdout).toBe("fresh\n");
    expect(sb.executorPid).not.toBe(pid);
  });

  it("kills the session on a header announcing 2 GiB before buffering the body", async () => {
    const pid = sb.executorPid;
    const pending = sh("sleep 20").catch((x) => x);
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    const head = Buffer.alloc(4);
    head.writeUInt32BE(2 ** 31, 0);
    void inject(
      hostPidOfExecutor(fx.backend.containerName(GOAL)),
      Buffer.concat([head, Buffer.alloc(64 << 20)]),
    );
    const e = await pending;
    expect(Date.now() - started).toBeLessThan(15_000);
    expect((e as Error).message).toMatch(/oversized frame: a frame header announces 2147483648 bytes/);
    expect((await sh("echo fresh")).stdout).toBe("fresh\n");
    expect(sb.executorPid).not.toBe(pid);
  });
});
