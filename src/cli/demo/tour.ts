// cli/demo/tour.ts — the few lines `aido demo` ends with: what the gate denied and why
// (stage and reason, from the audit), what a human approved, where the deliverables and
// the audit are, and the commands that inspect and verify them against the demo's home.
// A goal that failed because the replay diverged gets the message that says how to
// record the demo again instead.

import { relative } from "node:path";
import { isStrictlyWithin } from "../../fs/within.js";
import { inert } from "../../security/terminal-text.js";
import type { DemoSessionResult } from "./session.js";

const RECORD_AGAIN =
  "The recording no longer matches this runtime (its tools or its steps changed).\n" +
  "Record it again from a checkout: npx tsx scripts/record-demo.ts (scripted provider; add --real\n" +
  "with a provider key to record from a real model), then run `aido demo` again.";

/** A folder under the working folder as ./path (run-aido.sh copies the container's ./output to the user's). */
function shown(dir: string): string {
  return isStrictlyWithin(process.cwd(), dir) ? `./${relative(process.cwd(), dir)}` : dir;
}

/**
 * Why the run no longer matches the recording, or undefined: the goal failed on a replay
 * error (llm/record.ts messages start "replay:": an agent offered other tools or made a
 * call too many), or it ended having used fewer recorded answers than the recording holds
 * (an agent now stops sooner than it did).
 */
export function replayDivergence(
  r: Pick<DemoSessionResult, "goal" | "modelCalls">,
  recordedCalls: number,
): string | undefined {
  if (r.goal.state !== "succeeded" && (r.goal.error ?? "").includes("replay:")) return r.goal.error;
  if (r.goal.state === "succeeded" && r.modelCalls !== recordedCalls)
    return `the run made ${r.modelCalls} model call(s) but the recording holds ${recordedCalls}: it has diverged from the recording`;
  return undefined;
}

export function tourLines(
  r: DemoSessionResult,
  where: { home: string; output: string; copied: number; divergence: string | undefined },
): string[] {
  const env = `AIDO_HOME=${where.home}`;
  if (where.divergence !== undefined)
    return ["", `goal ${r.goal.goal_id} ${r.goal.state}: ${inert(where.divergence)}`, "", RECORD_AGAIN];
  const lines = ["", `== what happened (goal ${r.goal.goal_id} ${r.goal.state})`];
  if (r.goal.error) lines.push(`error:     ${inert(r.goal.error)}`);
  if (r.denials.length === 0) lines.push("denied:    nothing");
  for (const d of r.denials) {
    const who = d.agent_id ? `${r.agents[d.agent_id] ?? "agent"} (${d.agent_id})` : "the runtime";
    lines.push(
      `denied:    ${d.payload.tool} by ${who} at the ${d.payload.stage} stage: ${inert(d.payload.reason)}`,
    );
  }
  if (r.decisions.length === 0) lines.push("approved:  nothing");
  for (const d of r.decisions)
    lines.push(`approved:  ${d.payload.tool} (${inert(d.payload.scope_key)}): ${d.payload.decision}`);
  lines.push(
    where.copied > 0
      ? `delivered: ${where.copied} file(s) in ${shown(where.output)}`
      : `delivered: nothing copied to ${shown(where.output)}`,
    `audit:     the demo's home ${where.home} (kept until the next \`aido demo\`)`,
    "",
    "look closer:",
    `  ${env} aido audit query --kind tool.denied`,
    `  ${env} aido audit query --kind approval.decided`,
    `  ${env} aido audit verify`,
  );
  return lines;
}
