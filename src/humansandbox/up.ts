// humansandbox/up.ts — `aido sandbox up`: the store's folders and the container made, and
// what was asked and allowed recorded; what a failed start made is taken down again
// (lifecycle.ts destroySandbox). The project folder is opened once for all of it
// (project.ts), the store reached from it folder by folder (store-dirs.ts).

import { createHash } from "node:crypto";
import { closeSync, existsSync, lstatSync, readFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
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
  recheckWorkingFolders,
  resolveRuntime,
  STREAM_DIR,
  versionMatches,
} from "./container.js";
import { openSandboxNetwork, sandboxEgressNames } from "./egress.js";
import { destroySandbox, SandboxDestroyError } from "./lifecycle.js";
import { linkOutputs } from "./outputs.js";
import { recheckInputs, resolveInputs } from "./paths.js";
import { closeProject, inProject, openProject, type Project, projectReal } from "./project.js";
import { ownersSandboxText } from "./record-trust.js";
import { loadSandboxSpec, parseSandboxSpec, type SandboxSpec } from "./spec.js";
import {
  appendEvent,
  ensureDirs,
  giveEvidence,
  newSandboxId,
  type SandboxPaths,
  type SandboxRecord,
  sandboxPaths,
  writeRecord,
} from "./state.js";
import { makeShareFolder, makeWorkingDir, sandboxDir, withDir } from "./store-dirs.js";

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

/**
 * The sandbox file `up` reads: -f's, else the project's sandbox.yaml when there is one. Run
 * as root in someone else's project (or a folder of root's others can write), it is read
 * only as `run` reads it again (record-trust.ts ownersSandboxText): the project owner's own
 * file in the project, not a link, sandbox.yaml reached through the project held open. Read
 * as root by its path, a sandbox.yaml made a link to /etc/shadow (or -f naming it) had its
 * lines printed to the person in the parse error.
 */
function specFor(
  project: Project,
  opts: UpOptions,
): { spec: SandboxSpec; file: string | null; sha: string | null } {
  const name = basename(project.path);
  if (project.readable === undefined) {
    const file =
      opts.file ?? (existsSync(`${opts.cwd}/sandbox.yaml`) ? `${opts.cwd}/sandbox.yaml` : undefined);
    if (file === undefined)
      return { spec: parseSandboxSpec("", "(defaults)", opts.config, name), file: null, sha: null };
    const spec = loadSandboxSpec(file, opts.config, name);
    const sha = createHash("sha256").update(readFileSync(spec.source)).digest("hex");
    return { spec, file: spec.source, sha };
  }
  const given = opts.file === undefined ? undefined : resolve(opts.file);
  const own = inProject(project, "sandbox.yaml");
  if (given === undefined && lstatSync(own, { throwIfNoEntry: false }) === undefined)
    return { spec: parseSandboxSpec("", "(defaults)", opts.config, name), file: null, sha: null };
  const file = given ?? join(project.path, "sandbox.yaml");
  const text = ownersSandboxText(project, file, given ?? own, "nothing is made");
  const spec = parseSandboxSpec(text, file, opts.config, name);
  return { spec, file, sha: createHash("sha256").update(text).digest("hex") };
}

/** `aido sandbox up`, the project folder opened once for all of it (project.ts). */
export async function sandboxUp(opts: UpOptions): Promise<SandboxRecord> {
  const project = openProject(opts.cwd);
  const made: { paths?: SandboxPaths } = {};
  try {
    return await makeSandbox(project, opts, made);
  } finally {
    if (made.paths) giveEvidence(made.paths, opts.notice ?? (() => {}));
    closeProject(project);
  }
}

async function makeSandbox(
  project: Project,
  opts: UpOptions,
  made: { paths?: SandboxPaths },
): Promise<SandboxRecord> {
  const progress = opts.progress ?? (() => {});
  const notice = opts.notice ?? (() => {});
  const { spec, file, sha } = specFor(project, opts);
  // --network is "all", whatever the file says.
  const network = opts.network ? true : spec.network;
  const hosts = Array.isArray(network) ? network : undefined;
  const docker = opts.docker ?? connectDocker();
  const inputs = resolveInputs(projectReal(project), spec.inputs, opts.config, Boolean(opts.allowMutations));
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
  const paths = sandboxPaths(project, id);
  made.paths = paths;
  const who = containerUser();
  // Every folder made through the one above it, held open (store-dirs.ts): never a path.
  const links = withDir(ensureDirs(paths), (sandbox) => {
    if (hosts) makeShareFolder(sandbox, paths.egress);
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
    ...(hosts
      ? { egress: { ...sandboxEgressNames(docker, opts.config, project.path, id), address: "" } }
      : {}),
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
      const held = sandboxDir(project, id);
      try {
        record.egress.address = (await openSandboxNetwork(docker, opts.config, paths, fdPath(held))).address;
      } finally {
        closeSync(held);
      }
      writeRecord(paths, record);
    }
    await docker
      .createContainer(
        humanCreateOptions({
          id,
          cwd: project.path,
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
        recheckInputs(projectReal(project), id, inputs, Boolean(opts.allowMutations), opts.config);
        // And the working folders by their paths are still the ones made through the project
        // held open: a project folder swapped for a link meanwhile has nothing started.
        recheckWorkingFolders(project, id, [
          { Type: "bind", Source: paths.work, Destination: "/workspace" },
          { Type: "bind", Source: paths.output, Destination: "/output" },
          { Type: "bind", Source: paths.stream, Destination: STREAM_DIR },
        ]);
        return c.start();
      });
    const sb = await attach(docker, record, project, opts.config);
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
    const cleanup = await destroySandbox(project, id, {
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
