// bench/snapshots.ts — snapshot cost on a generated 10,000-file workspace: the first
// snapshot (everything copied), an incremental one after 10 files change (only those are
// read), and a restore after 10 files change (only those are rewritten). Target: each
// under 500 ms. Run alone with `npx tsx bench/snapshots.ts`.

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { SnapshotStore } from "../src/sandbox/snapshots.js";
import type { BenchSection } from "./report.js";

const FILES = 10_000;
const PER_DIR = 100;
const CHANGED = 10;

function makeWorkspace(dir: string): string[] {
  const paths: string[] = [];
  for (let i = 0; i < FILES; i++) {
    const sub = `d${Math.floor(i / PER_DIR)}`;
    if (i % PER_DIR === 0) mkdirSync(join(dir, sub), { recursive: true });
    const rel = `${sub}/f${i}.txt`;
    writeFileSync(join(dir, rel), `file ${i}\n${"x".repeat(i % 2000)}\n`);
    paths.push(rel);
  }
  return paths;
}

function change(dir: string, paths: string[], round: number): void {
  for (let i = 0; i < CHANGED; i++) writeFileSync(join(dir, paths[i * 997]!), `changed in round ${round}\n`);
}

/** Wall time, and this process's CPU time (less distorted when the machine is shared). */
async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; cpuMs: number; result: T }> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const result = await fn();
  const c = process.cpuUsage(c0);
  const round = (n: number) => Math.round(n * 10) / 10;
  return { ms: round(performance.now() - t0), cpuMs: round((c.user + c.system) / 1000), result };
}

export async function benchSnapshots(): Promise<BenchSection> {
  const home = mkdtempSync(join(tmpdir(), "aido-bench-snap-"));
  try {
    const ws = join(home, "goals", "bench", "workspace");
    mkdirSync(ws, { recursive: true });
    const paths = makeWorkspace(ws);
    const store = new SnapshotStore({ goalsDir: join(home, "goals") });
    // Baseline, side by side: a full copy of the same workspace with cp -a.
    const copy = await timed(async () => execFileSync("cp", ["-a", ws, join(home, "copy")]));
    const first = await timed(() => store.create("bench", ws, "first"));
    change(ws, paths, 1);
    const incremental = await timed(() => store.create("bench", ws, "after 10 changes"));
    change(ws, paths, 2);
    const restore = await timed(() => store.restore("bench", ws, incremental.result.id));
    const noop = await timed(() => store.restore("bench", ws, incremental.result.id));
    const baseline = { name: "cp -a of the workspace", value: copy.ms };
    return {
      name: `Snapshots (${FILES} files)`,
      metrics: [
        { name: "first snapshot", value: first.ms, unit: "ms", baseline, target: { op: "<=", value: 500 } },
        { name: "first snapshot, CPU", value: first.cpuMs, unit: "ms" },
        {
          name: `incremental snapshot after ${CHANGED} changes`,
          value: incremental.ms,
          unit: "ms",
          baseline,
          target: { op: "<=", value: 500 },
        },
        {
          name: `restore after ${CHANGED} changes`,
          value: restore.ms,
          unit: "ms",
          baseline,
          target: { op: "<=", value: 500 },
        },
        { name: "restore with nothing changed", value: noop.ms, unit: "ms", baseline },
      ],
      notes: [
        `incremental snapshot read ${incremental.result.changed} changed files; restore rewrote ${restore.result.files_restored}`,
        `load average at the end: ${loadavg()[0]?.toFixed(2)}`,
      ],
    };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  console.log(JSON.stringify(await benchSnapshots(), null, 2));
}
