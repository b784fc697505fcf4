// test/cluster/fixture.ts stopAll() stops what the test started even when a start failed: a
// node whose daemon never answered (its start threw after the process was spawned) was in no
// list stopAll() read, so the agentd process ran on after the test file (a reconnect loop on a
// Redis that was gone) and its home stayed in the temp folder. Real agentd child process, held
// before it opens its socket.

import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProviderServer, startProviderServer } from "../support/provider-server.js";
import { startNode, stopAll } from "./fixture.js";

const HOLD_START = join(import.meta.dirname, "..", "support", "hold-start.mjs");
let server: ProviderServer;
let dir: string;

beforeAll(async () => {
  server = await startProviderServer();
  dir = mkdtempSync(join(tmpdir(), "aido-fixture-cleanup-"));
});

afterAll(async () => {
  await stopAll();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("stopAll after a node's start failed", () => {
  it("stops the node's process and removes its home", async () => {
    const mark = join(dir, "held");
    // No Redis is needed: the daemon is held before it reads its config.
    await expect(
      startNode(server, "redis://127.0.0.1:1", "n-held", {
        preload: { module: HOLD_START, env: { AIDO_TEST_HOLD_START: mark } },
      }),
    ).rejects.toThrow(/condition not met in time/);
    const { pid, home } = JSON.parse(readFileSync(mark, "utf8")) as { pid: number; home: string };
    expect(running(pid)).toBe(true);
    expect(existsSync(home)).toBe(true);
    await stopAll();
    await expect.poll(() => running(pid), { timeout: 5_000 }).toBe(false);
    expect(existsSync(home)).toBe(false);
  }, 60_000);
});
