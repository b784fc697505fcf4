// The host side of sandbox.workspace_max_mb, without a container: how a goal's folders are
// measured (lstat, links not followed, at least a block per entry, a bounded walk) and what
// quotaSandbox hands the executor for an exec — maxFileBytes = the room left in whole
// blocks less a block per 256 KiB for the file's map (0 at the cap) and a signal it aborts
// when a measure taken while the command runs is past the cap.
// The executor here is a stand-in that writes into the goal's host folder the way a
// command in the container would; the real one (RLIMIT_FSIZE, the cancel) is exercised in
// test/redteam/quota.test.ts.

import { spawnSync } from "node:child_process";
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isAidoError } from "../../src/errors.js";
import { fileRoom, MIB, MIN_ENTRY_BYTES, WorkspaceQuota } from "../../src/sandbox/quota.js";
import { quotaSandbox } from "../../src/sandbox/quota-sandbox.js";
import type { ExecRequest, ExecResult, SandboxHandle } from "../../src/sandbox/types.js";

let goalsDir: string;
const GOAL = "g_quota";
const ws = (...p: string[]) => join(goalsDir, GOAL, "workspace", ...p);

beforeEach(() => {
  goalsDir = mkdtempSync(join(tmpdir(), "aido-quota-"));
  mkdirSync(ws(), { recursive: true });
  mkdirSync(join(goalsDir, GOAL, "output"), { recursive: true });
});
afterEach(() => {
  // rm walks relative to each folder it opens, so a tree deeper than a path can name goes too.
  spawnSync("rm", ["-rf", goalsDir]);
  rmSync(goalsDir, { recursive: true, force: true });
});

/**
 * A chain of folders under the goal's workspace deeper than a host path can name (PATH_MAX),
 * made the way a command in the container can: each step relative to the last; `then` runs
 * at its bottom.
 */
function deepChain(then = "true"): void {
  const py = `import os, subprocess\nfor _ in range(25):\n    os.mkdir("d" * 200)\n    os.chdir("d" * 200)\nsubprocess.run(${JSON.stringify(then)}, shell=True, check=True)\n`;
  const r = spawnSync("python3", ["-c", py], { cwd: ws(), encoding: "utf8" });
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
}

const done: ExecResult = {
  exitCode: 0,
  signal: null,
  stdout: "",
  stderr: "",
  timedOut: false,
  truncated: false,
  durationMs: 1,
};

/** A handle whose exec is `run`; every other operation is out of this test's scope. */
function execOnly(run: (req: ExecRequest) => Promise<ExecResult>): SandboxHandle {
  const no = () => Promise.reject(new Error("not used here"));
  return {
    goalId: GOAL,
    exec: run,
    realpath: no,
    readFile: no,
    writeFile: no,
    editFile: no,
    list: no,
    stat: no,
    grep: no,
  };
}

const fill: ExecRequest = { confinement: "unconfined", command: "fill" };

/** Block numbers from `first` to below `blocks`, `step` apart. */
function stride(blocks: number, step: number, first: number): number[] {
  const out: number[] = [];
  for (let b = first; b < blocks; b += step) out.push(b);
  return out;
}

/**
 * A quotaSandbox whose exec writes one file of exactly maxFileBytes, a block at a time in
 * the order `order` gives (each synced, so each is allocated where it lands), as a command
 * choosing its write order in the container could.
 */
function sandboxFilling(q: WorkspaceQuota, order: (blocks: number) => number[]) {
  return quotaSandbox(
    execOnly(async (req) => {
      const size = req.maxFileBytes ?? 0;
      const fd = openSync(ws("frag"), "w");
      const block = Buffer.alloc(MIN_ENTRY_BYTES, 1);
      for (const b of order(Math.ceil(size / MIN_ENTRY_BYTES))) {
        const at = b * MIN_ENTRY_BYTES;
        writeSync(fd, block, 0, Math.min(MIN_ENTRY_BYTES, size - at), at);
        fsyncSync(fd);
      }
      closeSync(fd);
      return done;
    }),
    q,
  );
}

/** Resolves when `signal` aborts (a killed command), or after `ms` (it ran to the end). */
const runUntilAborted = (signal: AbortSignal | undefined, ms: number) =>
  new Promise<ExecResult>((resolve) => {
    const timer = setTimeout(() => resolve(done), ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve({ ...done, exitCode: null, signal: "SIGKILL" });
    });
  });

describe("measuring a goal", () => {
  it("charges each entry at least a block, never follows a link, and stops at twice the cap", async () => {
    const q = new WorkspaceQuota({ goalsDir, maxMb: 1 });
    for (let i = 0; i < 10; i++) writeFileSync(ws(`empty${i}`), "");
    const hostBig = join(goalsDir, "host-big");
    writeFileSync(hostBig, Buffer.alloc(3 * MIB));
    symlinkSync(hostBig, ws("link"));
    expect((await q.usage(GOAL)).bytes).toBe(11 * MIN_ENTRY_BYTES);
    truncateSync(ws("empty0"), 900 * 1024); // sparse: charged its size
    const u = await q.usage(GOAL, { fresh: true });
    expect(u.bytes).toBe(10 * MIN_ENTRY_BYTES + 900 * 1024);
    expect(await q.room(GOAL)).toBe(MIB - u.bytes);
    for (let i = 0; i < 3; i++) writeFileSync(ws(`big${i}`), Buffer.alloc(MIB));
    const over = await q.usage(GOAL, { fresh: true });
    expect(over.bytes).toBeGreaterThan(2 * MIB);
    expect(over.bytes).toBeLessThanOrEqual(3 * MIB); // the walk stopped counting past 2 MiB
    expect(await q.room(GOAL)).toBe(0);
  });

  it("counts a goal holding a folder nested deeper than a host path can name as full", async () => {
    // The walk names every entry by its host path; past PATH_MAX it cannot (ENAMETOOLONG).
    // On main that was skipped as gone: what lay below was never charged (80 KiB of
    // folders counted here, not the folders and file below them).
    const q = new WorkspaceQuota({ goalsDir, maxMb: 1 });
    deepChain("head -c 4096 /dev/zero > hidden");
    const u = await q.usage(GOAL);
    expect(u.bytes).toBeGreaterThan(MIB);
    expect(u.unreadable).toMatch(/deeper than a path on the host can name/);
    const e = await q.admit(GOAL, 1, "file_write of /workspace/a").catch((x) => x);
    expect(isAidoError(e, "quota_exceeded")).toBe(true);
    expect(e.message).toMatch(/deeper than a path on the host can name/);
    expect(e.message.length).toBeLessThan(1000);
  });
});

describe("quotaSandbox exec", () => {
  it("hands the executor the room left (less a block per 256 KiB) as maxFileBytes, and 0 at the cap so files can still be deleted", async () => {
    const q = new WorkspaceQuota({ goalsDir, maxMb: 1 });
    const seen: ExecRequest[] = [];
    const sb = quotaSandbox(
      execOnly(async (req) => {
        seen.push(req);
        return done;
      }),
      q,
    );
    writeFileSync(ws("a"), Buffer.alloc(256 * 1024));
    await sb.exec({ confinement: "unconfined", command: "true" });
    expect(seen[0]?.maxFileBytes).toBe(MIB - 256 * 1024 - 3 * MIN_ENTRY_BYTES);
    expect(seen[0]?.signal).toBeInstanceOf(AbortSignal);
    writeFileSync(ws("b"), Buffer.alloc(MIB));
    await sb.exec({ confinement: "unconfined", command: "rm /workspace/b" });
    expect(seen[1]?.maxFileBytes).toBe(0);
  });

  it("keeps a fragmented file written to the whole maxFileBytes inside the cap", async () => {
    // A file written in many pieces gets a block of the filesystem's own for its map (an
    // ext4 extent tree past four extents): a file exactly as long as the room left used to
    // be charged a block past the cap (seen in the real dd test under load).
    const q = new WorkspaceQuota({ goalsDir, maxMb: 1 });
    // Every other block first, then the ones between: each lands apart from its neighbours.
    await sandboxFilling(q, (blocks) => [...stride(blocks, 2, 0), ...stride(blocks, 2, 1)]).exec(fill);
    expect((await q.usage(GOAL, { fresh: true })).bytes).toBeLessThanOrEqual(MIB);
  });

  it("keeps a fragmented file inside the cap when the room left is not a whole number of blocks", async () => {
    // A sparse file is charged its size, so the room left can end mid-block: the file's last
    // block then takes that part of it, and what is kept back must still hold the file's map.
    const q = new WorkspaceQuota({ goalsDir, maxMb: 2 });
    writeFileSync(ws("sparse"), "");
    truncateSync(ws("sparse"), MIB + 1);
    expect(await q.room(GOAL)).toBe(MIB - 1);
    await sandboxFilling(q, (blocks) => [...stride(blocks, 2, 0), ...stride(blocks, 2, 1)]).exec(fill);
    // On main the file was 255 blocks long and its extent tree took a 256th: a byte past the cap.
    expect((await q.usage(GOAL, { fresh: true })).bytes).toBeLessThanOrEqual(2 * MIB);
  });

  it("keeps a file filled in the order that grows its extent tree most inside the cap", async () => {
    // Every fourth block, then the second of each four from the end down, then the others:
    // ext4 splits the extent tree's leaves as the gaps fill and keeps the half-empty leaves,
    // 1.6 blocks of map per MiB of file here (1.9 at 64 MiB); the block per MiB kept back
    // before left the file charged 6 blocks past the cap.
    const q = new WorkspaceQuota({ goalsDir, maxMb: 8 });
    const order = (blocks: number) => [
      ...stride(blocks, 4, 0),
      ...stride(blocks, 4, 2).reverse(),
      ...stride(blocks, 4, 1),
      ...stride(blocks, 4, 3),
    ];
    // A measure taken while it runs may already see it past the cap (the call then fails).
    await sandboxFilling(q, order)
      .exec(fill)
      .catch((e) => expect(isAidoError(e, "quota_exceeded")).toBe(true));
    expect((await q.usage(GOAL, { fresh: true })).bytes).toBeLessThanOrEqual(8 * MIB);
  });

  it("keeps back one block per 256 KiB of room, and at least one, from the room in whole blocks", () => {
    expect(fileRoom(0)).toBe(0);
    expect(fileRoom(MIN_ENTRY_BYTES)).toBe(0);
    // The room is taken in whole blocks: a part of one is what the file's last block takes.
    expect(fileRoom(MIN_ENTRY_BYTES + 1)).toBe(0);
    expect(fileRoom(2 * MIN_ENTRY_BYTES + 1)).toBe(MIN_ENTRY_BYTES);
    expect(fileRoom(256 * 1024)).toBe(256 * 1024 - MIN_ENTRY_BYTES);
    expect(fileRoom(256 * 1024 + 1)).toBe(256 * 1024 - 2 * MIN_ENTRY_BYTES);
    expect(fileRoom(MIB - 1)).toBe(MIB - 5 * MIN_ENTRY_BYTES);
    expect(fileRoom(MIB)).toBe(MIB - 4 * MIN_ENTRY_BYTES);
    expect(fileRoom(64 * MIB)).toBe(64 * MIB - 256 * MIN_ENTRY_BYTES);
    expect(fileRoom(64 * MIB + 1)).toBe(64 * MIB - 257 * MIN_ENTRY_BYTES);
  });

  it("cancels a command while the goal grows past the cap, and says why", async () => {
    const q = new WorkspaceQuota({ goalsDir, maxMb: 1 });
    let written = 0;
    const sb = quotaSandbox(
      execOnly(async (req) => {
        const filling = setInterval(() => writeFileSync(ws(`f${written++}`), Buffer.alloc(256 * 1024)), 50);
        const r = await runUntilAborted(req.signal, 10_000);
        clearInterval(filling);
        return r;
      }),
      q,
    );
    const started = Date.now();
    const e = await sb.exec({ confinement: "unconfined", command: "fill" }).catch((x) => x);
    expect(isAidoError(e, "quota_exceeded")).toBe(true);
    expect(e.message).toMatch(
      /^exec stopped: goal g_quota's files on the host passed sandbox\.workspace_max_mb \(1 MiB/,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
    // Overshoot is what it wrote between two measures.
    expect(written * 256 * 1024).toBeLessThan(MIB + 2 * MIB);
  });

  it("cancels a command that writes past the cap under a folder nested deeper than a host path can name", async () => {
    const q = new WorkspaceQuota({ goalsDir, maxMb: 1 });
    const sb = quotaSandbox(
      execOnly(async (req) => {
        // 2 MiB at the bottom of the chain, where the walk cannot name it.
        deepChain("for i in 1 2 3 4 5 6 7 8; do head -c 262144 /dev/zero > f$i; done");
        return runUntilAborted(req.signal, 3_000);
      }),
      q,
    );
    const e = await sb.exec(fill).catch((x) => x);
    // On main the measures while it ran never saw those files: the command ran to its end.
    expect(isAidoError(e, "quota_exceeded")).toBe(true);
  });

  it("lets a command that frees room run to its end while the goal is over the cap", async () => {
    const q = new WorkspaceQuota({ goalsDir, maxMb: 1 });
    writeFileSync(ws("big"), Buffer.alloc(2 * MIB));
    const sb = quotaSandbox(
      execOnly(async (req) => {
        setTimeout(() => unlinkSync(ws("big")), 100);
        return runUntilAborted(req.signal, 1_500);
      }),
      q,
    );
    expect(await sb.exec({ confinement: "unconfined", command: "rm /workspace/big" })).toEqual(done);
  });

  it("passes the caller's own cancel on", async () => {
    const q = new WorkspaceQuota({ goalsDir, maxMb: 1 });
    const sb = quotaSandbox(
      execOnly((req) => runUntilAborted(req.signal, 10_000)),
      q,
    );
    const mine = new AbortController();
    setTimeout(() => mine.abort(), 100);
    const r = await sb.exec({ confinement: "unconfined", command: "sleep 10", signal: mine.signal });
    expect(r.signal).toBe("SIGKILL");
  });
});
