// manifest/load.ts — turns YAML text, a file or an object into a validated Manifest.
// Manifests are untrusted input (a model writes its children's): every error names
// the source, the key path and, where the YAML parser knows it, the line.

import { readFileSync, realpathSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { LineCounter, parseDocument } from "yaml";
import { lineOf } from "../config-file.js";
import { AidoError, ErrorCode, formatIssues, type Issue } from "../errors.js";
import { isStrictlyWithin } from "../fs/within.js";
import { type Manifest, ManifestSchema } from "./schema.js";

export class ManifestError extends AidoError {
  readonly issues: readonly Issue[];
  constructor(source: string, issues: readonly Issue[]) {
    super(ErrorCode.manifestInvalid, `invalid manifest ${source}:\n${formatIssues(source, issues)}`, {
      source,
      issues,
    });
    this.issues = issues;
  }
}

/** A loaded manifest with its prompt resolved. */
export interface LoadedManifest extends Manifest {
  /** Where it came from: a file path, or a label such as "spawn_agent input". */
  source: string;
}

const MAX_MANIFEST_BYTES = 256 * 1024;

/** Parse YAML text. `baseDir` is where system_prompt_file resolves (a file's folder). */
export function parseManifestText(text: string, source: string, baseDir?: string): LoadedManifest {
  if (Buffer.byteLength(text) > MAX_MANIFEST_BYTES) {
    throw new ManifestError(source, [
      { path: "", message: `manifest is larger than ${MAX_MANIFEST_BYTES} bytes` },
    ]);
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ManifestError(
      source,
      doc.errors.map((e) => ({
        path: "",
        message: e.message.split("\n")[0] ?? e.message,
        line: lc.linePos(e.pos[0]).line,
      })),
    );
  }
  return validate(doc.toJS({ maxAliasCount: 50 }), source, baseDir, (path) => lineOf(doc, lc, path));
}

export function loadManifestFile(file: string): LoadedManifest {
  const abs = resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, "utf8");
  } catch (e) {
    throw new AidoError(ErrorCode.notFound, `cannot read manifest ${abs}: ${(e as Error).message}`, {
      file: abs,
    });
  }
  return parseManifestText(text, abs, dirname(abs));
}

/** A manifest as it travels in tool inputs and socket params: YAML text or an object. */
export function parseManifestValue(value: unknown, source: string, baseDir?: string): LoadedManifest {
  if (typeof value === "string") return parseManifestText(value, source, baseDir);
  return validate(value, source, baseDir, () => undefined);
}

function validate(
  data: unknown,
  source: string,
  baseDir: string | undefined,
  lineFor: (path: string[]) => number | undefined,
): LoadedManifest {
  const parsed = ManifestSchema.safeParse(data ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i): Issue => {
      const keys = i.code === "unrecognized_keys" ? i.keys : [];
      const path = [...i.path.map(String), ...keys.slice(0, 1)];
      const message = i.code === "unrecognized_keys" ? `unknown key "${keys.join('", "')}"` : i.message;
      const line = lineFor(path);
      return line === undefined ? { path: path.join("."), message } : { path: path.join("."), message, line };
    });
    throw new ManifestError(source, issues);
  }
  const m: LoadedManifest = { ...parsed.data, source };
  if (m.system_prompt_file !== undefined) {
    m.system_prompt = readPromptFile(m.system_prompt_file, source, baseDir, lineFor(["system_prompt_file"]));
  }
  return m;
}

function readPromptFile(file: string, source: string, baseDir: string | undefined, line?: number): string {
  const fail = (message: string): never => {
    const issue: Issue =
      line === undefined
        ? { path: "system_prompt_file", message }
        : { path: "system_prompt_file", message, line };
    throw new ManifestError(source, [issue]);
  };
  if (baseDir === undefined) return fail("system_prompt_file needs a manifest file to resolve against");
  if (isAbsolute(file)) return fail("must be relative to the manifest's folder");
  let root: string;
  let target: string;
  try {
    root = realpathSync(baseDir);
    target = realpathSync(resolve(baseDir, file));
  } catch {
    return fail(`cannot read ${file} next to the manifest`);
  }
  if (!isStrictlyWithin(root, target)) {
    return fail(`${file} escapes the manifest's folder`);
  }
  return readFileSync(target, "utf8");
}
