// tools/mcp/definitions.ts — what an external MCP server says a tool is, and how it is
// pinned. A definition is {name, description, inputSchema} plus annotations; everything in
// it comes from a party Aido does not trust. Its hash (SHA-256 of the canonical JSON of
// name, description and inputSchema) is what the operator approves: a server that later
// changes a description (tool poisoning after approval, a "rug pull") or a schema changes
// the hash, and the tool is disabled until the operator approves it again.
// Annotations (readOnlyHint...) are not hashed: they are hints shown to the operator, never
// a reason to skip a check. Every offered tool goes into each turn's prompt, so its size is
// capped (admitTools): its inputSchema per tool, and the tools as offered (names,
// descriptions, schemas) for all of one server's tools.

import { createHash } from "node:crypto";
import { unifiedDiff } from "../../sandbox/text-diff.js";
import { canonicalJson, type JsonValue } from "../../security/canonical-json.js";
import { inert } from "../../security/terminal-text.js";

/** A tool as a server lists it (tools/list), reduced to what Aido keeps. */
export interface McpToolDefinition {
  name: string;
  description: string;
  inputSchema: { [key: string]: JsonValue };
  /** The server's own hints (readOnlyHint, destructiveHint...): untrusted, not pinned. */
  annotations?: { [key: string]: JsonValue };
}

/** The SHA-256 (hex) of the canonical JSON of the parts of a definition a pin covers. */
export function definitionHash(d: McpToolDefinition): string {
  const pinned = { name: d.name, description: d.description, inputSchema: d.inputSchema };
  return createHash("sha256").update(canonicalJson(pinned)).digest("hex");
}

/** A definition from a tools/list entry: only the fields Aido uses, JSON-clean. */
export function definitionOf(tool: {
  name: string;
  description?: string | undefined;
  inputSchema: unknown;
  annotations?: unknown;
}): McpToolDefinition {
  const d: McpToolDefinition = {
    name: tool.name,
    description: tool.description ?? "",
    inputSchema: jsonClean(tool.inputSchema) as { [key: string]: JsonValue },
  };
  if (tool.annotations !== undefined && tool.annotations !== null)
    d.annotations = jsonClean(tool.annotations) as { [key: string]: JsonValue };
  return d;
}

function jsonClean(v: unknown): JsonValue {
  return JSON.parse(JSON.stringify(v ?? {})) as JsonValue;
}

/** Largest inputSchema (bytes of its canonical JSON) a tool may have to be offered at all. */
export const SCHEMA_MAX_BYTES = 16 * 1024;
/**
 * Largest sum of one server's tools as a model is shown them (offeredBytes): the tools past
 * it (listing order) are not offered. The descriptions and a share per tool count as well
 * as the schemas: many small schemas with long descriptions, or thousands of empty tools,
 * would otherwise put megabytes into each turn.
 */
export const SERVER_TOOLS_MAX_BYTES = 128 * 1024;
/**
 * What each offered tool costs besides its name, description and schema: the note after
 * its description (tool-def.ts), its name's `mcp__<server>__` prefix, and a provider
 * API's wrapping of one tool.
 */
const TOOL_OFFER_OVERHEAD_BYTES = 128;

/** A tool refused for its size. */
export interface OversizedTool {
  /** Its name as listed (the server's text: see shownName). */
  name: string;
  /** definitionHash() of what was refused (one refusal is reported once per definition). */
  hash: string;
  /**
   * The size counted against `cap`: its inputSchema's canonical JSON (`limit` tool), or the
   * whole tool as offered (offeredBytes, `limit` server).
   */
  bytes: number;
  /** The cap it is over: SCHEMA_MAX_BYTES (`limit` tool) or SERVER_TOOLS_MAX_BYTES (`limit` server). */
  cap: number;
  limit: "tool" | "server";
}

/**
 * The bytes a tool puts into each turn's prompt, as counted against SERVER_TOOLS_MAX_BYTES:
 * its name, its description as a model is shown it (cleanDescription), its inputSchema's
 * canonical JSON, and TOOL_OFFER_OVERHEAD_BYTES.
 */
function offeredBytes(d: McpToolDefinition, schemaBytes: number): number {
  return (
    Buffer.byteLength(d.name) +
    Buffer.byteLength(cleanDescription(d.description)) +
    schemaBytes +
    TOOL_OFFER_OVERHEAD_BYTES
  );
}

/**
 * A server's listing split into the tools that may be offered and those too large to go
 * into a prompt: an inputSchema over SCHEMA_MAX_BYTES alone, or a tool bringing the sum of
 * the server's admitted tools as offered (offeredBytes, in the server's listing order) over
 * SERVER_TOOLS_MAX_BYTES.
 */
export function admitTools(listed: readonly McpToolDefinition[]): {
  admitted: Map<string, McpToolDefinition>;
  oversized: Map<string, OversizedTool>;
} {
  const admitted = new Map<string, McpToolDefinition>();
  const oversized = new Map<string, OversizedTool>();
  let total = 0;
  // A name listed twice is the last definition (what a map of the listing kept before).
  for (const d of new Map(listed.map((x) => [x.name, x])).values()) {
    const schemaBytes = Buffer.byteLength(canonicalJson(d.inputSchema));
    if (schemaBytes > SCHEMA_MAX_BYTES) {
      oversized.set(d.name, {
        name: d.name,
        hash: definitionHash(d),
        bytes: schemaBytes,
        cap: SCHEMA_MAX_BYTES,
        limit: "tool",
      });
      continue;
    }
    const bytes = offeredBytes(d, schemaBytes);
    if (total + bytes > SERVER_TOOLS_MAX_BYTES) {
      oversized.set(d.name, {
        name: d.name,
        hash: definitionHash(d),
        bytes,
        cap: SERVER_TOOLS_MAX_BYTES,
        limit: "server",
      });
      continue;
    }
    total += bytes;
    admitted.set(d.name, d);
  }
  return { admitted, oversized };
}

/** Longest tool name written into a refusal or an audit entry (a server's names are not bounded). */
const NAME_SHOWN_MAX = 200;

/** A tool name as a refusal or an audit entry carries it: inert and bounded. */
export function shownName(name: string): string {
  return inert(name).slice(0, NAME_SHOWN_MAX);
}

/** Why an oversized tool is not offered, for a refusal's message. */
export function oversizedReason(server: string, t: OversizedTool): string {
  const tool = shownName(t.name);
  return t.limit === "tool"
    ? `tool ${tool} of MCP server ${server} has an inputSchema of ${t.bytes} bytes, over the cap of ${t.cap} bytes per tool; it is not offered`
    : `tool ${tool} of MCP server ${server} takes ${t.bytes} bytes as offered to a model (name, description, inputSchema), which would bring the server's tools over the cap of ${t.cap} bytes per server; it is not offered`;
}

/** A readable diff of two definitions of one tool (pinned, live), for `aido mcp list` and re-approval. */
export function definitionDiff(pinned: McpToolDefinition, live: McpToolDefinition): string {
  const text = (d: McpToolDefinition) =>
    `${JSON.stringify({ name: d.name, description: d.description, inputSchema: d.inputSchema }, null, 2)}\n`;
  return (
    unifiedDiff(`tool ${live.name}`, text(pinned), text(live)) ??
    `tool ${live.name}: the definition changed (too large to show a diff)`
  );
}

/** Which pinned parts differ ("description", "inputSchema"), for a refusal's message. */
export function changedParts(pinned: McpToolDefinition, live: McpToolDefinition): string[] {
  const parts: string[] = [];
  if (pinned.description !== live.description) parts.push("description");
  if (canonicalJson(pinned.inputSchema) !== canonicalJson(live.inputSchema)) parts.push("inputSchema");
  return parts;
}

/** Longest description a model is shown; the rest is cut (a server can write anything there). */
export const DESCRIPTION_MAX = 2000;

/**
 * Text with what a human reading it would not see removed: control characters, zero-width
 * and bidi characters, tag characters and the other format characters, variation
 * selectors, the grapheme joiner and the Hangul fillers.
 */
export function visibleText(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, "")
    .replace(/\p{Cf}/gu, "")
    .replace(/\p{Variation_Selector}/gu, "")
    .replace(/[\u115f\u1160\u3164\uffa0]/g, "")
    .replaceAll("\u034f", "");
}

/**
 * A description as a model sees it: invisible text removed (visibleText), whitespace runs
 * folded, capped at DESCRIPTION_MAX characters.
 */
export function cleanDescription(text: string): string {
  const visible = visibleText(text)
    .replace(/[ \t]+/g, " ")
    .trim();
  return visible.length > DESCRIPTION_MAX
    ? `${visible.slice(0, DESCRIPTION_MAX)}… [description cut]`
    : visible;
}

/**
 * An inputSchema as a model is shown it: every key and string (property descriptions,
 * titles, enums, defaults: text a server can poison like a description) with invisible
 * text removed. Validation uses the pinned schema as it is; a value the model copies from a
 * cleaned string then fails it, which is the refusal it deserves.
 */
export function visibleSchema(v: JsonValue): JsonValue {
  if (typeof v === "string") return visibleText(v);
  if (Array.isArray(v)) return v.map(visibleSchema);
  if (v !== null && typeof v === "object")
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [visibleText(k), visibleSchema(x)]));
  return v;
}
