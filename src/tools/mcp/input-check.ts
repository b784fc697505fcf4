// tools/mcp/input-check.ts — a call's input checked against the PINNED inputSchema of an
// external MCP tool, before the server sees anything; each issue names its field. The schema
// is a hostile party's JSON Schema, so each is compiled alone, by an Ajv of its own: in one
// shared instance a schema's `$id` is registered for good (the same tool compiled again in
// a later goal fails "already exists"), a server can claim another server's `$id` to break
// its tools, and a `$ref` can resolve into another server's schema. A `$ref` outside the
// schema itself (anything but `#…`) is refused: nothing is fetched or looked up elsewhere.
// Patterns run under a watchdog (bounded-regexp.ts). Checks are kept by pin hash: the same
// definition compiles once, whatever the goal.

import AjvModule from "ajv";
import Ajv2019Module from "ajv/dist/2019.js";
import Ajv2020Module from "ajv/dist/2020.js";
import { z } from "zod";
import type { JsonValue } from "../../security/canonical-json.js";
import { inert } from "../../security/terminal-text.js";
import { boundedRegExp, withPatternBudget } from "./bounded-regexp.js";
import type { McpToolDefinition } from "./definitions.js";

type Args = Record<string, unknown>;

// ajv is CommonJS: its class is the module's default export, or the module itself.
const Ajv = ((AjvModule as unknown as { default?: unknown }).default ??
  AjvModule) as typeof AjvModule.default;
const Ajv2019 = ((Ajv2019Module as unknown as { default?: unknown }).default ?? Ajv2019Module) as typeof Ajv;
const Ajv2020 = ((Ajv2020Module as unknown as { default?: unknown }).default ?? Ajv2020Module) as typeof Ajv;

/**
 * The Ajv class for the dialect a schema declares: 2020-12 (what newer MCP servers emit),
 * 2019-09, else draft-07 (the SDK's zod-to-json-schema output, and no `$schema` at all).
 */
function ajvFor(schema: Record<string, unknown>): typeof Ajv {
  const dialect = typeof schema.$schema === "string" ? schema.$schema : "";
  if (dialect.includes("/draft/2020-12/")) return Ajv2020;
  if (dialect.includes("/draft/2019-09/")) return Ajv2019;
  return Ajv;
}
type Validate = ReturnType<InstanceType<typeof Ajv>["compile"]>;

/** Compiled input checks by pin hash (the same definition compiles once, whatever the goal). */
const checks = new Map<string, z.ZodType<Args>>();
/** Pins kept compiled (the oldest goes first; a re-approval makes new hashes). */
const CHECKS_KEPT = 256;

/** The input check of a pinned definition (`hash` its pin), compiled once per hash. */
export function inputCheck(def: McpToolDefinition, hash: string): z.ZodType<Args> {
  let check = checks.get(hash);
  if (!check) {
    check = compileCheck(def);
    checks.set(hash, check);
    if (checks.size > CHECKS_KEPT) checks.delete(checks.keys().next().value as string);
  }
  return check;
}

/** A zod schema whose check is ajv against the pinned inputSchema; each issue names its field. */
function compileCheck(def: McpToolDefinition): z.ZodType<Args> {
  let validate: Validate;
  try {
    const outside = outsideRef(def.inputSchema, "");
    if (outside)
      throw new Error(
        `it refers outside itself ($ref "${inert(outside.ref.slice(0, 200))}" at ${inert(outside.at.slice(0, 200)) || "/"}); only references within the schema (#…) are followed`,
      );
    const Dialect = ajvFor(def.inputSchema);
    const ajv = new Dialect({
      allErrors: true,
      strict: false,
      validateFormats: false,
      code: { regExp: boundedRegExp },
    });
    validate = ajv.compile({ type: "object", ...def.inputSchema });
  } catch (e) {
    // A schema ajv cannot compile validates nothing: every call is refused, naming why.
    const why = e instanceof Error ? e.message : String(e);
    validate = Object.assign(() => false, {
      errors: [
        {
          instancePath: "",
          message: `the server's inputSchema for this tool is not a valid JSON Schema: ${inert(why.slice(0, 300))}`,
        },
      ],
    }) as unknown as Validate;
  }
  return z.record(z.string(), z.unknown()).superRefine((value, ctx) => {
    if (withPatternBudget(() => validate(value))) return;
    for (const e of (validate.errors ?? []).slice(0, 5)) {
      const path = e.instancePath.split("/").filter((p) => p !== "");
      const missing = (e.params as { missingProperty?: string } | undefined)?.missingProperty;
      const extra = (e.params as { additionalProperty?: string } | undefined)?.additionalProperty;
      if (missing) path.push(missing);
      if (extra) path.push(extra);
      ctx.addIssue({
        code: "custom",
        path,
        message: extra ? `unknown property "${extra}"` : (e.message ?? "does not match the schema"),
      });
    }
  });
}

/** Keywords whose values are data, not schemas: a `$ref` string there refers to nothing. */
const DATA_KEYWORDS = new Set(["const", "enum", "default", "examples"]);

/** The first reference of `schema` that leads outside it (`$ref` not starting with "#"). */
function outsideRef(schema: JsonValue, at: string): { ref: string; at: string } | undefined {
  if (Array.isArray(schema)) {
    for (const [i, v] of schema.entries()) {
      const found = outsideRef(v, `${at}/${i}`);
      if (found) return found;
    }
    return undefined;
  }
  if (schema === null || typeof schema !== "object") return undefined;
  for (const [k, v] of Object.entries(schema)) {
    if ((k === "$ref" || k === "$dynamicRef" || k === "$recursiveRef") && typeof v === "string") {
      if (!v.startsWith("#")) return { ref: v, at };
    } else if (!DATA_KEYWORDS.has(k)) {
      const found = outsideRef(v, `${at}/${k}`);
      if (found) return found;
    }
  }
  return undefined;
}
