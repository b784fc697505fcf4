// security/approval-scope.ts — what a human's standing answer covers. Allow Session and
// Allow Always apply to later calls of the same tool with the same scope, and the scope is
// the call's canonical target as the gate judged it, never its raw input:
//   file tools   the paths as resolved in the container (`path:/workspace/a.txt`)
//   exec         the normalized command (command-scope.ts) and every path it was judged on
//                (its working folder, redirection targets, scripts), as a digest
//   web_fetch    the host (`host:example.com`)
//   spawn tools  their manifests exactly as written (kernel/spawn-tools.ts gives that scope)
//   other tools  their exact canonical input, as a digest
// Each scope also has a `target`, the sentence a human reads before answering, and
// `describeCoverage` says what each decision would cover in words. Targets are inert text:
// a path is a model's choice and a file name may hold any byte but "/" and NUL, so a `\r`
// and ESC[2K in one wiped the real line on the operator's terminal and showed another
// target in its place; control and bidi characters are written as escapes instead.

import { createHash } from "node:crypto";
import type { Need } from "../gate/types.js";
import { canonicalJson } from "./canonical-json.js";
import { normalizeCommand, scopeDigest } from "./command-scope.js";

export interface ApprovalScope {
  /** Compared for equality when a later call looks for a standing decision. */
  key: string;
  /** What the scope is, for a human: "file_write on /workspace/out.md". */
  target: string;
}

/** Words of a target longer than this are cut for display (the key stays exact). */
const SHOWN_MAX = 300;

/** The scope of a call from its judged needs (file paths, hosts), else its exact input. */
export function approvalScopeOf(tool: string, input: unknown, needs: readonly Need[]): ApprovalScope {
  const paths = sortedUnique(
    needs.flatMap((n) => (n.kind === "file_read" || n.kind === "file_write" ? [n.path] : [])),
  );
  const hosts = sortedUnique(needs.flatMap((n) => (n.kind === "network" ? [n.host] : [])));
  const others = needs.some((n) => n.kind === "spawn_child");
  const kinds = [paths, hosts].filter((l) => l.length > 0).length + (others ? 1 : 0);
  if (kinds === 1 && paths.length > 0) {
    return { key: keyed("path", paths), target: `${tool} on ${inert(paths.join(", "))}` };
  }
  if (kinds === 1 && hosts.length > 0) {
    return {
      key: keyed("host", hosts),
      target: `${tool} of any URL on host${hosts.length > 1 ? "s" : ""} ${inert(hosts.join(", "))}`,
    };
  }
  const digest = createHash("sha256")
    .update(`${tool}\u0000${canonicalJson(input ?? null)}`)
    .digest("hex")
    .slice(0, 40);
  return {
    key: `input:${digest}`,
    target: `${tool} with exactly the input ${shown(canonicalJson(input ?? null))}`,
  };
}

/**
 * The scope of an exec call: the command that runs (scripts already written in) in its
 * normalized form, and every path the call was judged on. `cwd` is only shown.
 */
export function commandScope(command: string, needs: readonly Need[], cwd: string): ApprovalScope {
  const n = normalizeCommand(command);
  const paths = sortedUnique(
    needs.flatMap((x) => (x.kind === "file_read" || x.kind === "file_write" ? [`${x.kind} ${x.path}`] : [])),
  );
  const exactly = n.normalized ? "" : " (exactly this text)";
  return {
    key: `command:${scopeDigest([n.normalized, n.text, paths])}`,
    target: `exec of \`${shown(n.text)}\`${exactly} in ${cwd}`,
  };
}

export interface Coverage {
  allow_once: string;
  allow_session: string;
  allow_always: string;
}

/** What each answer to a request would cover, in the words the prompts show. */
export function describeCoverage(
  rec: { target: string; agent_id: string; identity: string },
  allowAlwaysTtlSeconds: number,
): Coverage {
  return {
    allow_once: `this call only: ${rec.target}`,
    allow_session: `${rec.target} by agent ${rec.agent_id} until it stops`,
    allow_always: `${rec.target} by agents of identity \`${rec.identity}\` for ${duration(allowAlwaysTtlSeconds)}`,
  };
}

/** "1 h", "90 min", "45 s", "2 d": the largest unit that divides the span exactly. */
function duration(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

function keyed(prefix: string, values: string[]): string {
  return values.length === 1 ? `${prefix}:${values[0]}` : `${prefix}s:${canonicalJson(values)}`;
}

function sortedUnique(values: string[]): string[] {
  return [...new Set(values)].sort();
}

function shown(text: string): string {
  const bytes = Buffer.byteLength(text, "utf8");
  if (text.length <= SHOWN_MAX) return inert(text);
  return `${inert(text.slice(0, SHOWN_MAX))}… (${bytes} bytes in all)`;
}

/** C0/C1 controls, DEL and the bidi overrides and isolates, reordering or acting on a terminal. */
const NOT_INERT = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** `text` with every character a terminal would act on written as an escape (`\x1b`, `\u202e`). */
export function inert(text: string): string {
  return text.replace(NOT_INERT, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}
