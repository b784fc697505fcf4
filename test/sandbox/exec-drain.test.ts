// The executor never loses output a command wrote before it exited. On a loaded machine
// (30 parallel execs, load ~10 on two cores) one call once answered exit 0 with an empty
// stdout for a command that always prints: the executor had reaped the command (libuv reaps
// every child on any SIGCHLD, here another call's) before its poll read the pipe, then
// stalled past the pipe grace, whose timer destroyed the pipes with the output unread.
// The executor's exec runs here in a goal's container (exec-drain-probe.ts, this
// checkout's source bundled, started through the sandbox's exec) with that stall made
// deterministic; see the probe's header.

import { chmodSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import { EXECUTOR_BUNDLE_OPTIONS } from "../../src/sandbox/image.js";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

const ROUNDS = 5;

let fx: SandboxFixture;
let sb: DockerSandbox;

beforeAll(async () => {
  fx = makeSandboxFixture();
  sb = await fx.backend.acquire("drain-goal");
  const esbuild = createRequire(import.meta.url)("esbuild") as typeof import("esbuild");
  const bundle = esbuild.buildSync({
    ...EXECUTOR_BUNDLE_OPTIONS,
    entryPoints: [join(import.meta.dirname, "exec-drain-probe.ts")],
    write: false,
  });
  const probe = join(fx.config.goalsDir, "drain-goal", "workspace", "probe.cjs");
  writeFileSync(probe, bundle.outputFiles[0]?.text ?? "");
  chmodSync(probe, 0o644);
});
afterAll(async () => {
  await fx?.cleanup();
});

describe("exec output", () => {
  it("keeps what a command printed when the executor reaps it before reading its pipe, then stalls past the grace", async () => {
    const r = await sb.exec({
      confinement: "unconfined",
      argv: ["node", "/workspace/probe.cjs", String(ROUNDS)],
      timeoutMs: 120_000,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const probe = JSON.parse(r.stdout) as { exitedUnread: number; stdouts: string[] };
    // The stall did hold the loop until the command had exited, every round.
    expect(probe.exitedUnread).toBe(ROUNDS);
    expect(probe.stdouts).toEqual(Array(ROUNDS).fill("judged-text\n"));
  }, 180_000);

  it("still ends a call whose pipes a process that left its group floods without end, within the cap", async () => {
    const r = await sb.exec({
      confinement: "unconfined",
      argv: ["node", "/workspace/probe.cjs", "flood"],
      timeoutMs: 60_000,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const probe = JSON.parse(r.stdout) as { durationMs: number; truncated: boolean; head: string };
    expect(probe).toMatchObject({ truncated: true, head: "started\n" });
    // The grace (250 ms) and at most 1 s of draining, and room for a loaded machine.
    expect(probe.durationMs).toBeLessThan(5_000);
  }, 120_000);
});
