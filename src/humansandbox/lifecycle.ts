// humansandbox/lifecycle.ts — a human sandbox from `up` to `destroy`: create the folders
// and the container, record what was asked and allowed, and take it down again by hand
// or when its TTL runs out. Destroying removes the container, a host list's relay and
// network (egress.ts), and the working folders (work/, output/, stream/, egress/); the
// evidence (sandbox.json, events.log, runs/) stays, since it is the record of what the
// script did. `purge` removes the whole folder.

import { createHash } from "node:crypto";
import { closeSync, existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import type Docker from "dockerode";
import type { Config } from "../config.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { connectDocker } from "../sandbox/engine.js";
import { fdPath } from "../sandbox/untrusted-files.js";
import {
  attach,
  containerNameOf,
  containerUser,
  humanCreateOptions,
  probeRuntime,
  removeContainer,
  resolveRuntime,
  versionMatches,
} from "./container.js";
import { openSandboxNetwork, removeSandboxNetwork, sandboxEgressNames } from "./egress.js";
import { removeLeftovers } from "./output-place.js";
import { linkOutputs } from "./outputs.js";
import { recheckInputs, resolveInputs } from "./paths.js";
import { recordSpecText } from "./record-trust.js";
import { Scrubber } from "./scrub.js";
import { envValuesOf, loadSandboxSpec, parseSandboxSpec, type SandboxSpec } from "./spec.js";
import {
  appendEvent,
  ensureDirs,
  expiredRecords,
  giveEvidence,
  isExpired,
  newSandboxId,
  projectOwner,
  readRecord,
  type SandboxPaths,
  type SandboxRecord,
  sandboxPaths,
  writeRecord,
} from "./state.js";
import { makeWorkingDir, openSandboxes, removeIn, sandboxDir, withDir } from "./store-dirs.js";

export interface UpOptions {
  cwd: string;
  config: Config;
  /** sandbox.yaml to read; undefined: ./sandbox.yaml when it exists, else defaults. */
  file?: string;
  /** --network: allow network even when the file does not. */
  network?: boolean;
  /** --dangerous-allow-mutations: inputs mounted read-write. */
  allowMutations?: boolean;
  /** How the escape hatches were confirmed (the CLI asks before calling up). */
  confirmedBy?: "terminal" | "--yes" | null;
  docker?: Docker;
  progress?: (message: string) => void;
  /** Messages a person must see (the runtime mapping, warnings). */
  notice?: (message: string) => void;
}

function specFor(opts: UpOptions): { spec: SandboxSpec; file: string | null; sha: string | null } {
  const file = opts.file ?? (existsSync(`${opts.cwd}/sandbox.yaml`) ? `${opts.cwd}/sandbox.yaml` : undefined);
  const name = basename(opts.cwd);
  if (file === undefined)
    return { spec: parseSandboxSpec("", "(defaults)", opts.config, name), file: null, sha: null };
  const spec = loadSandboxSpec(file, opts.config, name);
  const sha = createHash("sha256").update(readFileSync(spec.source)).digest("hex");
  return { spec, file: spec.source, sha };
}

export async function sandboxUp(opts: UpOptions): Promise<SandboxRecord> {
  const made: { paths?: SandboxPaths } = {};
  try {
    return await makeSandbox(opts, made);
  } finally {
    if (made.paths) giveEvidence(opts.cwd, made.paths, opts.notice ?? (() => {}));
  }
}

async function makeSandbox(opts: UpOptions, made: { paths?: SandboxPaths }): Promise<SandboxRecord> {
  const progress = opts.progress ?? (() => {});
  const notice = opts.notice ?? (() => {});
  const { spec, file, sha } = specFor(opts);
  // --network is "all", whatever the file says.
  const network = opts.network ? true : spec.network;
  const hosts = Array.isArray(network) ? network : undefined;
  const docker = opts.docker ?? connectDocker();
  const inputs = resolveInputs(opts.cwd, spec.inputs, opts.config, Boolean(opts.allowMutations));
  const runtime = await resolveRuntime(opts.config, docker, spec.runtime, progress);
  if (hosts && runtime.mountExecutor)
    throw new AidoError(
      ErrorCode.configInvalid,
      `a host list (permissions.network) needs an image built from the sandbox recipe, whose Landlock helper holds the script to the proxy's port; ${spec.runtime} has none: use a python: or node: runtime, or docker://${opts.config.sandbox.image}`,
      { runtime: spec.runtime },
    );
  if (spec.unixSockets === "deny" && runtime.mountExecutor)
    throw new AidoError(
      ErrorCode.configInvalid,
      `${spec.runtime} has no Landlock helper to refuse the script Unix sockets (permissions.unix_sockets: deny, the default), so the script could connect to any socket in its inputs (an ssh-agent's, a D-Bus bus's, the Docker engine's): use a python: or node: runtime or docker://${opts.config.sandbox.image}, or set permissions.unix_sockets: allow in the sandbox file`,
      { runtime: spec.runtime },
    );
  const id = newSandboxId();
  const paths = sandboxPaths(opts.cwd, id);
  made.paths = paths;
  const who = containerUser();
  // Every folder made through the one above it, held open (store-dirs.ts): never a path.
  const links = withDir(ensureDirs(opts.cwd, paths), (sandbox) => {
    const work = makeWorkingDir(sandbox, "work", paths.work, who);
    return withDir(work, (w) =>
      withDir(makeWorkingDir(sandbox, "output", paths.output, who), (out) => {
        closeSync(makeWorkingDir(sandbox, "stream", paths.stream, who));
        // Declared outputs are written at their paths in /workspace, read-only or not.
        return spec.filesystem === "none"
          ? undefined
          : linkOutputs(fdPath(w), fdPath(out), spec.outputs, who);
      }),
    );
  });
  const now = Date.now();
  const limits = {
    memoryMb: spec.memoryMb,
    cpus: spec.cpus,
    pids: opts.config.sandbox.pids,
    tmpfsMb: opts.config.sandbox.tmpfsMb,
    tmpNoexec: false,
    ttlSeconds: Math.max(1, Math.ceil(spec.ttlMs / 1000)),
  };
  const record: SandboxRecord = {
    id,
    name: spec.name,
    state: "running",
    created_at: new Date(now).toISOString(),
    expires_at: new Date(now + spec.ttlMs).toISOString(),
    ttl_ms: spec.ttlMs,
    container: containerNameOf(id),
    user: who.user,
    runtime: runtime.choice,
    spec_file: file,
    spec_sha256: sha,
    permissions: { filesystem: spec.filesystem, network, unix_sockets: spec.unixSockets },
    flags: {
      network: Boolean(opts.network),
      dangerous_allow_mutations: Boolean(opts.allowMutations),
      confirmed_by: opts.network || opts.allowMutations ? (opts.confirmedBy ?? null) : null,
    },
    limits: {
      cpus: spec.cpus,
      memory_mb: spec.memoryMb,
      pids: limits.pids,
      tmpfs_mb: limits.tmpfsMb,
      timeout_ms: spec.timeoutMs,
    },
    inputs,
    outputs: spec.outputs,
    ...(links ? { output_links: links.linked } : {}),
    // Recorded before they are made, so that a failed `up` still removes what it made.
    ...(hosts ? { egress: { ...sandboxEgressNames(docker, opts.config, opts.cwd, id), address: "" } } : {}),
    env_names: Object.keys(spec.env).sort(),
  };
  writeRecord(paths, record);
  appendEvent(paths, {
    event: "created",
    id,
    name: spec.name,
    image: runtime.image,
    runtime: runtime.choice,
    expires_at: record.expires_at,
    unix_sockets: spec.unixSockets,
  });
  const warn = (message: string, flag?: string) => {
    notice(`warning: ${message}`);
    appendEvent(paths, flag ? { event: "warning", message, flag } : { event: "warning", message });
  };
  if (hosts) notice(`network: only ${hosts.join(", ")}, through the egress proxy (each run's network.log)`);
  if (spec.unixSockets === "deny")
    notice("unix sockets: refused to the script (permissions.unix_sockets: allow to let it connect to them)");
  else
    warn(
      "unix sockets are allowed: the script can connect, as you, to any socket in its inputs and work folder (an ssh-agent, a D-Bus bus, the Docker engine)",
      "permissions.unix_sockets",
    );
  if (network === true)
    warn(
      "network is allowed: the sandbox is on the engine's default bridge",
      opts.network ? "--network" : "permissions.network",
    );
  for (const skip of links?.skipped ?? [])
    warn(`output ${skip.pattern} has no link in /workspace (${skip.reason})`);
  if (opts.allowMutations)
    warn(
      "inputs are mounted read-write: the script can change them on the host",
      "--dangerous-allow-mutations",
    );
  try {
    if (hosts && record.egress) {
      record.egress.address = (await openSandboxNetwork(docker, opts.config, opts.cwd, id, paths)).address;
      writeRecord(paths, record);
    }
    await docker
      .createContainer(
        humanCreateOptions({
          id,
          cwd: opts.cwd,
          image: runtime.image,
          user: who.user,
          paths,
          limits,
          filesystem: spec.filesystem,
          network: network === true,
          ...(record.egress ? { egressNetwork: record.egress.network } : {}),
          inputs,
          inputsWritable: Boolean(opts.allowMutations),
          mountExecutor: runtime.mountExecutor,
          expiresAtSeconds: Math.floor((now + spec.ttlMs) / 1000),
        }),
      )
      .then((c) => {
        // Another sandbox's task may hold this one's input folders: bound by path at start.
        recheckInputs(opts.cwd, id, inputs, Boolean(opts.allowMutations), opts.config);
        return c.start();
      });
    const sb = await attach(docker, record, opts.cwd, opts.config);
    try {
      const provides = await probeRuntime(sb, spec.runtime);
      if (provides) {
        record.runtime = { ...record.runtime, provides };
        writeRecord(paths, record);
        notice(`runtime ${spec.runtime} -> ${runtime.image} (${provides})`);
        if (!versionMatches(spec.runtime, provides))
          warn(`runtime ${spec.runtime} asked for; the sandbox image provides ${provides}`);
      }
    } finally {
      sb.close();
    }
  } catch (e) {
    const cleanup = await destroySandbox(opts.cwd, id, {
      docker,
      reason: `failed to start: ${errorMessage(e)}`,
    }).then(
      () => undefined,
      (d: unknown) => d,
    );
    throw startFailure(id, e, cleanup);
  }
  return record;
}

/**
 * Why `up` failed: the start's error, and when the cleanup's destroy failed too, that as
 * well with what is left for `aido sandbox destroy` (the start's error must not be lost
 * behind the cleanup's: the person would never learn why `up` failed).
 */
function startFailure(id: string, e: unknown, cleanup: unknown): AidoError {
  const start = e instanceof AidoError ? e : undefined;
  if (cleanup === undefined)
    return (
      start ??
      new AidoError(
        ErrorCode.sandboxFailed,
        `starting sandbox ${id} failed: ${errorMessage(e)}`,
        { id },
        { cause: e },
      )
    );
  const left =
    cleanup instanceof SandboxDestroyError
      ? `what stayed: ${cleanup.failures.join("; ")}`
      : errorMessage(cleanup);
  return new AidoError(
    start?.code ?? ErrorCode.sandboxFailed,
    `starting sandbox ${id} failed: ${errorMessage(e)}; removing what it made failed too (${left}): run \`aido sandbox destroy ${id}\` once that is fixed`,
    { ...start?.details, id, cleanup: errorMessage(cleanup) },
    { cause: e },
  );
}

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
export async function destroySandbox(
  cwd: string,
  id: string,
  opts: DestroyOptions = {},
): Promise<SandboxRecord> {
  const paths = sandboxPaths(cwd, id);
  const record = readRecord(paths);
  if (!record) throw new AidoError(ErrorCode.notFound, `no sandbox ${id} in this project`, { id });
  const docker = opts.docker ?? connectDocker();
  const reason = opts.reason ?? "destroyed by the user";
  const scrubber = new Scrubber(envForScrub(cwd, record, paths));
  const failures: string[] = [];
  const attempt = async (part: () => unknown): Promise<void> => {
    try {
      await part();
    } catch (e) {
      failures.push(scrubber.scrub(errorMessage(e)));
    }
  };
  await attempt(() => removeContainer(docker, record.container, cwd, id));
  const egress = record.egress;
  if (egress) await attempt(() => removeSandboxNetwork(docker, egress, cwd, id));
  // Through the sandbox's folder reached without following a link (store-dirs.ts): a
  // sandbox folder swapped for a link (or .aido, or sandboxes) had root remove the work,
  // output, stream and egress folders of wherever it pointed.
  let dir: number | undefined;
  await attempt(() => {
    dir = sandboxDir(cwd, id);
  });
  if (dir !== undefined) {
    const sandbox = dir;
    try {
      // What a collection killed mid-copy left in the project (output-place.ts).
      await attempt(() => removeLeftovers(cwd, fdPath(sandbox), id));
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
  if (opts.purge) withDir(openSandboxes(cwd) as number, (store) => removeIn(store, id, paths.root));
  else giveEvidence(cwd, paths, () => {});
  return record;
}

/**
 * The sandbox file's env values for the scrubber of destroy's messages, read leniently
 * (spec.ts sandboxEnvValues). A sandbox file a root aido refuses to read (record-trust.ts)
 * gives none, and the refusal is in events.log (with `paths`): destroy still goes on.
 */
function envForScrub(cwd: string, record: SandboxRecord, paths?: SandboxPaths): Record<string, string> {
  let text: string | null;
  try {
    text = recordSpecText(cwd, record);
  } catch (e) {
    if (paths && e instanceof AidoError && e.code === ErrorCode.configInvalid && projectOwner(cwd))
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
export async function sweepExpiredSandboxes(
  cwd: string,
  opts: { docker?: Docker; nowMs?: number } = {},
): Promise<SweepReport> {
  const report: SweepReport = { swept: [], failed: [] };
  const expired = expiredRecords(cwd, opts.nowMs);
  if (expired.length === 0) return report;
  const docker = opts.docker ?? connectDocker();
  for (const r of expired) {
    try {
      await destroySandbox(cwd, r.id, { docker, reason: "ttl expired" });
      report.swept.push(r.id);
    } catch (e) {
      // destroySandbox logged its own failures, scrubbed; anything else is logged here.
      if (e instanceof SandboxDestroyError) {
        report.failed.push({ id: r.id, error: e.failures.join("; ") });
        continue;
      }
      const error = new Scrubber(envForScrub(cwd, r)).scrub(errorMessage(e));
      report.failed.push({ id: r.id, error });
      try {
        appendEvent(sandboxPaths(cwd, r.id), { event: "destroy_failed", reason: "ttl expired", error });
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
