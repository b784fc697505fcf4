// config-file.ts — reading one config.yaml strictly: a YAML error, a key the schema
// (config-schema.ts) refuses and a problem a further check finds are each reported with the
// file, the key path and the line. Layering a project's file over the operator's is
// config-tighten.ts's; the typed Config built from them and the environment config.ts's.

import { readFileSync } from "node:fs";
import { isMap, LineCounter, parseDocument } from "yaml";
import { type ConfigFile, ConfigFileSchema } from "./config-schema.js";
import { AidoError, ErrorCode, formatIssues, type Issue } from "./errors.js";

/** A problem a check beyond the schema finds in a parsed file: its key path and why. */
export interface FileProblem {
  path: string[];
  message: string;
}

/**
 * Parse one YAML config file strictly; errors name the file, the key path and the line.
 * `check` looks further at what parsed (what needs the host: paths that must exist), its
 * problems reported the same way.
 */
export function readConfigFile(file: string, check?: (parsed: ConfigFile) => FileProblem[]): ConfigFile {
  const text = readFileSync(file, "utf8");
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((e) => ({ path: "", message: e.message, line: lc.linePos(e.pos[0]).line }));
    throw new AidoError(
      ErrorCode.configInvalid,
      `invalid config file ${file}:\n${formatIssues(file, issues)}`,
      { file },
    );
  }
  const data = doc.contents === null ? {} : doc.toJS();
  const parsed = ConfigFileSchema.safeParse(data);
  if (!parsed.success) {
    const issues: Issue[] = parsed.error.issues.map((i) => {
      const keys = i.code === "unrecognized_keys" ? i.keys : [];
      const path = [...i.path, ...keys.slice(0, 1)].map(String);
      const line = lineOf(doc, lc, path);
      const message = i.code === "unrecognized_keys" ? `unknown key "${keys.join('", "')}"` : i.message;
      return line === undefined ? { path: path.join("."), message } : { path: path.join("."), message, line };
    });
    throw new AidoError(
      ErrorCode.configInvalid,
      `invalid config file ${file}:\n${formatIssues(file, issues)}`,
      {
        file,
        issues,
      },
    );
  }
  const problems = check?.(parsed.data) ?? [];
  if (problems.length > 0) {
    const issues: Issue[] = problems.map((p) => {
      const line = lineOf(doc, lc, p.path);
      const path = p.path.join(".");
      return line === undefined ? { path, message: p.message } : { path, message: p.message, line };
    });
    throw new AidoError(
      ErrorCode.configInvalid,
      `invalid config file ${file}:\n${formatIssues(file, issues)}`,
      { file, issues },
    );
  }
  return parsed.data;
}

/** Line of a key path in a YAML document, for error messages. */
export function lineOf(
  doc: ReturnType<typeof parseDocument>,
  lc: LineCounter,
  path: readonly string[],
): number | undefined {
  let node: unknown = doc.contents;
  let line: number | undefined;
  for (const key of path) {
    if (!node || typeof node !== "object") break;
    const n = node as { items?: unknown[]; range?: [number, number, number] };
    if (isMap(node)) {
      const pair = node.items.find((p) => String((p.key as { value?: unknown })?.value ?? p.key) === key);
      if (!pair) break;
      const k = pair.key as { range?: [number, number, number] };
      if (k?.range) line = lc.linePos(k.range[0]).line;
      node = pair.value;
    } else if (Array.isArray(n.items)) {
      const item = n.items[Number(key)] as { range?: [number, number, number] } | undefined;
      if (!item) break;
      if (item.range) line = lc.linePos(item.range[0]).line;
      node = item;
    } else break;
  }
  return line;
}
