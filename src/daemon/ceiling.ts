// daemon/ceiling.ts — what a socket client may start. Anyone who can open the socket can
// send a manifest, so a manifest that arrives here (goal.submit, agent.spawn,
// agent.spawn_and_run) must fit the operator's ceiling: config.grantCeilings when the
// operator configured one, otherwise the grants of the bootstrap manifest shipped with
// Aido — never more. If that ceiling cannot be read, it is empty (fail closed: only a
// manifest with no grants at all gets through). The refusal names each offending grant.
//
// manifest_path: the daemon reads manifest files only from config.daemon.manifestDirs.
// Both the directory and the file are resolved with realpath and compared on path
// segment boundaries, so "../", a sibling folder sharing a prefix ("/m" vs "/m-evil") and
// a symlink pointing out of the directory are all refused.

import { realpathSync, statSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import type { Config } from "../config.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { isStrictlyWithin } from "../fs/within.js";
import { type LoadedManifest, loadManifestFile } from "../manifest/load.js";
import { formatGrant } from "../security/grants.js";
import { grantsWithin } from "../security/narrowing.js";

export interface SocketCeiling {
  /** Each list must cover every grant (the same semantics as config.grantCeilings). */
  lists: string[][];
  /** Where the ceiling comes from, for refusal messages. */
  source: string;
}

export function bootstrapManifestPath(config: Config): string {
  return join(config.packageRoot, "manifests", "bootstrap.yaml");
}

/** The ceiling for everything started over the socket (read once, at daemon start). */
export function socketCeiling(config: Config, log: (m: string) => void = () => {}): SocketCeiling {
  if (config.grantCeilings.length > 0) {
    return {
      lists: config.grantCeilings.map((l) => [...l]),
      source: "the operator's configured grants ceiling",
    };
  }
  const file = bootstrapManifestPath(config);
  try {
    const bootstrap = loadManifestFile(file);
    return {
      lists: [bootstrap.capabilities.map(formatGrant)],
      source: "the bootstrap manifest's grants (no grants ceiling is configured in config.yaml)",
    };
  } catch (e) {
    log(`cannot read the bootstrap manifest (${errorMessage(e)}): socket manifests may hold no grants`);
    return { lists: [[]], source: "an empty ceiling (the bootstrap manifest could not be read)" };
  }
}

/** Refuse (-32001, capability_denied) a manifest holding any grant beyond the ceiling. */
export function enforceCeiling(ceiling: SocketCeiling, manifest: LoadedManifest): void {
  try {
    grantsWithin(ceiling.lists, manifest.capabilities);
  } catch (e) {
    if (!(e instanceof AidoError) || e.code !== ErrorCode.capabilityDenied) throw e;
    const offending = (e.details.offending as string[] | undefined) ?? [];
    throw new AidoError(
      ErrorCode.capabilityDenied,
      `manifest "${manifest.name}" asks for capabilities beyond ${ceiling.source}: ${offending
        .map((g) => `"${g}"`)
        .join(", ")}`,
      { manifest: manifest.name, offending },
    );
  }
}

/**
 * Load a manifest named by a client: an absolute path inside one of `dirs`, or a path
 * relative to the first of `dirs` that has it. Refused with capability_denied when it
 * resolves outside every directory; not_found when no directory has it.
 */
export function loadManifestFromDirs(requested: string, dirs: readonly string[]): LoadedManifest {
  if (requested.includes("\0")) {
    throw new AidoError(ErrorCode.invalidInput, "manifest_path: contains a NUL byte", {
      field: "manifest_path",
    });
  }
  const roots = dirs.flatMap((d) => {
    try {
      return [realpathSync(d)];
    } catch {
      return [];
    }
  });
  const candidates = isAbsolute(requested) ? [requested] : roots.map((r) => resolve(r, requested));
  let found = false;
  for (const candidate of candidates) {
    let real: string;
    try {
      real = realpathSync(candidate);
    } catch {
      continue;
    }
    found = true;
    if (!roots.some((r) => isStrictlyWithin(r, real))) continue;
    if (!statSync(real).isFile()) {
      throw new AidoError(ErrorCode.invalidInput, `manifest_path: ${requested} is not a file`, {
        field: "manifest_path",
      });
    }
    return loadManifestFile(real);
  }
  if (found) {
    throw new AidoError(
      ErrorCode.capabilityDenied,
      `manifest_path: ${requested} is outside the daemon's manifest directories (daemon.manifest_dirs)`,
      { field: "manifest_path", manifest_dirs: [...dirs] },
    );
  }
  throw new AidoError(
    ErrorCode.notFound,
    `manifest_path: no manifest ${requested} in the daemon's manifest directories (daemon.manifest_dirs)`,
    { field: "manifest_path", manifest_dirs: [...dirs] },
  );
}
