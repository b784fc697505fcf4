// bench/budget.ts — what reserving a call's upper bound (llm/token-bound.ts) costs against
// the old estimate (characters / 4 + max_tokens). Both are computed on the requests the
// agent loop really builds: the shipped bootstrap manifest's system prompt and tools, a
// first turn, the same after ten tool turns of English file contents, and a task of dense
// CJK text. "Refused earlier by" is the difference: a call the old rule let through with
// that much room left is refused now. Nothing is sent; run alone with
// `npx tsx bench/budget.ts`.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { estimateRequestTokens } from "../src/agent/context.js";
import { MAX_OUTPUT_TOKENS } from "../src/agent/env.js";
import { buildSystemPrompt, offeredTools, toolSpec } from "../src/agent/prompt.js";
import { loadConfig } from "../src/config.js";
import { AidoError, ErrorCode } from "../src/errors.js";
import { Runtime } from "../src/kernel/runtime.js";
import { callTokenBound } from "../src/llm/token-bound.js";
import type { CompletionRequest, Message } from "../src/llm/types.js";
import type { SandboxBackend } from "../src/sandbox/backend.js";
import type { BenchSection } from "./report.js";

const noContainers: SandboxBackend = {
  acquire: async () => {
    throw new AidoError(ErrorCode.sandboxUnavailable, "the budget bench runs without containers");
  },
  stop: async () => {},
  remove: async () => {},
  pause: async () => "paused",
  unpause: async () => {},
  startMcpServer: async () => {
    throw new AidoError(ErrorCode.sandboxUnavailable, "the budget bench runs without containers");
  },
  reattach: async () => [],
  gc: async () => ({ removedContainers: [], removedFolders: [], failedFolders: [], failedContainers: [] }),
  close: async () => {},
};

const ENGLISH =
  "The quarterly report shows revenue up four percent on the year, driven by the new " +
  "subscription tier; costs rose two percent, mostly hosting. Churn fell to 3.1%.\n";

function turns(n: number): Message[] {
  const out: Message[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      role: "assistant",
      content: [
        { type: "tool_use", id: `toolu_${i}`, name: "file_read", input: { path: `/inputs/report-${i}.md` } },
      ],
    });
    out.push({
      role: "user",
      content: [{ type: "tool_result", tool_use_id: `toolu_${i}`, content: ENGLISH.repeat(12) }],
    });
  }
  return out;
}

export async function benchBudget(): Promise<BenchSection> {
  const home = mkdtempSync(join(tmpdir(), "aido-bench-budget-"));
  try {
    const config = loadConfig({
      env: { AIDO_HOME: home, ANTHROPIC_API_KEY: "sk-bench", AIDO_MODEL: "anthropic/claude-bench" },
      projectDir: home,
    });
    const rt = await Runtime.open(config, { backend: noContainers });
    try {
      const manifest = readFileSync(join(config.packageRoot, "manifests", "bootstrap.yaml"), "utf8");
      const agent = rt.registry.require(rt.spawnAgent(manifest).agent_id);
      const grants = rt.env.tokens.verify(agent.token).grants;
      const tools = offeredTools(rt.gate.tools, grants, agent.manifest);
      const system = buildSystemPrompt({
        manifest: agent.manifest,
        agentId: agent.id,
        goalId: agent.goalId,
        depth: agent.depth,
        grants,
        tools,
        skills: rt.env.skills,
        roles: rt.env.roles,
      });
      const base = { system, tools: tools.map(toolSpec), max_tokens: MAX_OUTPUT_TOKENS };
      const task: Message = {
        role: "user",
        content: "Summarise the reports in /inputs into /output/summary.md.",
      };
      const dense = Array.from({ length: 8000 }, (_, i) => String.fromCodePoint(0x3400 + (i % 6000))).join(
        "",
      );
      const cases: [string, CompletionRequest][] = [
        ["first turn of the bootstrap", { ...base, messages: [task] }],
        ["after 10 tool turns of English", { ...base, messages: [task, ...turns(10)] }],
        ["a task of 8,000 CJK characters", { ...base, messages: [{ role: "user", content: dense }] }],
      ];
      const metrics: BenchSection["metrics"] = [];
      const notes: string[] = [];
      for (const [name, req] of cases) {
        const old = estimateRequestTokens(req) + req.max_tokens;
        const bound = callTokenBound(req);
        metrics.push({
          name: `reserved for a call: ${name}`,
          value: bound,
          unit: "tokens",
          baseline: { name: "characters / 4 + max_tokens", value: old },
        });
        notes.push(
          `${name}: refused ${bound - old} tokens earlier near the cap than before (${(bound / old).toFixed(2)}x the old reservation, which still holds max_tokens ${req.max_tokens})`,
        );
      }
      notes.push(
        "The old estimate was no bound: dense text cost up to ~8x what it reserved (test/redteam/budget-bound.test.ts). What is reserved and not spent comes back at commit.",
      );
      return { name: "Budgets: a call's reservation, bound vs the old estimate", metrics, notes };
    } finally {
      await rt.close();
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  console.log(JSON.stringify(await benchBudget(), null, 2));
}
