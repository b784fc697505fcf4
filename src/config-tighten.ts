// config-tighten.ts — a project's .aido/config.yaml over the operator's
// $AIDO_HOME/config.yaml, where it may only tighten: lower numbers, more deny/confirm rules,
// protections turned on, fewer MCP servers and fewer network entries for them. What only the
// operator may set is refused here, naming the project file and the key.

import { type ConfigFile, DEFAULTS } from "./config-schema.js";
import { AidoError, ErrorCode } from "./errors.js";
import { canonicalJson } from "./security/canonical-json.js";

const min = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined ? b : b === undefined ? a : Math.min(a, b);

/** The built-in default of a file key (`web_fetch.max_bytes` -> DEFAULTS.webFetch.maxBytes), if numeric. */
function defaultOf(section: string, key: string): number | undefined {
  const camel = (s: string): string => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  const v = (DEFAULTS as Record<string, Record<string, unknown> | undefined>)[camel(section)]?.[camel(key)];
  return typeof v === "number" ? v : undefined;
}

/** The value the operator's file implies for a number it does not set. */
function operatorDefault(base: ConfigFile, section: string, key: string): number | undefined {
  // The snapshot store's cap follows the workspace cap unless set on its own.
  if (section === "sandbox" && key === "snapshots_max_mb")
    return base.sandbox?.workspace_max_mb ?? DEFAULTS.sandbox.workspaceMaxMb;
  return defaultOf(section, key);
}

/**
 * Layer a project file over the operator's: numbers can only go down, deny/confirm
 * rules only accumulate, the grant ceiling only narrows (checked in security/ by
 * narrowGrants when the ceiling is used), booleans that protect can only turn on.
 */
export function tightenConfig(base: ConfigFile, project: ConfigFile, projectFile: string): ConfigFile {
  const out: ConfigFile = structuredClone(base);
  const numericSections = [
    "inference",
    "limits",
    "approvals",
    "sandbox",
    "web_fetch",
    "egress",
    "memory",
    "daemon",
    "ui",
  ] as const;
  for (const section of numericSections) {
    const p = project[section] as Record<string, unknown> | undefined;
    if (!p) continue;
    const sections = out as Record<string, Record<string, unknown> | undefined>;
    const o = sections[section] ?? {};
    sections[section] = o;
    for (const [k, v] of Object.entries(p)) {
      if (section === "ui" && k === "port") {
        // Where the dashboard listens is the operator's choice, not a limit to lower.
        throw operatorOnly(projectFile, "ui.port");
      }
      // Where the operator set nothing, the default is what the project may only lower.
      if (typeof v === "number")
        o[k] = min((o[k] as number | undefined) ?? operatorDefault(base, section, k), v);
      else if (section === "sandbox" && k === "landlock" && v === "on")
        o[k] = v; // turning it on tightens
      else if (o[k] === undefined || JSON.stringify(o[k]) === JSON.stringify(v)) {
        // A project may restate the operator's choice, or choose where the operator did not...
        if (section === "sandbox" && k === "image") {
          throw operatorOnly(projectFile, "sandbox.image");
        }
        if (section === "sandbox" && k === "landlock" && o[k] === undefined) {
          throw refused(
            projectFile,
            "sandbox.landlock",
            `sandbox.landlock can only be turned off in the operator's config`,
          );
        }
        if (section === "egress" && k === "hosts") {
          // Pointing a name elsewhere is never tighter: the operator's resolution stands.
          throw operatorOnly(projectFile, "egress.hosts");
        }
        if (
          section === "memory" &&
          o[k] === undefined &&
          (k === "embedding_model" || (k === "embedder" && v !== "local"))
        ) {
          // Where memories and queries are sent (a provider, on the operator's key, charged
          // to no budget) is the operator's choice: a project may keep them local only.
          throw refused(
            projectFile,
            `memory.${k}`,
            `memory.${k} can only be set in the operator's config (it sends memories to an embeddings endpoint)`,
          );
        }
        if (section === "daemon" && k === "manifest_dirs") {
          throw operatorOnly(projectFile, "daemon.manifest_dirs");
        }
        o[k] = v;
      } else {
        // ...but never override it with something other than a lower number.
        throw refused(
          projectFile,
          `${section}.${k}`,
          `${section}.${k} may only tighten the operator's config (it differs from it)`,
        );
      }
    }
  }
  if (project.policy) {
    out.policy ??= {};
    out.policy.deny = [...(out.policy.deny ?? []), ...(project.policy.deny ?? [])];
    out.policy.confirm = [...(out.policy.confirm ?? []), ...(project.policy.confirm ?? [])];
    if (project.policy.snapshot_before_mutation) out.policy.snapshot_before_mutation = true;
    // On by default: only an operator who turned snapshots off lets a project say off too.
    if (
      project.policy.snapshot_before_mutation === false &&
      base.policy?.snapshot_before_mutation !== false
    ) {
      throw refused(
        projectFile,
        "policy.snapshot_before_mutation",
        `policy.snapshot_before_mutation cannot be turned off`,
      );
    }
  }
  if (project.mcp_servers) out.mcp_servers = keptServers(base, project, projectFile);
  if (project.cluster) {
    // Which cluster a daemon joins is the operator's choice, never a project's.
    throw operatorOnly(projectFile, "cluster");
  }
  // grants are not merged here: each file's list stays a separate ceiling (see loadConfig).
  return out;
}

/**
 * A project file's `mcp_servers`: the operator's servers the project keeps, each restated
 * exactly as the operator declared it but for `network`, whose entries it may only remove
 * (a subset; omitted: none); the operator's others are removed. A server the
 * operator did not declare, or one restated differently, is refused: a project can only
 * take servers away.
 */
function keptServers(base: ConfigFile, project: ConfigFile, projectFile: string): ConfigFile["mcp_servers"] {
  const kept: NonNullable<ConfigFile["mcp_servers"]> = {};
  for (const [name, server] of Object.entries(project.mcp_servers ?? {})) {
    const declared = base.mcp_servers?.[name];
    if (declared === undefined) {
      throw refused(
        projectFile,
        `mcp_servers.${name}`,
        `mcp_servers.${name} is not a server the operator's config declares (a project may only remove servers)`,
      );
    }
    // Its network entries may be fewer (omitted: none), never other.
    const { network: declaredNetwork, ...declaredRest } = declared;
    const { network, ...rest } = server;
    if (canonicalJson(declaredRest) !== canonicalJson(rest)) {
      throw refused(
        projectFile,
        `mcp_servers.${name}`,
        `mcp_servers.${name} may only restate the operator's declaration (it differs from it)`,
      );
    }
    const added = (network ?? []).find((n) => !(declaredNetwork ?? []).includes(n));
    if (added !== undefined) {
      throw refused(
        projectFile,
        `mcp_servers.${name}.network`,
        `mcp_servers.${name}.network: "${added}" is not one of the operator's entries for it (a project may only remove entries)`,
      );
    }
    kept[name] = network === undefined ? declaredRest : { ...declaredRest, network };
  }
  return kept;
}

/** A project file's key that may not say what it says: the error names the file and the key. */
function refused(projectFile: string, key: string, message: string): AidoError {
  return new AidoError(ErrorCode.configInvalid, `${projectFile}: ${message}`, { file: projectFile, key });
}

/** A key only the operator's file may set, in a project file. */
function operatorOnly(projectFile: string, key: string): AidoError {
  return refused(projectFile, key, `${key} can only be set in the operator's config`);
}
