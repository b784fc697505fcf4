// scripts/record-demo.ts — records demo/recording/, the model answers `aido demo` replays.
//
//   npx tsx scripts/record-demo.ts            from the scripted provider (scripts/demo-turns.ts)
//   npx tsx scripts/record-demo.ts --real     from the real provider whose key is set
//                                              (ANTHROPIC_API_KEY, OPENAI_API_KEY, ...;
//                                              AIDO_MODEL picks the bootstrap's model)
//   --out DIR   write there instead of demo/recording (the test compares the two)
//
// Either way the demo goal runs for real: its own temp home and daemon, real containers,
// the gate, the approval answered Allow Once, with AIDO_RECORD. The exchanges are then
// normalised so that recording twice gives the same files: tool-call and answer ids are renamed per
// agent and call (the scripted server numbers them by arrival, which parallel children
// make vary), the run's goal, agent and approval ids in the recorded last messages become
// placeholders, and system_sha256 is left empty (every system prompt names the run's agent
// and goal ids, so its hash differs on every run; replay never compares it).

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { CliIo } from "../src/cli/command.js";
import { demoDaemonEnv, loadDemoBundle } from "../src/cli/demo/bundle.js";
import { runDemoSession } from "../src/cli/demo/session.js";
import { startProviderServer } from "../test/support/provider-server.js";
import { demoScripts } from "./demo-turns.js";

const ROOT = resolve(import.meta.dirname, "..");
const PROVIDER_VARS = [
  "ANTHROPIC_API_KEY",
  "ANTHROPIC_BASE_URL",
  "OPENAI_API_KEY",
  "OPENAI_BASE_URL",
  "DEEPSEEK_API_KEY",
  "DEEPSEEK_BASE_URL",
  "OLLAMA_HOST",
  "AIDO_OPENAI_COMPAT_BASE_URL",
  "AIDO_MODEL",
] as const;
/** The model the scripted recording names: it says where its answers came from. */
export const SCRIPTED_MODEL = "anthropic/scripted-demo";

interface Exchange {
  agent: string;
  call: number;
  request: { system_sha256: string; last_message?: { role: string; text: string } };
  response: { content: { type: string; id?: string }[]; id?: string };
}

/** Run-specific ids in free text, and the placeholder each becomes. */
const RUN_IDS: [RegExp, string][] = [
  [/\bg_[a-z0-9]{8,}\b/g, "<goal-id>"],
  [/\ba_[a-z0-9]{8,}\b/g, "<agent-id>"],
  [/\bapr_[A-Za-z0-9-]{6,}/g, "<approval-id>"],
  [/\b(toolu|call)_[A-Za-z0-9_]+\b/g, "<tool-call-id>"],
];

/** The normalised text of every exchange file under `dir`, by "agent/NNNN.json". */
export function normaliseRecording(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const agent of readdirSync(dir).sort()) {
    for (const file of readdirSync(join(dir, agent)).sort()) {
      const ex = JSON.parse(readFileSync(join(dir, agent, file), "utf8")) as Exchange;
      ex.request.system_sha256 = "";
      if (ex.request.last_message) {
        let text = ex.request.last_message.text;
        for (const [re, placeholder] of RUN_IDS) text = text.replace(re, placeholder);
        ex.request.last_message.text = text;
      }
      ex.response.content.forEach((b, i) => {
        if (b.type === "tool_use") b.id = `toolu_${agent.replace("#", "_")}_${ex.call}_${i}`;
      });
      // The provider numbers its answers in arrival order, which parallel children vary.
      if (ex.response.id !== undefined) ex.response.id = `msg_${agent.replace("#", "_")}_${ex.call}`;
      out.set(`${agent}/${file}`, `${JSON.stringify(ex, null, 2)}\n`);
    }
  }
  return out;
}

const io: CliIo = {
  out: (l) => process.stderr.write(`${l}\n`),
  err: (l) => process.stderr.write(`${l}\n`),
  interactive: false,
};

/** Record the demo into `out` (replacing it); returns the number of exchanges. */
export async function recordDemo(opts: {
  out: string;
  real: boolean;
  env?: NodeJS.ProcessEnv;
}): Promise<number> {
  const env = opts.env ?? process.env;
  const bundle = loadDemoBundle(join(ROOT, "demo"));
  const work = mkdtempSync(join(tmpdir(), "aido-record-demo-"));
  const record = join(work, "recording");
  const server = opts.real ? undefined : await startProviderServer();
  try {
    let model: Record<string, string>;
    if (server) {
      for (const s of demoScripts()) server.script(s.match, s.turns);
      model = {
        ANTHROPIC_API_KEY: "sk-demo-not-a-real-key",
        ANTHROPIC_BASE_URL: server.url,
        AIDO_MODEL: SCRIPTED_MODEL,
      };
    } else {
      model = {};
      for (const k of PROVIDER_VARS) if (env[k]) model[k] = env[k] as string;
      if (Object.keys(model).every((k) => k === "AIDO_MODEL" || k.endsWith("_BASE_URL")))
        throw new Error(
          "--real needs a provider key in the environment (ANTHROPIC_API_KEY, OPENAI_API_KEY, ...)",
        );
    }
    const home = join(work, "home");
    const result = await runDemoSession({
      bundle,
      home,
      env: demoDaemonEnv(env, home, { ...model, AIDO_RECORD: record }),
      approvals: "yes",
      io,
    });
    if (result.goal.state !== "succeeded")
      throw new Error(`the demo goal ${result.goal.state}: ${result.goal.error ?? "(no error)"}`);
    // The scripted demo promises one denial (the west child's curl) and one approval (the
    // report); a real model decides for itself, so a recording from it is only warned about.
    if (result.denials.length !== 1 || result.decisions.length !== 1) {
      const what = `the demo run had ${result.denials.length} denial(s) and ${result.decisions.length} approval(s), expected 1 and 1`;
      if (server) throw new Error(`${what}: ${result.denials.map((d) => d.payload.reason).join("; ")}`);
      io.err(`record-demo: warning: ${what}; the tour of this recording will say so`);
    }
    if (server && server.unmatched.length > 0)
      throw new Error(
        `${server.unmatched.length} model request(s) matched no script in scripts/demo-turns.ts`,
      );
    const files = normaliseRecording(record);
    rmSync(opts.out, { recursive: true, force: true });
    for (const [name, text] of files) {
      mkdirSync(join(opts.out, name.split("/")[0] as string), { recursive: true });
      writeFileSync(join(opts.out, name), text);
    }
    return files.size;
  } finally {
    await server?.close();
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const { values } = parseArgs({ options: { real: { type: "boolean" }, out: { type: "string" } } });
  const out = resolve(values.out ?? join(ROOT, "demo", "recording"));
  recordDemo({ out, real: values.real === true }).then(
    (n) => process.stderr.write(`recorded ${n} model exchanges into ${out}\n`),
    (e) => {
      process.stderr.write(`record-demo: ${(e as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
