// cli/demo/bundle.ts — the bundled demo (demo/ at the top of the checkout, the package and
// the daemon image): its goal, its input files, the config its home runs with, and the
// recording `aido demo` replays. Also the environment a demo daemon starts with: only
// what running a process needs (PATH, HOME, the Docker endpoint, the sandbox image) plus
// what the caller adds, never the provider variables of the user's shell — the demo
// must show what runs with no key, and must not spend the user's.

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Env } from "../../config.js";
import { AidoError, ErrorCode } from "../../errors.js";

export interface DemoBundle {
  dir: string;
  goal: string;
  /** Absolute paths of the input files, handed to the goal as /inputs/<name>. */
  inputs: string[];
  configFile: string;
  recording: string;
}

/** demo/ three levels above this module: src/cli/demo/ in a checkout, dist/cli/demo/ built. */
export function bundledDemoDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "demo");
}

export function loadDemoBundle(dir = bundledDemoDir()): DemoBundle {
  const need = (name: string) => {
    const p = join(dir, name);
    if (!existsSync(p))
      throw new AidoError(ErrorCode.configInvalid, `the demo bundle ${dir} has no ${name}`, { path: p });
    return p;
  };
  const goal = readFileSync(need("goal.txt"), "utf8").trim();
  const inputsDir = need("inputs");
  const inputs = readdirSync(inputsDir)
    .sort()
    .map((f) => join(inputsDir, f));
  return { dir, goal, inputs, configFile: need("config.yaml"), recording: join(dir, "recording") };
}

/**
 * "provider/model" of the recording's bootstrap agent: a replay runs the bootstrap under
 * the model it was recorded with (the scripted provider's, when no real key was at hand).
 */
export function recordedModel(recording: string): string {
  const first = join(recording, "bootstrap", "0001.json");
  if (!existsSync(first))
    throw new AidoError(
      ErrorCode.configInvalid,
      `no recording in ${recording} (missing bootstrap/0001.json): record it with \`npx tsx scripts/record-demo.ts\``,
      { path: first },
    );
  const ex = JSON.parse(readFileSync(first, "utf8")) as { provider?: unknown; model?: unknown };
  if (typeof ex.provider !== "string" || typeof ex.model !== "string")
    throw new AidoError(ErrorCode.configInvalid, `${first} names no provider and model`, { path: first });
  return `${ex.provider}/${ex.model}`;
}

/** How many model exchanges the recording holds (every agent's numbered files). */
export function recordedCalls(recording: string): number {
  let n = 0;
  for (const agent of readdirSync(recording, { withFileTypes: true }))
    if (agent.isDirectory())
      n += readdirSync(join(recording, agent.name)).filter((f) => /^\d{4}\.json$/.test(f)).length;
  return n;
}

/** What a demo daemon inherits from the caller's environment; everything else stays out. */
const PASSED = ["PATH", "HOME", "USER", "LANG", "TMPDIR", "DOCKER_HOST", "AIDO_SANDBOX_IMAGE"] as const;

export function demoDaemonEnv(from: Env, home: string, extra: Env): Env {
  const env: Record<string, string> = {};
  for (const k of PASSED) {
    const v = from[k];
    if (v !== undefined) env[k] = v;
  }
  return { ...env, ...extra, AIDO_HOME: home };
}
