// security/approval-scope.ts — what a human's standing answer covers. Allow Session and
// Allow Always apply to later calls of the same tool with the same scope, and the scope is
// the call's canonical target as the gate judged it, never its raw input:
//   file tools   the paths as resolved in the container (`path:/workspace/a.txt`)
//   exec         the normalized command (command-scope.ts), every path it was judged on
//                (its working folder, redirection targets, scripts) and the canonical path
//                of every word that could name a file (tools/exec-scope.ts), with the
//                SHA-256 of each file it runs as code (an interpreter's operands, a program
//                run by path: `python3 fix.py` rewritten is another scope), as a digest
//   web_fetch    the host (`host:example.com`)
//   spawn tools  their manifests exactly as written (kernel/spawn-tools.ts gives that scope)
//   other tools  their exact canonical input, as a digest
// Each scope also has a `target`, the sentence a human reads before answering, and
// `describeCoverage` says what each decision would cover in words. Targets are inert text
// (security/terminal-text.ts): a path is a model's choice and a file name may hold any byte
// but "/" and NUL, so a `\r` and ESC[2K in one wiped the real line on the operator's
// terminal and showed another target in its place.

import { createHash } from "node:crypto";
import type { Need } from "../gate/types.js";
import type { ProjectBinding } from "./approval-project.js";
import { CODE_SHOWN_MAX, type ShownCode } from "./approval-shown.js";
import { canonicalJson } from "./canonical-json.js";
import { normalizeCommand, scopeDigest } from "./command-scope.js";
import { inert } from "./terminal-text.js";

export interface ApprovalScope {
  /** Compared for equality when a later call looks for a standing decision. */
  key: string;
  /** What the scope is, for a human: "file_write on /workspace/out.md". */
  target: string;
  /**
   * false: what the call touches could not be pinned down (an exec naming too many words
   * that could be files...), so no standing answer covers it; the human is asked each time.
   */
  reusable?: false;
  /**
   * An exec's code files with their text as read for the digest (approval-shown.ts): what the
   * human reads before answering. Whole here; cut for display once its secrets are blanked (gate/judge.ts).
   */
  code?: readonly ShownCode[];
}

/**
 * A file an exec hands to an interpreter or runs by path (tools/exec-scope.ts), as it is when
 * the scope is worked out: the SHA-256 of its bytes, or null when no regular file is there (none
 * yet, a folder). A standing answer then covers that content only: a rewritten fix.py is
 * another scope, so `python3 fix.py` asks again.
 */
export interface CodeFile {
  path: string;
  sha256: string | null;
  /** The text the digest is of (absent with sha256 null): shown to the human who answers. */
  text?: string;
}

/** The files behind an exec's words (tools/exec-scope.ts): resolved pairs and code files, or why not. */
export type CommandFiles =
  | { resolved: readonly string[]; code?: readonly CodeFile[] }
  | { unresolved: string };

/** Words of a target longer than this are cut for display (the key stays exact). */
const SHOWN_MAX = 300;

/** The scope of a call from its judged needs (file paths, hosts), else its exact input. */
export function approvalScopeOf(tool: string, input: unknown, needs: readonly Need[]): ApprovalScope {
  const paths = sortedUnique(
    needs.flatMap((n) => (n.kind === "file_read" || n.kind === "file_write" ? [n.path] : [])),
  );
  // A web port (80, 443) is the host alone; another port is part of the target (host:8080).
  const hosts = sortedUnique(
    needs.flatMap((n) =>
      n.kind === "network" ? [n.port === 80 || n.port === 443 ? n.host : `${n.host}:${n.port}`] : [],
    ),
  );
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
 * normalized form, every path it was judged on, and what each word that could name a file
 * resolves to (`files`). `cwd` is only shown. When the words could not all be resolved,
 * the scope is not reusable and its target says why.
 */
export function commandScope(
  command: string,
  needs: readonly Need[],
  cwd: string,
  files: CommandFiles,
): ApprovalScope {
  const n = normalizeCommand(command);
  const paths = sortedUnique(
    needs.flatMap((x) => (x.kind === "file_read" || x.kind === "file_write" ? [`${x.kind} ${x.path}`] : [])),
  );
  const exactly = n.normalized ? "" : " (exactly this text)";
  const target = `exec of \`${shown(n.text)}\`${exactly} in ${inert(cwd)}`;
  if ("unresolved" in files) {
    return {
      key: `command-unshared:${scopeDigest([n.normalized, n.text, paths, files.unresolved])}`,
      target: `${target}; no standing answer will cover it: ${shown(files.unresolved)}`,
      reusable: false,
    };
  }
  const code = [...(files.code ?? [])]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((c) => ({ path: c.path, sha256: c.sha256 }));
  const shownCode = (files.code ?? []).flatMap((c) =>
    c.sha256 === null
      ? []
      : [{ path: c.path, sha256: c.sha256, content: c.text ?? "", chars: (c.text ?? "").length }],
  );
  shownCode.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const withCode = shownCode.length === 0 ? {} : { code: shownCode };
  // Without code files the key is the one it always was: standing answers stored before still match.
  const parts =
    code.length === 0
      ? [n.normalized, n.text, paths, files.resolved]
      : [n.normalized, n.text, paths, files.resolved, code];
  // Code a human cannot read whole in the approval is approved for this call only (approval-shown.ts).
  const chars = shownCode.reduce((sum, c) => sum + c.chars, 0);
  if (chars > CODE_SHOWN_MAX) {
    return {
      key: `command-unshared:${scopeDigest(parts)}`,
      target: `${target}${codeShown(code)}; no standing answer will cover it: the code it runs is ${chars} characters, more than the ${CODE_SHOWN_MAX} an approval shows`,
      reusable: false,
      ...withCode,
    };
  }
  return { key: `command:${scopeDigest(parts)}`, target: target + codeShown(code), ...withCode };
}

/** "; running /workspace/fix.py as it is now (sha256 ab12…)": the content a standing answer is bound to. */
function codeShown(code: readonly CodeFile[]): string {
  const files = code.flatMap((c) =>
    c.sha256 === null ? [] : [`${inert(c.path)} as it is now (sha256 ${c.sha256.slice(0, 16)}…)`],
  );
  return files.length === 0 ? "" : `; running ${files.join(", ")}`;
}

export interface Coverage {
  allow_once: string;
  allow_session: string;
  allow_always: string;
}

/** What each answer to a request would cover, in the words the prompts show. */
export function describeCoverage(
  rec: { target: string; agent_id: string; identity: string; project: ProjectBinding | null },
  allowAlwaysTtlSeconds: number,
): Coverage {
  // A request recorded before projects were bound cannot be answered Allow Always (approvals.ts).
  const where = rec.project === null ? "(not available: no project recorded)" : `in ${rec.project.shown}`;
  return {
    allow_once: `this call only: ${rec.target}`,
    allow_session: `${rec.target} by agent ${rec.agent_id} until it stops`,
    allow_always: `${rec.target} by agents of identity \`${rec.identity}\` ${where} for ${duration(allowAlwaysTtlSeconds)}`,
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
