// manifest/roles.ts — the catalog of roles an agent that can spawn is shown: the
// manifests the operator keeps in daemon.manifest_dirs (default: the ones shipped in
// manifests/), each with its description and what it holds, for the model to use as the
// template of a child's manifest. Read once when the runtime opens. A file that does not
// parse is left out (the daemon reports it when someone asks for it by path); the first
// directory that has a name wins, as manifest_path lookups do.

import { readdirSync } from "node:fs";
import { join } from "node:path";
import { formatGrant } from "../security/grants.js";
import { type LoadedManifest, loadManifestFile } from "./load.js";

export interface Role {
  name: string;
  description?: string;
  manifest: LoadedManifest;
}

export function loadRoles(dirs: readonly string[]): Role[] {
  const byName = new Map<string, Role>();
  for (const dir of dirs) {
    let files: string[];
    try {
      files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
    } catch {
      continue; // a configured folder that does not exist offers no roles
    }
    for (const f of files.sort()) {
      let m: LoadedManifest;
      try {
        m = loadManifestFile(join(dir, f));
      } catch {
        continue;
      }
      if (byName.has(m.name)) continue;
      byName.set(
        m.name,
        m.description === undefined
          ? { name: m.name, manifest: m }
          : { name: m.name, description: m.description, manifest: m },
      );
    }
  }
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** One role as the prompt shows it: name and description, then what its manifest holds. */
export function describeRole(r: Role): string {
  const m = r.manifest;
  const held: string[] = [
    `capabilities: [${m.capabilities.map((g) => JSON.stringify(formatGrant(g))).join(", ")}]`,
  ];
  if (m.skills) held.push(`skills: [${m.skills.join(", ")}]`);
  if (m.approval_required.length > 0) held.push(`approval_required: [${m.approval_required.join(", ")}]`);
  if (m.budget) held.push(`budget: {max_tokens: ${m.budget.max_tokens}}`);
  const limits = Object.entries(m.limits ?? {}).filter(([, v]) => v !== undefined);
  if (limits.length > 0) held.push(`limits: {${limits.map(([k, v]) => `${k}: ${v}`).join(", ")}}`);
  if (m.memory?.episodic === false) held.push("memory: {episodic: false}");
  return `- ${r.name}: ${r.description ?? "(no description)"}\n  ${held.join("; ")}`;
}
