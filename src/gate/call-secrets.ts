// gate/call-secrets.ts — what the gate blanks in what it says, records and shows of a call of a
// goal: the goal's proxy credentials (`[hidden]`, egress/plumbing.ts goalSecretsIn) and the
// config's secrets (`***`, config-secrets.ts: a model may write its provider's API key into a
// child manifest, a file's content, a command). One place for the gate's refusals and errors
// (invoke.ts), a call's recorded input (tool.invoked) and what a human is asked to approve
// (judge.ts: the request's input, summary and target). Before, the approval request was built
// from the call as written: approval.list, the approval.requested entry and event, the
// dashboard, MCP's view and the cluster's mirror showed the key whole.

import { blankMarked } from "../security/blank-secrets.js";
import type { GateDeps } from "./invoke.js";

/** Where the gate learns a goal's secrets. */
export type SecretSources = Pick<GateDeps, "egress" | "configSecrets">;

/**
 * The secrets `text` holds, each with its mark: the goal's proxy credentials (`[hidden]`) and the
 * config's secrets (`***`).
 */
export function secretsIn(deps: SecretSources, goalId: string, text: string): [string, string][] {
  const goal = deps.egress?.goalSecretsIn?.(goalId, text) ?? [];
  // Only those the text holds (as written, or escaped as the JSON of a call's input writes
  // them): most texts hold none, and then nothing is walked or rebuilt.
  const config = (deps.configSecrets?.() ?? []).filter(
    (s) => text.includes(s) || text.includes(JSON.stringify(s).slice(1, -1)),
  );
  return [
    ...goal.map((s): [string, string] => [s, "[hidden]"]),
    ...config.map((s): [string, string] => [s, "***"]),
  ];
}

/** `text` with the goal's secrets blanked, each with its mark. */
export function hiddenText(deps: SecretSources, goalId: string, text: string): string {
  const marked = secretsIn(deps, goalId, text);
  return marked.length === 0 ? text : blankMarked(text, marked);
}

/**
 * A JSON value of a call with every text in it (a key, a value) blanked as `hiddenText`, its
 * shape kept: a call's input as tool.invoked records it and as an approval request shows it,
 * a refusal's or error's details (the need, the resolved path). A value that is not JSON (a
 * cycle) is kept: no path the container resolved is in it either.
 */
export function blankedJson<T>(deps: SecretSources, goalId: string, value: T): T {
  let json: string;
  try {
    json = JSON.stringify(value) ?? "";
  } catch {
    return value;
  }
  const marked = secretsIn(deps, goalId, json);
  if (marked.length === 0) return value;
  const blank = (v: unknown): unknown => {
    if (typeof v === "string") return blankMarked(v, marked);
    if (Array.isArray(v)) return v.map(blank);
    if (v === null || typeof v !== "object") return v;
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [blankMarked(k, marked), blank(x)]));
  };
  return blank(value) as T;
}
