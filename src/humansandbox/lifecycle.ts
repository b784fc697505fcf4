// humansandbox/lifecycle.ts — a human sandbox taken down (`up` is up.ts's), by hand or
// when its TTL runs out. Destroying removes the container, a host list's relay and
// network (egress.ts), and the working folders (work/, output/, stream/, egress/); the
// evidence (sandbox.json, events.log, runs/) stays, since it is the record of what the
// script did. `purge` removes the whole folder.

import { closeSync } from "node:fs";
import { join } from "node:path";
import type Docker from "dockerode";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { connectDocker } from "../sandbox/engine.js";
import { fdPath } from "../sandbox/untrusted-files.js";
import { removeContainer } from "./container.js";
import { removeSandboxNetwork } from "./egress.js";
import { removeLeftovers } from "./output-place.js";
import { type Project, type ProjectRef, withProject } from "./project.js";
import { recordSpecText } from "./record-trust.js";
import { Scrubber } from "./scrub.js";
import { envValuesOf } from "./spec.js";
import {
  appendEvent,
  expiredRecords,
  giveEvidence,
  isExpired,
  readRecord,
  type SandboxPaths,
  type SandboxRecord,
  sandboxPaths,
  writeRecord,
} from "./state.js";
import { openSandboxes, removeIn, sandboxDir, withDir } from "./store-dirs.js";

export interface DestroyOptions {
  docker?: Docker;
  reason?: string;
  /** Also delete the evidence: the whole .aido/sandboxes/<id>/ folder. */
  purge?: boolean;
}

/**
 * A destroy that removed what it could but not all: each part that stayed and why (scrubbed
 * of the sandbox's env values), each also in the sandbox's events.log as destroy_failed. The
 * record stays "running", so the TTL sweep, or the next destroy, tries again.
 */
export class SandboxDestroyError extends AidoError {
  constructor(
    readonly id: string,
    readonly failures: readonly string[],
  ) {
    super(
      ErrorCode.sandboxFailed,
      `sandbox ${id} could not be destroyed entirely (the rest of it was removed): ${failures.join("; ")}; its record stays running: run \`aido sandbox destroy ${id}\` again once that is fixed`,
      { id, failures },
    );
  }
}

/**
 * Take the sandbox down: its container, a host list's relay and network, its working
 * folders. One part that will not go (what a task left in a folder) never keeps the others:
 * everything that can go goes, and then each failure is logged and thrown together
 * (SandboxDestroyError). The messages name entries by the task's names, which may be an
 * env value the person passed: they pass the scrubber `aido run` uses for its lines.
 */
export function destroySandbox(
  ref: ProjectRef,
  id: string,
  opts: DestroyOptions = {},
): Promise<SandboxRecord> {
  return withProject(ref, (project) => destroyIn(project, id, opts));
}

async function destroyIn(project: Project, id: string, opts: DestroyOptions): Promise<SandboxRecord> {
  const paths = sandboxPaths(project, id);
  const record = readRecord(paths);
  if (!record) throw new AidoError(ErrorCode.notFound, `no sandbox ${id} in this project`, { id });
  const docker = opts.docker ?? connectDocker();
  const reason = opts.reason ?? "destroyed by the user";
  const scrubber = new Scrubber(envForScrub(project, record, paths));
  const failures: string[] = [];
  const attempt = async (part: () => unknown): Promise<void> => {
    try {
      await part();
    } catch (e) {
      failures.push(scrubber.scrub(errorMessage(e)));
    }
  };
  await attempt(() => removeContainer(docker, record.container, project.path, id));
  const egress = record.egress;
  if (egress) await attempt(() => removeSandboxNetwork(docker, egress, project.path, id));
  // Through the sandbox's folder reached without following a link (store-dirs.ts): a
  // sandbox folder swapped for a link (or .aido, or sandboxes) had root remove the work,
  // output, stream and egress folders of wherever it pointed.
  let dir: number | undefined;
  await attempt(() => {
    dir = sandboxDir(project, id);
  });
  if (dir !== undefined) {
    const sandbox = dir;
    try {
      // What a collection killed mid-copy left in the project (output-place.ts).
      await attempt(() => removeLeftovers(fdPath(project.fd), fdPath(sandbox), id));
      for (const name of ["work", "output", "stream", "egress"])
        await attempt(() => removeIn(sandbox, name, join(paths.root, name)));
    } finally {
      closeSync(sandbox);
    }
  }
  if (failures.length > 0) {
    for (const error of failures) appendEvent(paths, { event: "destroy_failed", reason, error });
    throw new SandboxDestroyError(id, failures);
  }
  if (record.state !== "destroyed") {
    record.state = "destroyed";
    record.destroyed_at = new Date().toISOString();
    record.destroy_reason = opts.reason === "ttl expired" ? "ttl expired" : "destroyed by the user";
    writeRecord(paths, record);
    appendEvent(paths, { event: "destroyed", reason });
  }
  if (opts.purge) withDir(openSandboxes(project) as number, (store) => removeIn(store, id, paths.root));
  else giveEvidence(paths, () => {});
  return record;
}

/**
 * The sandbox file's env values for the scrubber of destroy's messages, read leniently
 * (spec.ts sandboxEnvValues). A sandbox file a root aido refuses to read (record-trust.ts)
 * gives none, and the refusal is in events.log (with `paths`): destroy still goes on.
 */
function envForScrub(project: Project, record: SandboxRecord, paths?: SandboxPaths): Record<string, string> {
  let text: string | null;
  try {
    text = recordSpecText(project, record);
  } catch (e) {
    if (paths && e instanceof AidoError && e.code === ErrorCode.configInvalid && project.owner)
      appendEvent(paths, { event: "warning", message: e.message });
    return {};
  }
  return text === null ? {} : envValuesOf(text);
}

/** What a sweep did: the sandboxes it destroyed, and those it could not (tried again next sweep). */
export interface SweepReport {
  swept: string[];
  failed: Array<{ id: string; error: string }>;
}

/**
 * Destroy every sandbox of the project whose TTL has run out. `aido` calls it before a
 * command when state.ts's expiredRecords finds one; it connects to the engine only then.
 * One sandbox that cannot be destroyed (what its task left will not go) never keeps the
 * others: its failure is in its events.log and the report (scrubbed of its env values), its
 * record stays "running", and the next sweep tries it again.
 */
export function sweepExpiredSandboxes(
  ref: ProjectRef,
  opts: { docker?: Docker; nowMs?: number } = {},
): Promise<SweepReport> {
  return withProject(ref, (project) => sweepIn(project, opts));
}

async function sweepIn(project: Project, opts: { docker?: Docker; nowMs?: number }): Promise<SweepReport> {
  const report: SweepReport = { swept: [], failed: [] };
  const expired = expiredRecords(project, opts.nowMs);
  if (expired.length === 0) return report;
  const docker = opts.docker ?? connectDocker();
  for (const r of expired) {
    try {
      await destroySandbox(project, r.id, { docker, reason: "ttl expired" });
      report.swept.push(r.id);
    } catch (e) {
      // destroySandbox logged its own failures, scrubbed; anything else is logged here.
      if (e instanceof SandboxDestroyError) {
        report.failed.push({ id: r.id, error: e.failures.join("; ") });
        continue;
      }
      const error = new Scrubber(envForScrub(project, r)).scrub(errorMessage(e));
      report.failed.push({ id: r.id, error });
      try {
        appendEvent(sandboxPaths(project, r.id), { event: "destroy_failed", reason: "ttl expired", error });
      } catch {
        // the report still says it
      }
    }
  }
  return report;
}

/** Why a run in this sandbox cannot happen, or undefined when it can. */
export function refusalOf(record: SandboxRecord, nowMs = Date.now()): string | undefined {
  if (record.state === "destroyed") {
    return record.destroy_reason === "ttl expired"
      ? `sandbox ${record.id} expired at ${record.expires_at} (ttl ${record.ttl_ms / 1000} s) and was destroyed: start a new one with \`aido sandbox up\``
      : `sandbox ${record.id} was destroyed at ${record.destroyed_at}: start a new one with \`aido sandbox up\``;
  }
  if (isExpired(record, nowMs))
    return `sandbox ${record.id} expired at ${record.expires_at} (ttl ${record.ttl_ms / 1000} s): start a new one with \`aido sandbox up\``;
  return undefined;
}
