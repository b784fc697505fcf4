// security/canonical-json.ts — the one byte encoding of a JSON value that signatures and
// hashes are computed over (audit entries, checkpoints, approval grants). Object keys are
// sorted by UTF-16 code unit, no whitespace, numbers in JavaScript's shortest form. Two
// encoders drifting apart would make honest records fail to verify, so there is one.

import { AidoError, ErrorCode } from "../errors.js";

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * Encode `value` canonically. Refuses what JSON cannot carry faithfully (NaN, Infinity,
 * bigint, functions, symbols, cycles) instead of silently turning it into null or "{}";
 * `undefined` object members are dropped, as JSON.stringify does.
 */
export function canonicalJson(value: unknown): string {
  return encode(value, "$", new Set());
}

function encode(value: unknown, at: string, seen: Set<object>): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) throw invalid(at, `${value} is not a JSON number`);
      return JSON.stringify(value);
    case "object":
      break;
    default:
      throw invalid(at, `a ${typeof value} cannot be encoded as JSON`);
  }
  const obj = value as object;
  if (seen.has(obj)) throw invalid(at, "cyclic structure");
  seen.add(obj);
  try {
    if (Array.isArray(obj)) {
      return `[${obj.map((v, i) => (v === undefined ? "null" : encode(v, `${at}[${i}]`, seen))).join(",")}]`;
    }
    if (obj instanceof Date) return JSON.stringify(obj.toISOString());
    const rec = obj as Record<string, unknown>;
    const parts: string[] = [];
    for (const key of Object.keys(rec).sort()) {
      const v = rec[key];
      if (v === undefined) continue;
      parts.push(`${JSON.stringify(key)}:${encode(v, `${at}.${key}`, seen)}`);
    }
    return `{${parts.join(",")}}`;
  } finally {
    seen.delete(obj);
  }
}

function invalid(at: string, why: string): AidoError {
  return new AidoError(ErrorCode.invalidInput, `cannot encode value at ${at} canonically: ${why}`, {
    path: at,
  });
}
