// security/approval-scope.ts — what an approval answer covers. Allow Session and Allow
// Always apply to later calls of the same tool with the same scope key: the path a file
// tool touches, the command exec runs, the URL web_fetch reads. Inputs without one of
// those are scoped to their exact canonical content, so an answer never stretches to a
// different call.

import { createHash } from "node:crypto";
import { canonicalJson } from "./canonical-json.js";

export function approvalScopeKey(tool: string, input: unknown): string {
  if (input !== null && typeof input === "object" && !Array.isArray(input)) {
    const rec = input as Record<string, unknown>;
    if (typeof rec.path === "string") return `path:${rec.path}`;
    if (typeof rec.command === "string") return `command:${rec.command}`;
    if (typeof rec.url === "string") return `url:${rec.url}`;
    if (Array.isArray(rec.paths) && rec.paths.every((p) => typeof p === "string")) {
      return `paths:${canonicalJson([...rec.paths].sort())}`;
    }
  }
  const digest = createHash("sha256")
    .update(`${tool}\u0000${canonicalJson(input ?? null)}`)
    .digest("hex");
  return `input:${digest.slice(0, 32)}`;
}
