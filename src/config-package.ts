// config-package.ts — what the installed Aido package tells the config: where the package
// is (its bundled manifests/, skills/, sandbox-image/ and dist/ui) and the models its
// shipped manifests name, the default `models.allowed` when the operator sets none.

import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseDocument } from "yaml";

/**
 * The default `models.allowed`: the models the manifests shipped in manifests/ name, and
 * AIDO_MODEL when set. Only the `model:` key is read; a file that does not parse adds none.
 */
export function shippedModels(packageRoot: string, override: string | undefined): string[] {
  const models = new Set<string>();
  const dir = join(packageRoot, "manifests");
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith(".yaml") || f.endsWith(".yml"));
  } catch {
    // no shipped manifests: only AIDO_MODEL
  }
  for (const f of files.sort()) {
    try {
      const model = (parseDocument(readFileSync(join(dir, f), "utf8")).toJS() as { model?: unknown })?.model;
      if (typeof model === "string" && model !== "") models.add(model);
    } catch {
      // not this file's model
    }
  }
  if (override) models.add(override);
  return [...models];
}

export function findPackageRoot(): string {
  // src/config-package.ts and dist/config-package.js both sit one level below the package root.
  return resolve(new URL(".", import.meta.url).pathname, "..");
}
