// OPEN (red team): snapshots carry a goal's writes to the host past sandbox.workspace_max_mb.
// Issue 11 promises that each goal's writes to the host are capped. The quota measures
// workspace/ and output/; snapshots before mutation (on by default) are stored under the
// same goal folder (goals/<id>/snapshots/) and are not counted (docs/sandbox.md says so).
// An agent that rewrites one file with fresh bytes before every mutating call (each turn of
// the loop; each tool.invoke) makes every snapshot store a new copy: the goal stays under
// its cap while its folder on the host grows by the file's size per turn, without bound.
// With a 16 MiB cap, eight rounds of writing a 6 MiB file and deleting it leave ~48 MiB on
// the host.
// Not fixed here: counting snapshots in the cap would let the snapshots of a goal near its
// cap stop it from writing at all; a separate cap (with the oldest snapshots pruned) is a
// design decision for the lead.

import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { MIB } from "../../src/sandbox/quota.js";
import { type Bench, expectOk, openBench } from "./fixture.js";

const CAP_MB = 16;
let b: Bench;
beforeAll(async () => {
  b = await openBench({}, (c) => {
    c.sandbox.workspaceMaxMb = CAP_MB;
  });
}, 120_000);
afterAll(async () => {
  await b?.close();
});

it("a goal's folder on the host stays within sandbox.workspace_max_mb, snapshots included", async () => {
  const a = b.agent("churner", [
    "tool: exec",
    "file_read: /workspace/**",
    "file_write: /workspace/**",
    "exec: head *",
  ]);
  for (let i = 0; i < 8; i++) {
    const r = expectOk(
      await b.call(a.id, "exec", { command: "head -c 6291456 /dev/urandom > /workspace/blob" }),
    );
    expect(r.isError, r.output).toBe(false);
  }
  const usage = await b.rt.quota.usage(a.goalId, { fresh: true });
  expect(usage.bytes).toBeLessThanOrEqual(CAP_MB * MIB);
  const folder = join(b.home.dir, "goals", a.goalId);
  const onHost = Number(execFileSync("du", ["-sb", folder], { encoding: "utf8" }).split("\t")[0]);
  expect(
    onHost,
    `the goal's folder holds ${(onHost / MIB).toFixed(1)} MiB against a ${CAP_MB} MiB cap`,
  ).toBeLessThanOrEqual((CAP_MB + 1) * MIB);
}, 120_000);
