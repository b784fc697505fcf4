// bench/exec-latency.ts — what a Landlock domain costs an exec, side by side in one run
// and interleaved sample by sample (this machine's load drifts): a host spawn, an exec
// through the executor without a domain, with typical grants (folder prefixes: one rule
// each), the same grants without the execute right in the goal's folders (read-data rules),
// with grants that need expanding against the file system (file patterns), and the
// helper's own cost measured inside the container (helper + /bin/true vs /bin/true), and
// what the reaper adds to it (--reap: fork, a nested domain, the wait and the kill loop).
// Every executor exec runs with --reap on this kernel (Landlock ABI >= 6). Targets: at most
// 1 ms added per exec by Landlock with typical grants, and by the helper.

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { DockerSandbox } from "../src/sandbox/docker-sandbox.js";
import type { Confinement } from "../src/sandbox/types.js";
import { type BenchSection, percentile } from "./report.js";

const run = promisify(execFile);

const TYPICAL: Confinement = {
  read: ["/workspace/**", "/output/**", "/inputs/**", "/skills/**"],
  write: ["/workspace/**", "/output/**"],
  deny: [],
  denyRead: [],
  denyWrite: [],
  tmp: "/tmp/agent-bench",
  execute: true,
};
/** The same grants for an agent that may run nothing from the goal's folders (read rules without execute). */
const NO_EXECUTE: Confinement = { ...TYPICAL, execute: false, tmp: "/tmp/agent-bench-noexec" };
/** 20 project folders and 200 markdown files: rules for what exists and matches. */
const EXPANDED: Confinement = {
  ...TYPICAL,
  read: ["/workspace/*/src/**", "/output/*.md", "/inputs/**"],
  write: ["/output/*.md"],
  tmp: "/tmp/agent-bench-glob",
};

/**
 * The helper's cost inside the container: rounds of N runs of /bin/true without it, with it
 * (typical rules), and with it as a reaper; one line per round, in microseconds each.
 */
const HELPER_LOOP = `
N=100; A=""
for e in $(find / -mindepth 1 -maxdepth 1 -not -type l -printf '%f\\n'); do
  case $e in workspace|output|inputs|skills|tmp|proc|dev) ;;
  *) if [ -d /$e ]; then A="$A --read /$e"; else A="$A --read-file /$e"; fi ;; esac
done
A="$A --read /proc --read-file /dev/null --write-file /dev/null --read /workspace --write /workspace --read /output --write /output --read /inputs"
for r in 1 2 3 4 5 6 7; do
  i=0; t0=$(date +%s%N); while [ $i -lt $N ]; do /bin/true; i=$((i+1)); done
  i=0; t1=$(date +%s%N); while [ $i -lt $N ]; do /opt/aido/aido-landlock $A -- /bin/true; i=$((i+1)); done
  i=0; t2=$(date +%s%N); while [ $i -lt $N ]; do /opt/aido/aido-landlock --reap $A -- /bin/true; i=$((i+1)); done
  t3=$(date +%s%N); echo $(( (t1-t0)/N/1000 )) $(( (t2-t1)/N/1000 )) $(( (t3-t2)/N/1000 ))
done`;

export async function benchExecLatency(sb: DockerSandbox): Promise<BenchSection> {
  await sb.exec({
    command:
      "for p in $(seq 1 20); do mkdir -p /workspace/proj$p/src; done; for f in $(seq 1 200); do echo x > /output/f$f.md; done",
    confinement: "unconfined",
  });
  const N = 60;
  const host: number[] = [];
  const bare: number[] = [];
  const typical: number[] = [];
  const noExecute: number[] = [];
  const expanded: number[] = [];
  const time = async (into: number[], fn: () => Promise<unknown>) => {
    const t0 = performance.now();
    await fn();
    into.push(performance.now() - t0);
  };
  for (let i = 0; i < N + 5; i++) {
    const warm = i < 5; // first rounds warm caches and the private temp folders
    const sink = (xs: number[]) => (warm ? [] : xs);
    const kinds: [number[], () => Promise<unknown>][] = [
      [host, () => run("true")],
      [bare, () => sb.exec({ argv: ["true"], confinement: "unconfined" })],
      [typical, () => sb.exec({ argv: ["true"], confinement: TYPICAL })],
      [noExecute, () => sb.exec({ argv: ["true"], confinement: NO_EXECUTE })],
      [expanded, () => sb.exec({ argv: ["true"], confinement: EXPANDED })],
    ];
    // A different order each round, so no kind always follows the same one.
    for (let k = 0; k < kinds.length; k++) {
      const [into, fn] = kinds[(k + i) % kinds.length] as [number[], () => Promise<unknown>];
      await time(sink(into), fn);
    }
  }
  const loop = await sb.exec({ command: HELPER_LOOP, confinement: "unconfined", timeoutMs: 120_000 });
  const rounds = loop.stdout
    .trim()
    .split("\n")
    .map((l) => l.trim().split(/\s+/).map(Number) as [number, number, number]);
  const trueUs = percentile(
    rounds.map((r) => r[0]),
    50,
  );
  const helperUs = percentile(
    rounds.map((r) => r[1]),
    50,
  );
  const addedUs = percentile(
    rounds.map((r) => r[1] - r[0]),
    50,
  );
  const reaperUs = percentile(
    rounds.map((r) => r[2]),
    50,
  );
  const reaperAddedUs = percentile(
    rounds.map((r) => r[2] - r[1]),
    50,
  );
  const p50 = (xs: number[]) => percentile(xs, 50);
  const unconfined = { name: "exec unconfined p50", value: p50(bare) };
  return {
    name: "Exec latency with Landlock (one domain per exec)",
    metrics: [
      { name: "host spawn of `true` p50", value: p50(host), unit: "ms" },
      {
        name: "exec of `true` unconfined p50",
        value: p50(bare),
        unit: "ms",
        baseline: { name: "host spawn p50", value: p50(host) },
      },
      {
        name: "exec of `true` with Landlock, typical grants p50",
        value: p50(typical),
        unit: "ms",
        baseline: unconfined,
      },
      {
        name: "exec of `true` with Landlock, typical grants without execute in the goal's folders p50",
        value: p50(noExecute),
        unit: "ms",
        baseline: { name: "typical grants with execute p50", value: p50(typical) },
      },
      {
        name: "exec of `true` with Landlock, 220 rules from file patterns p50",
        value: p50(expanded),
        unit: "ms",
        baseline: unconfined,
      },
      {
        name: "added by Landlock per exec, typical grants (p50 difference)",
        value: p50(typical) - p50(bare),
        unit: "ms",
        target: { op: "<=", value: 1 },
      },
      {
        name: "helper + /bin/true in the container (median of 7 rounds of 100)",
        value: helperUs / 1000,
        unit: "ms",
        baseline: { name: "/bin/true alone", value: trueUs / 1000 },
      },
      {
        name: "helper's own cost per exec (one more execve, ruleset, seccomp)",
        value: addedUs / 1000,
        unit: "ms",
        target: { op: "<=", value: 1 },
      },
      {
        name: "helper as reaper + /bin/true in the container (--reap, median of 7 rounds of 100)",
        value: reaperUs / 1000,
        unit: "ms",
        baseline: { name: "helper without --reap", value: helperUs / 1000 },
      },
      {
        name: "reaper's own cost per exec (fork, nested domain, wait, kill(-1) loop)",
        value: reaperAddedUs / 1000,
        unit: "ms",
      },
    ],
    notes: [
      "Samples interleaved (host spawn, unconfined, typical, typical without execute, expanded, the order rotating each round), 60 rounds after 5 warm-up rounds.",
      "An unconfined exec goes through the helper too (--unconfined --reap: seccomp, a signal-scoped domain with no file rules, the reaper), so the p50 difference is the file rules alone; the helper's own cost is what every exec pays over spawning dash directly, the reaper's what --reap adds to that.",
      "Typical grants: file_read/file_write on /workspace/** and /output/**, read on /inputs/** and /skills/** (one hierarchy rule each, plus the root's system folders). Without execute, the same rules are read-data rules (no execute right in the goal's folders): the number of rules is the same.",
    ],
  };
}
