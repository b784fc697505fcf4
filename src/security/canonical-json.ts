// security/canonical-json.ts — the one byte encoding of a JSON value that signatures and
// hashes are computed over (audit entries, checkpoints, approval grants). Object keys are
// sorted by UTF-16 code unit, no whitespace, numbers in JavaScript's shortest form. Two
// encoders drifting apart would make honest records fail to verify, so there is one.

import { AidoError, ErrorCode } from "../errors.js";

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * Encode `value` canonically. Refuses what JSON cannot carry faithfully (NaN, Infinity,
 * bigint, functions, symbols, cycles, nesting past CANONICAL_MAX_DEPTH) instead of silently
 * turning it into null or "{}" or overflowing the stack;
 * `undefined` object members are dropped, as JSON.stringify does.
 */
export function canonicalJson(value: unknown): string {
  return encode(value, [], new Set());
}

/**
 * How deep a value may nest to be encoded. The encoder recurses, and a stack overflow
 * (near 4,000 levels) would surface as a bare RangeError; past this it refuses with a
 * reason instead. Tool arguments stop far sooner, at the gate (gate/argument-depth.ts).
 */
const CANONICAL_MAX_DEPTH = 1000;

/**
 * `path` holds the keys and indexes from the root to `value`; it is turned into text
 * ("$.a[0]") only when a value is refused, so the common case builds no path strings.
 */
function encode(value: unknown, path: (string | number)[], seen: Set<object>): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) throw invalid(path, `${value} is not a JSON number`);
      return JSON.stringify(value);
    case "object":
      break;
    default:
      throw invalid(path, `a ${typeof value} cannot be encoded as JSON`);
  }
  const obj = value as object;
  if (seen.has(obj)) throw invalid(path, "cyclic structure");
  if (path.length >= CANONICAL_MAX_DEPTH) {
    throw new AidoError(
      ErrorCode.invalidInput,
      `cannot encode value canonically: it nests deeper than ${CANONICAL_MAX_DEPTH} levels`,
      { max_depth: CANONICAL_MAX_DEPTH },
    );
  }
  seen.add(obj);
  try {
    if (Array.isArray(obj)) {
      let out = "[";
      for (let i = 0; i < obj.length; i++) {
        const v: unknown = obj[i];
        if (i > 0) out += ",";
        // A hole encodes as nothing, as Array.prototype.map + join always did here.
        if (!(i in obj)) continue;
        if (v === undefined) out += "null";
        else {
          path.push(i);
          out += encode(v, path, seen);
          path.pop();
        }
      }
      return `${out}]`;
    }
    if (obj instanceof Date) return JSON.stringify(obj.toISOString());
    const rec = obj as Record<string, unknown>;
    let out = "{";
    let first = true;
    for (const key of Object.keys(rec).sort()) {
      const v = rec[key];
      if (v === undefined) continue;
      path.push(key);
      const encoded = encode(v, path, seen);
      path.pop();
      out += `${first ? "" : ","}${JSON.stringify(key)}:${encoded}`;
      first = false;
    }
    return `${out}}`;
  } finally {
    seen.delete(obj);
  }
}

function invalid(path: readonly (string | number)[], why: string): AidoError {
  const at = `$${path.map((p) => (typeof p === "number" ? `[${p}]` : `.${p}`)).join("")}`;
  return new AidoError(ErrorCode.invalidInput, `cannot encode value at ${at} canonically: ${why}`, {
    path: at,
  });
}
