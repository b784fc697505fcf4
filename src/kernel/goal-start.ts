// kernel/goal-start.ts — a queued goal made ready to run: its folders, the user's input
// files copied into inputs/, its token cap (limits.goal_max_tokens, lowered by the bootstrap
// manifest's budget unless that is per reset period, by a carried intent's budget left, and
// by its share of the MCP session's budget that submitted it: session-budget.ts), its root
// budget account (inside that share's hold for a session's goal), the bootstrap agent, and
// that agent's first message (the goal text, the input files, recalled memories, the
// standing objective). The queue and how a goal ends are goals.ts's.

import { readdirSync } from "node:fs";
import { basename } from "node:path";
import type { Config } from "../config.js";
import type { Intents } from "../intent/intents.js";
import type { LoadedManifest } from "../manifest/load.js";
import { recallForGoal } from "../memory/recall.js";
import type { MemoryStore } from "../memory/store.js";
import { memoryIdentity } from "../memory/types.js";
import { goalFolders, makeGoalFolders } from "../sandbox/folders.js";
import { type CheckedInput, copyInputs, inputRules } from "../sandbox/inputs.js";
import { parseSubmittedBy } from "../security/approval-project.js";
import type { AuditLog } from "../security/audit.js";
import type { BudgetLedger } from "../security/budget.js";
import type { EventBus } from "./events.js";
import { carryIntent, type IntentHolder, standingObjective } from "./goal-intent.js";
import type { GoalRow, GoalStore } from "./goal-store.js";
import type { AgentRecord } from "./registry.js";
import { sessionHoldAtStart } from "./session-budget.js";
import type { Spawner } from "./spawn.js";

/** What starting a goal uses (a subset of GoalRunnerDeps). */
export interface GoalStartDeps {
  config: Config;
  intents: Intents;
  budget: BudgetLedger;
  spawner: Spawner;
  audit: AuditLog;
  events: EventBus;
  memory?: MemoryStore;
}

/** The goal's root budget account: every agent of the goal draws from it. */
export function rootAccountOf(goalId: string): string {
  return `goal:${goalId}`;
}

/**
 * Start the goal of `row`: `g`'s cap is lowered where the manifest or the intent say so,
 * `running` are the other goals running (an intent's budget is shared with them), and
 * `rows` records in the goal's row the intent it carries (before its account opens: every
 * charge of it reaches the intent) and the bootstrap agent (before goal.started).
 */
export async function startGoal(
  deps: GoalStartDeps,
  row: GoalRow,
  g: IntentHolder,
  running: Iterable<IntentHolder>,
  rows: Pick<GoalStore, "setAgent" | "setCarriedIntent">,
): Promise<{ agent: AgentRecord; message: string }> {
  const id = row.id;
  const manifest = JSON.parse(row.manifest as string) as LoadedManifest;
  const by = parseSubmittedBy(row.submitted_by);
  // A session's goal: its root opens inside the share its session's account holds for it.
  // Checked first: a goal whose session ended (a queued one after a restart) fails before
  // its inputs are copied or an intent is carried.
  const hold = sessionHoldAtStart(deps.budget, id, by?.session_id);
  const folders = goalFolders(deps.config.goalsDir, id);
  makeGoalFolders(folders);
  await copyInputs(storedInputs(row.inputs), folders.inputs, inputRules(deps.config));
  // A root manifest's max_tokens lowers the cap, unless it is per reset period: then
  // the root gets an account of its own inside the goal's (spawn.ts), and the cap stays.
  const perPeriod = manifest.budget?.reset_period_seconds !== undefined;
  const manifestCap = perPeriod ? undefined : manifest.budget?.max_tokens;
  if (manifestCap !== undefined && manifestCap < g.cap) {
    g.cap = manifestCap;
    g.capBy = `the manifest's budget.max_tokens`;
  }
  const intent = carryIntent(deps.intents, row.intent_id, g, running);
  if (intent) rows.setCarriedIntent(id, intent.id);
  if (hold !== undefined && hold.share < g.cap) {
    g.cap = hold.share;
    g.capBy = "its share of the MCP session's budget";
  }
  const under = hold === undefined ? {} : { parentId: hold.account, underOtherGoal: true as const };
  deps.budget.open(rootAccountOf(id), { goalId: id, limit: g.cap, ...under });
  const agent = deps.spawner.spawn({ goalId: id, manifest, parent: null, account: rootAccountOf(id) });
  rows.setAgent(id, agent.id);
  deps.audit.record(
    "goal.started",
    { agent_id: agent.id, token_cap: g.cap, ...(intent ? { intent_id: intent.id } : {}) },
    { goalId: id },
  );
  deps.events.emit("goal.started", id, { agentId: agent.id });
  const owner = memoryIdentity(manifest.name, by);
  const parts = await firstMessage(deps.memory, id, row.text, manifest, owner, readdirSync(folders.inputs));
  const message = intent ? `${parts}\n\n${standingObjective(intent)}` : parts;
  return { agent, message };
}

/** The bootstrap agent's first message: the goal, its input files, what memory recalls for it. */
async function firstMessage(
  memory: MemoryStore | undefined,
  id: string,
  text: string,
  manifest: LoadedManifest,
  /** Whose memories are recalled (memoryIdentity: the manifest's name, in its submitter's namespace). */
  owner: string,
  inputs: string[],
): Promise<string> {
  const parts = [text];
  if (inputs.length > 0) {
    parts.push(`Input files (read-only):\n${inputs.map((f) => `- /inputs/${f}`).join("\n")}`);
  }
  if (memory && (manifest.memory?.episodic ?? true)) {
    const recalled = await recallForGoal(memory, text, owner, 8, { goalId: id });
    if (recalled) parts.push(recalled);
  }
  return parts.join("\n\n");
}

/** The goal row's inputs: checked inputs, or plain paths from a goal queued by an older Aido. */
export function storedInputs(json: string): CheckedInput[] {
  return (JSON.parse(json) as Array<CheckedInput | string>).map((i) =>
    typeof i === "string" ? { path: i, name: basename(i) } : i,
  );
}
