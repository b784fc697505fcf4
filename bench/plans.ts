// bench/plans.ts — what a shadow simulation costs: a 5-step plan (writes, an edit, two
// execs) run against a throwaway copy of a 10,000-file workspace (a snapshot, the copy
// restored from it, a second container, the steps, the diff, cleanup),
// next to a plain snapshot of the same workspace, alternating, and next to the verdicts
// alone (no shadow). Real Docker. Run alone with `npx tsx bench/plans.ts`, or `npm run
// bench -- plans`.

import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Runtime } from "../src/kernel/runtime.js";
import { goalFolders } from "../src/sandbox/folders.js";
import { SnapshotStore } from "../src/sandbox/snapshots.js";
import { makeTempHome } from "../test/support/home.js";
import { type BenchSection, percentile } from "./report.js";

const FILES = 10_000;
const PER_DIR = 100;
const ROUNDS = 3;

const STEPS = [
  { tool: "file_write", input: { path: "/workspace/new/a.txt", content: "made by the plan\n" } },
  {
    tool: "file_edit",
    input: { path: "/workspace/d1/f100.txt", old_string: "file 100", new_string: "FILE 100" },
  },
  { tool: "exec", input: { command: "cat /workspace/new/a.txt /workspace/d1/f100.txt" } },
  { tool: "file_write", input: { path: "/workspace/d2/f200.txt", content: "replaced\n" } },
  { tool: "exec", input: { command: "ls /workspace/d3" } },
];

export async function benchPlans(): Promise<BenchSection> {
  const t = makeTempHome({ ANTHROPIC_API_KEY: "bench", AIDO_MODEL: "anthropic/bench" });
  const rt = await Runtime.open(t.config);
  try {
    const agent = rt.spawnAgent({
      name: "planner",
      system_prompt: "bench",
      capabilities: [
        "tool: file_write",
        "tool: file_edit",
        "tool: exec",
        "file_write: /workspace/**",
        "file_read: /workspace/**",
        "exec: cat *",
        "exec: ls *",
      ],
      budget: { max_tokens: 1000 },
    });
    const goalId = rt.registry.require(agent.agent_id).goalId;
    await rt.invokeTool(agent.agent_id, "file_write", { path: "/workspace/start.txt", content: "up\n" });
    const folders = goalFolders(t.config.goalsDir, goalId);
    for (let i = 0; i < FILES; i++) {
      const sub = join(folders.workspace, `d${Math.floor(i / PER_DIR)}`);
      if (i % PER_DIR === 0) mkdirSync(sub, { recursive: true });
      writeFileSync(join(sub, `f${i}.txt`), `file ${i}\n${"x".repeat(i % 2000)}\n`);
    }
    // As if the container had written them (as root the daemon runs containers as 1000:1000).
    if (process.getuid?.() === 0) execFileSync("chown", ["-R", "1000:1000", folders.workspace]);
    const store = new SnapshotStore({ goalsDir: t.config.goalsDir, maxMb: t.config.sandbox.snapshotsMaxMb });
    const roots = { workspace: folders.workspace, output: folders.output };
    await store.create(goalId, roots, "first: copies every file"); // out of the way
    const shadow: number[] = [];
    const snapshot: number[] = [];
    const verdicts: number[] = [];
    let changed = 0;
    for (let r = 0; r < ROUNDS; r++) {
      let t0 = performance.now();
      const sim = await rt.plans.simulate(agent.agent_id, STEPS, { shadow: true });
      shadow.push(performance.now() - t0);
      if (!sim.shadow?.steps.every((s) => s.ok))
        throw new Error(`the shadow run failed: ${JSON.stringify(sim.shadow?.steps)}`);
      changed = sim.shadow.diff.counts.added + sim.shadow.diff.counts.changed;
      t0 = performance.now();
      await store.create(goalId, roots, "plain");
      snapshot.push(performance.now() - t0);
      t0 = performance.now();
      await rt.plans.simulate(agent.agent_id, STEPS);
      verdicts.push(performance.now() - t0);
    }
    const plain = percentile(snapshot, 50);
    return {
      name: "Plans: a shadow simulation of 5 steps on a 10,000-file workspace",
      metrics: [
        {
          name: "shadow simulation, 5 steps, 10,000 files (p50)",
          value: percentile(shadow, 50),
          unit: "ms",
          baseline: { name: "a plain snapshot of the same workspace", value: plain },
        },
        { name: "the 5 verdicts alone, no shadow (p50)", value: percentile(verdicts, 50), unit: "ms" },
      ],
      notes: [
        `${ROUNDS} rounds, alternating; each shadow run snapshots the workspace, restores it into the copy (every one of the ${FILES} files written: most of its cost), starts a second container, runs the steps, diffs the copy (${changed} paths added or changed; only paths whose stat moved are read) and removes it all`,
        `load average at the end: ${loadavg()[0]?.toFixed(2)}`,
      ],
    };
  } finally {
    await rt.close();
    t.cleanup();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  console.log(JSON.stringify(await benchPlans(), null, 2));
}
