// cli/watch/render.ts — turns a WatchState into text. Two forms: a whole frame for a
// terminal that is redrawn in place (renderFrame), and plain lines appended as things
// happen for logs and pipes (newActivityLines). Pure: the same state gives the same text.

import { carriesSecretsText } from "../../security/approval-shown.js";
import { inert } from "../../security/terminal-text.js";
import { clusterLines } from "./cluster.js";
import {
  type ActivityLine,
  type AgentView,
  type GoalView,
  oneLine,
  tokensSpent,
  type WatchState,
} from "./state.js";

const n = (x: number): string => x.toLocaleString("en-US");
const clock = (iso: string): string => (iso.length >= 19 ? iso.slice(11, 19) : iso);

const STATE_MARK: Record<string, string> = {
  starting: "○",
  running: "●",
  paused: "‖",
  stopping: "◌",
  stopped: "✓",
};

function budgetLine(state: WatchState): string {
  const { input, output } = tokensSpent(state);
  const spent = input + output;
  const base = `tokens ${n(spent)} (in ${n(input)}, out ${n(output)})`;
  if (state.budgetTokens === undefined || state.budgetTokens <= 0) return base;
  const pct = ((spent / state.budgetTokens) * 100).toFixed(1);
  return `${base} of ${n(state.budgetTokens)} budget (${pct}%)`;
}

function agentLine(a: AgentView, prefix: string, width: number): string {
  const running = Object.values(a.toolsRunning);
  const parts = [
    `${prefix}${STATE_MARK[a.state] ?? "?"} ${a.manifest}`,
    a.id,
    a.state + (a.state === "stopped" && a.stopReason ? ` (${oneLine(a.stopReason, 40)})` : ""),
    `tokens ${n(a.inputTokens + a.outputTokens)}`,
    `tools ${a.toolCalls}`,
  ];
  if (a.denials > 0) parts.push(`denied ${a.denials}`);
  if (running.length > 0) parts.push(`running: ${running.join(", ")}`);
  if (a.description) parts.push(`— ${oneLine(a.description, 60)}`);
  return clip(parts.join("  "), width);
}

/** The agent tree, depth first in spawn order; agents whose parent is unknown are roots. */
function agentTree(state: WatchState, width: number): string[] {
  const children = new Map<string | null, AgentView[]>();
  for (const id of state.agentOrder) {
    const a = state.agents[id];
    if (!a) continue;
    const parent = a.parentId !== null && state.agents[a.parentId] ? a.parentId : null;
    const list = children.get(parent) ?? [];
    list.push(a);
    children.set(parent, list);
  }
  const out: string[] = [];
  const walk = (parent: string | null, indent: string) => {
    const list = children.get(parent) ?? [];
    list.forEach((a, i) => {
      const last = i === list.length - 1;
      const branch = parent === null ? "" : last ? "└─ " : "├─ ";
      out.push(agentLine(a, `  ${indent}${branch}`, width));
      walk(a.id, parent === null ? indent : `${indent}${last ? "   " : "│  "}`);
    });
  };
  walk(null, "");
  return out;
}

/**
 * A goal whose status is this node's own record (Redis unread): not the cluster's word, so
 * the state above may be out of date; another node may have ended or taken it since.
 */
function ownRecordLines(r: NonNullable<GoalView["ownRecord"]>, width: number): string[] {
  const redis = r.redis === "refused" ? "refuses this node's reads" : "cannot be reached";
  const since = r.asOf === null ? "never" : `at ${clock(r.asOf)}`;
  return [
    clip(`  FROM THIS NODE'S RECORD: the cluster's Redis ${redis} (${oneLine(r.reason, width)})`, width),
    clip(
      `  the cluster last heard from this node ${since}; another node may have ended or taken this goal since`,
      width,
    ),
  ];
}

/** "  on node n2" for a goal a cluster node runs; nothing on a lone daemon. */
const onNode = (node: string | undefined): string =>
  node === undefined ? "" : `  on node ${oneLine(node, 40)}`;

function clip(line: string, width: number): string {
  return line.length > width ? `${line.slice(0, Math.max(0, width - 1))}…` : line;
}

export function activityText(a: ActivityLine, showGoal: boolean): string {
  const goal = showGoal && a.goalId ? `[${a.goalId}] ` : "";
  return `${clock(a.time)} ${goal}${a.text}`;
}

/** A full screen of the watch: header, budget, agent tree, inference queue, approvals, recent activity. */
export function renderFrame(state: WatchState, width = 100, approveWith = "aido approvals"): string[] {
  const lines: string[] = [];
  const watched = state.goalId === null ? undefined : state.goals[state.goalId];
  if (state.goalId === null) {
    const goals = Object.values(state.goals);
    const live = goals.filter((g) => g.state === "running" || g.state === "queued").length;
    lines.push(clip(`aido watch — all goals (${live} live, ${goals.length} seen)`, width));
    for (const g of goals) {
      lines.push(
        clip(`  ${g.id}  ${g.state}${onNode(g.node)}${g.text ? `  ${oneLine(g.text, 60)}` : ""}`, width),
      );
    }
  } else {
    const st = state.finished?.state ?? watched?.state ?? "waiting for events";
    lines.push(clip(`aido watch — goal ${state.goalId}  ${st}${onNode(watched?.node)}`, width));
    if (watched?.text) lines.push(clip(`  ${oneLine(watched.text, width)}`, width));
    if (watched?.ownRecord) lines.push(...ownRecordLines(watched.ownRecord, width));
    if (state.finished?.error) lines.push(clip(`  error: ${oneLine(state.finished.error, width)}`, width));
  }
  lines.push(clip(budgetLine(state), width));
  if (state.cluster) lines.push("", ...clusterLines(state.cluster, width));
  lines.push("");
  lines.push("agents");
  const tree = agentTree(state, width);
  lines.push(...(tree.length > 0 ? tree : ["  (none yet)"]));
  lines.push("");
  const queues = Object.entries(state.inference).filter(([, q]) => q.waiting.length + q.inFlight.length > 0);
  lines.push(
    queues.length === 0
      ? "inference  idle"
      : `inference  ${queues.map(([p, q]) => `${p}: ${q.inFlight.length} in flight, ${q.waiting.length} waiting`).join(" · ")}`,
  );
  const approvals = Object.values(state.approvals);
  if (approvals.length > 0) {
    lines.push("");
    lines.push(clip(`approvals waiting (${approvals.length}) — answer with: ${approveWith}`, width));
    for (const a of approvals) {
      const who = state.agents[a.agentId]?.manifest ?? a.agentId;
      const where = a.node === undefined ? "" : ` (node ${oneLine(a.node, 40)})`;
      lines.push(clip(`  ${a.id}  ${who} wants ${a.tool}${where}: ${oneLine(a.summary, width)}`, width));
      const secrets = carriesSecretsText(a.carriesSecrets);
      if (secrets !== undefined) lines.push(clip(`      ${oneLine(secrets, width)}`, width));
      if (a.covers) {
        lines.push(clip(`      Allow Session: ${oneLine(a.covers.allow_session, width)}`, width));
        lines.push(clip(`      Allow Always:  ${oneLine(a.covers.allow_always, width)}`, width));
      }
    }
  }
  lines.push("");
  lines.push("recent");
  if (state.activity.length === 0) lines.push("  (nothing yet)");
  for (const a of state.activity) lines.push(`  ${activityText(a, state.goalId === null)}`);
  // In a cluster the goals and approvals come from Redis (whoever can write there writes an
  // id, a state, a tool, an agent id): every line is drawn inert and within the width.
  return lines.map((l) => clip(inert(l), width));
}

/** Activity lines newer than `afterSeq`, for the plain (not a terminal) output. */
export function newActivityLines(state: WatchState, afterSeq: number): string[] {
  return state.activity
    .filter((a) => a.seq > afterSeq)
    .map((a) => inert(activityText(a, state.goalId === null)));
}

/** The closing line(s) of a watch of one goal. */
export function summaryLines(state: WatchState): string[] {
  if (!state.finished || state.goalId === null) return [];
  const head = inert(`goal ${state.goalId} ${state.finished.state}; ${budgetLine(state)}`);
  return state.finished.error ? [head, `error: ${inert(state.finished.error)}`] : [head];
}
