// bench/snapshots.ts — snapshot cost on a generated 10,000-file workspace: the first
// snapshot (everything copied), an incremental one after 10 files change (only those are
// read), and a restore after 10 files change (only those are rewritten). Target: each
// under 500 ms. Then what snapshots before mutation (on by default) cost a mutating call:
// file_write through the gate into a real container, with the snapshot and without it,
// alternating, on workspaces of 1,000 and 10,000 files; and what pruning the oldest
// snapshot and compacting its pack costs (sandbox.snapshots_max_mb). Run alone with
// `npx tsx bench/snapshots.ts`.

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Runtime } from "../src/kernel/runtime.js";
import { goalFolders } from "../src/sandbox/folders.js";
import { MIB } from "../src/sandbox/quota.js";
import { storeUsage } from "../src/sandbox/snapshot-prune.js";
import { SnapshotStore } from "../src/sandbox/snapshots.js";
import { makeTempHome } from "../test/support/home.js";
import { type BenchSection, percentile } from "./report.js";

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
    const roots = { workspace: ws, output: join(home, "goals", "bench", "output") };
    mkdirSync(ws, { recursive: true });
    mkdirSync(roots.output, { recursive: true });
    const paths = makeWorkspace(ws);
    const store = new SnapshotStore({ goalsDir: join(home, "goals"), maxMb: 1024 });
    // Baseline, side by side: a full copy of the same workspace with cp -a.
    const copy = await timed(async () => execFileSync("cp", ["-a", ws, join(home, "copy")]));
    const first = await timed(() => store.create("bench", roots, "first"));
    change(ws, paths, 1);
    const incremental = await timed(() => store.create("bench", roots, "after 10 changes"));
    change(ws, paths, 2);
    const restore = await timed(() => store.restore("bench", roots, incremental.result.id));
    const noop = await timed(() => store.restore("bench", roots, incremental.result.id));
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

/**
 * What pruning costs (sandbox.snapshots_max_mb): on the 10,000-file workspace, a first
 * snapshot, then half the files rewritten and a second; then, with the store capped just
 * below what it holds, an incremental snapshot that must prune the first and compact its
 * pack (copying the 5,000 contents the second still needs), beside the same incremental
 * snapshot on an uncapped store.
 */
export async function benchSnapshotPruning(): Promise<BenchSection> {
  const home = mkdtempSync(join(tmpdir(), "aido-bench-prune-"));
  try {
    const goalsDir = join(home, "goals");
    const folder = (goal: string) => {
      const roots = { workspace: join(goalsDir, goal, "workspace"), output: join(goalsDir, goal, "output") };
      mkdirSync(roots.workspace, { recursive: true });
      mkdirSync(roots.output, { recursive: true });
      return roots;
    };
    const uncapped = new SnapshotStore({ goalsDir, maxMb: 1 << 20 });
    const setUp = async (goal: string) => {
      const roots = folder(goal);
      const paths = makeWorkspace(roots.workspace);
      await uncapped.create(goal, roots);
      for (const [i, rel] of paths.entries()) {
        if (i % 2 === 0)
          writeFileSync(join(roots.workspace, rel), `rewritten ${i}\n${"y".repeat(i % 2000)}\n`);
      }
      await uncapped.create(goal, roots);
      change(roots.workspace, paths, 3);
      return roots;
    };
    const plain = await setUp("plain");
    const pruned = await setUp("pruned");
    const held = storeUsage(join(goalsDir, "pruned", "snapshots"));
    const capMb = Math.floor(held / MIB);
    const capped = new SnapshotStore({ goalsDir, maxMb: capMb });
    const base = await timed(() => uncapped.create("plain", plain));
    const prune = await timed(() => capped.create("pruned", pruned));
    const after = storeUsage(join(goalsDir, "pruned", "snapshots"));
    return {
      name: `Snapshot pruning and pack compaction (${FILES} files)`,
      metrics: [
        {
          name: `incremental snapshot that prunes the oldest and compacts its pack`,
          value: prune.ms,
          unit: "ms",
          baseline: { name: "the same snapshot with no cap", value: base.ms },
          target: { op: "<=", value: 1000 },
        },
        { name: "the same, CPU", value: prune.cpuMs, unit: "ms" },
      ],
      notes: [
        `store ${(held / MIB).toFixed(1)} MiB before, cap ${capMb} MiB, ${(after / MIB).toFixed(1)} MiB after; pruned ${prune.result.pruned?.snapshot_ids.length ?? 0} snapshot(s); ${FILES / 2} contents copied into a new pack`,
        `load average at the end: ${loadavg()[0]?.toFixed(2)}`,
      ],
    };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/** A runtime on a fresh home, with snapshots before mutation on or off, and one agent in it. */
async function runtimeWith(snapshots: boolean) {
  const t = makeTempHome({ ANTHROPIC_API_KEY: "bench", AIDO_MODEL: "anthropic/bench" });
  t.config.policy.snapshotBeforeMutation = snapshots;
  const rt = await Runtime.open(t.config);
  const agent = rt.spawnAgent({
    name: `writer-${snapshots ? "snap" : "plain"}`,
    system_prompt: "bench",
    capabilities: ["tool: file_write", "file_write: /workspace/**"],
    budget: { max_tokens: 1000 },
  });
  const goalId = rt.registry.require(agent.agent_id).goalId;
  const call = (i: number) =>
    rt.invokeTool(agent.agent_id, "file_write", { path: "/workspace/bench.txt", content: `write ${i}\n` });
  await call(0); // container up, folders made
  return { t, rt, call, workspace: goalFolders(t.config.goalsDir, goalId).workspace };
}

/**
 * A mutating call with the snapshot taken before it vs the same call without: file_write
 * through Runtime.invokeTool (the socket's tool.invoke), which snapshots before every
 * mutating call (an agent loop, once per turn). Alternating, so load hits both alike.
 */
export async function benchSnapshotCalls(): Promise<BenchSection> {
  const on = await runtimeWith(true);
  const off = await runtimeWith(false);
  const metrics: BenchSection["metrics"] = [];
  const notes: string[] = [];
  try {
    let have = 0;
    for (const files of [1_000, 10_000]) {
      for (const w of [on.workspace, off.workspace]) {
        for (let i = have; i < files; i++) {
          const sub = join(w, `d${Math.floor(i / PER_DIR)}`);
          if (i % PER_DIR === 0) mkdirSync(sub, { recursive: true });
          writeFileSync(join(sub, `f${i}.txt`), `file ${i}\n${"x".repeat(i % 2000)}\n`);
        }
      }
      have = files;
      await on.call(1); // the snapshot that copies the new files, out of the way
      const withSnap: number[] = [];
      const without: number[] = [];
      for (let i = 0; i < 15; i++) {
        for (const [r, into] of [
          [on, withSnap],
          [off, without],
        ] as const) {
          const t0 = performance.now();
          await r.call(i + 2);
          into.push(performance.now() - t0);
        }
      }
      const base = percentile(without, 50);
      metrics.push({
        name: `file_write with the snapshot before it, ${files} files in /workspace (p50)`,
        value: percentile(withSnap, 50),
        unit: "ms",
        baseline: { name: "the same call without", value: base },
      });
      notes.push(
        `${files} files: p90 ${percentile(withSnap, 90).toFixed(1)} ms with the snapshot, ${percentile(without, 90).toFixed(1)} ms without`,
      );
    }
  } finally {
    for (const r of [on, off]) {
      await r.rt.close();
      r.t.cleanup();
    }
  }
  notes.push(
    "Each call here snapshots (tool.invoke has no turns); in the agent loop only the first mutating call of a turn does.",
    `load average at the end: ${loadavg()[0]?.toFixed(2)}`,
  );
  return { name: "Snapshots before mutation, per mutating call", metrics, notes };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  console.log(
    JSON.stringify(
      [await benchSnapshots(), await benchSnapshotPruning(), await benchSnapshotCalls()],
      null,
      2,
    ),
  );
}
