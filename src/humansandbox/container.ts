// humansandbox/container.ts — the container of a human sandbox, built from the same
// locked-down create options as a goal's container (sandbox/container-spec.ts: network
// none, non-root, cap-drop ALL, no-new-privileges, read-only root, tmpfs /tmp, pids/memory/
// CPU limits, init) with the mounts a person declared instead of a goal's folders, and
// driven through the same in-container executor (DockerSandbox). Only the two escape
// hatches loosen anything: network (the default bridge) and rw inputs. A host list puts
// the container on an internal network whose only peer is its egress relay (egress.ts).

import { createHash } from "node:crypto";
import { fstatSync, statSync } from "node:fs";
import { join } from "node:path";
import type Docker from "dockerode";
import type { Config } from "../config.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { createOptions, type SandboxLimits } from "../sandbox/container-spec.js";
import { DockerSandbox, type SandboxOwner } from "../sandbox/docker-sandbox.js";
import { EXECUTOR_PATH } from "../sandbox/executor-session.js";
import { ensureImage, executorSourcePath } from "../sandbox/image.js";
import type { RuntimeHome } from "./evidence-guard.js";
import { recheckInputs } from "./paths.js";
import { type Project, projectReal } from "./project.js";
import type { InputMount, RuntimeChoice, SandboxPaths, SandboxRecord } from "./state.js";
import { openDirIn, sandboxDir, withDir } from "./store-dirs.js";

export const LABEL = {
  sandbox: "aido.sandbox",
  project: "aido.sandbox.project",
  expires: "aido.expires",
} as const;

/** Mount point of the folder the host reads a running task's output from. */
export const STREAM_DIR = "/aido/stream";

export function containerNameOf(id: string): string {
  return `aido_sbx_${id}`;
}

export function projectLabelOf(cwd: string): string {
  return createHash("sha256").update(cwd).digest("hex").slice(0, 16);
}

/**
 * A container or network the engine says is sandbox `id`'s of the project at `cwd` (its
 * labels, set at `up`). The names in sandbox.json are not trusted alone: the record is the
 * project owner's file (given to them when root made it), and a name of theirs had a
 * `sudo aido` remove (or run the task in) any container of the engine.
 */
export function isSandboxOf(labels: Record<string, string> | undefined, cwd: string, id: string): boolean {
  return labels?.[LABEL.sandbox] === id && labels?.[LABEL.project] === projectLabelOf(cwd);
}

export function notSandboxOf(what: string, name: string, id: string): AidoError {
  return new AidoError(
    ErrorCode.sandboxFailed,
    `${what} ${name} named in sandbox ${id}'s record is not that sandbox's (its labels): it is left alone; the record was changed on the host`,
    { id, name },
  );
}

/** uid:gid inside the container: 1000:1000 when we are root, else our own ids. */
export function containerUser(): { user: string; uid: number; gid: number } {
  const uid = process.getuid?.() ?? 1000;
  if (uid === 0) return { user: "1000:1000", uid: 1000, gid: 1000 };
  const gid = process.getgid?.() ?? uid;
  return { user: `${uid}:${gid}`, uid, gid };
}

export interface HumanContainerSpec {
  id: string;
  cwd: string;
  image: string;
  user: string;
  paths: SandboxPaths;
  limits: SandboxLimits;
  filesystem: "readonly" | "readwrite" | "none";
  /** true: the default bridge (all); false: none. */
  network: boolean;
  /** The sandbox's internal egress network (a host list): its only peer is the relay. */
  egressNetwork?: string;
  inputs: InputMount[];
  inputsWritable: boolean;
  /** Bind the host's executor into an image that was not built from the sandbox recipe. */
  mountExecutor: boolean;
  expiresAtSeconds: number;
}

export function humanCreateOptions(s: HumanContainerSpec): Docker.ContainerCreateOptions {
  const base = createOptions({
    name: containerNameOf(s.id),
    image: s.image,
    user: s.user,
    labels: {
      [LABEL.sandbox]: s.id,
      [LABEL.project]: projectLabelOf(s.cwd),
      [LABEL.expires]: String(s.expiresAtSeconds),
    },
    folders: { root: s.paths.root, workspace: s.paths.work, output: s.paths.output, inputs: "" },
    // No skills in a human sandbox. An empty array reads as "none" whichever form the spec takes.
    skills: [],
    limits: s.limits,
    ...(s.egressNetwork ? { network: s.egressNetwork } : {}),
  });
  const host = base.HostConfig as Docker.HostConfig;
  const mounts: Docker.MountSettings[] = [];
  if (s.filesystem === "none") {
    host.Tmpfs = { ...host.Tmpfs, "/workspace": `rw,nosuid,nodev,size=${s.limits.tmpfsMb}m,mode=1777` };
  } else {
    mounts.push({
      Type: "bind",
      Source: s.paths.work,
      Target: "/workspace",
      ReadOnly: s.filesystem === "readonly",
    });
  }
  mounts.push({ Type: "bind", Source: s.paths.output, Target: "/output", ReadOnly: false });
  mounts.push({ Type: "bind", Source: s.paths.stream, Target: STREAM_DIR, ReadOnly: false });
  for (const i of s.inputs) {
    mounts.push({ Type: "bind", Source: i.source, Target: i.target, ReadOnly: !s.inputsWritable });
    // The evidence store inside an input: an empty read-only tmpfs over it (the engine
    // mounts the deeper target after the input). The task holds no capability to unmount it.
    for (const h of i.hidden ?? [])
      mounts.push({
        Type: "tmpfs",
        Source: "", // a tmpfs has none; the engine takes an empty one as unset
        Target: h,
        ReadOnly: true,
        TmpfsOptions: { SizeBytes: 4096, Mode: 0o555 },
      });
  }
  if (s.mountExecutor)
    mounts.push({ Type: "bind", Source: executorSourcePath(), Target: EXECUTOR_PATH, ReadOnly: true });
  host.Mounts = mounts;
  if (s.network) {
    // The escape hatch: the engine's default bridge (outbound access), never the host's network.
    base.NetworkDisabled = false;
    host.NetworkMode = "bridge";
  }
  return base;
}

/** The image for a runtime. python:/node: map to the sandbox image (it carries the executor). */
export async function resolveRuntime(
  config: Config,
  docker: Docker,
  runtime: string,
  progress: (m: string) => void,
): Promise<{ image: string; mountExecutor: boolean; choice: RuntimeChoice }> {
  const own = config.sandbox.image;
  if (runtime.startsWith("docker://")) {
    const image = runtime.slice("docker://".length);
    if (image === own) {
      await ensureImage(config, { docker, onProgress: progress });
      return { image, mountExecutor: false, choice: { requested: runtime, image } };
    }
    await findOrPull(docker, image, progress);
    return { image, mountExecutor: true, choice: { requested: runtime, image } };
  }
  await ensureImage(config, { docker, onProgress: progress });
  return {
    image: own,
    mountExecutor: false,
    choice: {
      requested: runtime,
      image: own,
      note: "python:/node: runtimes run on the local sandbox image (no registry needed; it carries the executor)",
    },
  };
}

async function findOrPull(docker: Docker, image: string, progress: (m: string) => void): Promise<void> {
  try {
    await docker.getImage(image).inspect();
    return;
  } catch {
    progress(`image ${image} is not here: pulling it`);
  }
  try {
    const stream = await docker.pull(image);
    await new Promise<void>((resolve, reject) =>
      docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())),
    );
  } catch (e) {
    throw new AidoError(
      ErrorCode.sandboxUnavailable,
      `image ${image} is not on this machine and cannot be pulled (${errorMessage(e)}); build or load it first, or use a python:/node: runtime`,
      { image },
      { cause: e },
    );
  }
}

/** What the runtime's language is in the started sandbox, e.g. "Python 3.11.2". */
export async function probeRuntime(sb: DockerSandbox, runtime: string): Promise<string | undefined> {
  const lang = /^(python|node):/.exec(runtime)?.[1];
  if (!lang) return undefined;
  const r = await sb.exec({
    argv: lang === "python" ? ["python3", "--version"] : ["node", "--version"],
    timeoutMs: 10_000,
    confinement: "unconfined",
  });
  if (r.exitCode !== 0)
    throw new AidoError(
      ErrorCode.sandboxUnavailable,
      `the sandbox image provides no ${lang} for runtime ${runtime}`,
      {
        runtime,
      },
    );
  const version = (r.stdout + r.stderr)
    .trim()
    .replace(/^v/, "")
    .replace(/^Python\s+/, "");
  return `${lang === "python" ? "Python" : "Node"} ${version}`;
}

/** Does the provided version satisfy the asked one (by prefix: 3.11 accepts 3.11.2)? */
export function versionMatches(runtime: string, provides: string): boolean {
  const asked = runtime.split(":")[1] ?? "";
  const have = provides.split(" ")[1] ?? "";
  return have === asked || have.startsWith(`${asked}.`);
}

/** The owner a DockerSandbox asks when its container died: start the same container again. */
class RestartingOwner implements SandboxOwner {
  constructor(
    private readonly container: Docker.Container,
    readonly execTimeoutMs: number,
    readonly maxOutputBytes: number,
    private readonly beforeStart: () => void,
  ) {}
  async replaceContainer(goalId: string): Promise<Docker.Container> {
    this.beforeStart();
    try {
      await this.container.start();
    } catch (e) {
      const code = (e as { statusCode?: number }).statusCode;
      if (code !== 304)
        throw new AidoError(
          ErrorCode.sandboxFailed,
          `the container of sandbox ${goalId} is gone (${errorMessage(e)}): start a new one with \`aido sandbox up\``,
          { id: goalId },
        );
    }
    return this.container;
  }
}

/**
 * Talk to a recorded sandbox's container through a fresh executor session. A container that
 * is not running is started again only when its inputs are still what `up` resolved
 * (paths.ts recheckInputs): the engine binds them by path at each start.
 */
export async function attach(
  docker: Docker,
  record: SandboxRecord,
  project: Project,
  runtime: RuntimeHome,
): Promise<DockerSandbox> {
  let container = docker.getContainer(record.container);
  let info: Docker.ContainerInspectInfo;
  try {
    info = await container.inspect();
  } catch (e) {
    throw new AidoError(
      ErrorCode.sandboxFailed,
      `the container of sandbox ${record.id} is gone (${errorMessage(e)}): destroy it and start a new one with \`aido sandbox up\``,
      { id: record.id },
    );
  }
  const mounts = info.Mounts ?? [];
  const beforeStart = () => {
    recheckInputs(
      projectReal(project),
      record.id,
      record.inputs,
      record.flags.dangerous_allow_mutations,
      runtime,
    );
    recheckWorkingFolders(project, record.id, mounts);
  };
  if (!isSandboxOf(info.Config.Labels, project.path, record.id))
    throw notSandboxOf("container", record.container, record.id);
  assertInputsOf(info, record);
  container = docker.getContainer(info.Id);
  if (!info.State.Running) {
    beforeStart();
    await container.start();
  }
  const sb = new DockerSandbox(
    record.id,
    container,
    new RestartingOwner(container, record.limits.timeout_ms, 64 * 1024, beforeStart),
  );
  await sb.ready();
  return sb;
}

/**
 * The record's inputs are the container's own (/inputs binds, as the engine holds them):
 * the record is the project owner's file, and before each start recheckInputs checks the
 * record's list; an input taken out of it (or changed) had its mount bound again unchecked,
 * the folder the person swapped for a link to .aido included.
 */
function assertInputsOf(info: Docker.ContainerInspectInfo, record: SandboxRecord): void {
  const key = (source: string, target: string) => `${source}\0${target}`;
  const held = (info.Mounts ?? [])
    .filter((m) => m.Type === "bind" && (m.Destination === "/inputs" || m.Destination.startsWith("/inputs/")))
    .map((m) => key(m.Source, m.Destination))
    .sort();
  const recorded = record.inputs.map((m) => key(m.source, m.target)).sort();
  if (held.join("\n") !== recorded.join("\n"))
    throw new AidoError(
      ErrorCode.sandboxFailed,
      `sandbox ${record.id}'s record lists inputs its container was not made with (sandbox.json was changed on the host): the container is not used; destroy the sandbox and start a new one`,
      { id: record.id },
    );
}

/** The working folders the container binds, by their mount points: the sandbox folder's names for them. */
const WORKING_BINDS: Readonly<Record<string, string>> = {
  "/workspace": "work",
  "/output": "output",
  [STREAM_DIR]: "stream",
};

/**
 * The working folders the engine binds by their paths at each start (the mounts it holds)
 * are still the folders aido made in the sandbox's folder: reached level by level without
 * following a link (store-dirs.ts), the same folder (device and inode) as the engine's path
 * leads to now. The sandbox's folder is the person's under a root aido: with the container
 * stopped (a reboot), an `output` they renamed away and replaced by a link had the next
 * `aido run` start it with the folder linked to bound read-write at /output, another user's
 * home say, the task's to read and write as the container's user. (Between this check and
 * the engine's bind the race remains, as for the inputs.)
 */
export function recheckWorkingFolders(
  project: Project,
  id: string,
  mounts: ReadonlyArray<{ Type: string; Source: string; Destination: string }>,
): void {
  const held = mounts.filter((m) => m.Type === "bind" && WORKING_BINDS[m.Destination] !== undefined);
  if (held.length === 0) return;
  withDir(sandboxDir(project, id), (sandbox) => {
    for (const m of held) {
      const name = WORKING_BINDS[m.Destination] as string;
      const shown = join(project.path, ".aido", "sandboxes", id, name);
      const refuse = (what: string) =>
        new AidoError(
          ErrorCode.sandboxFailed,
          `${m.Destination} binds ${m.Source}, which ${what} (changed on the host): the container of sandbox ${id} is not started; destroy it (\`aido sandbox destroy ${id}\`) and start a new one`,
          { id, path: shown },
        );
      const fd = openDirIn(sandbox, name, shown);
      if (fd === undefined) throw refuse("is gone");
      withDir(fd, (f) => {
        const own = fstatSync(f);
        let bound: ReturnType<typeof statSync>;
        try {
          bound = statSync(m.Source);
        } catch (e) {
          throw refuse(`cannot be reached (${(e as NodeJS.ErrnoException).code ?? errorMessage(e)})`);
        }
        if (bound.dev !== own.dev || bound.ino !== own.ino)
          throw refuse(`is no longer the sandbox's ${name} folder`);
      });
    }
  });
}

/** Remove the container `name` of sandbox `id` of the project at `cwd`: only when its labels say it is that. */
export async function removeContainer(docker: Docker, name: string, cwd: string, id: string): Promise<void> {
  try {
    const info = await docker.getContainer(name).inspect();
    if (!isSandboxOf(info.Config.Labels, cwd, id)) throw notSandboxOf("container", name, id);
    await docker.getContainer(info.Id).remove({ force: true, v: true });
  } catch (e) {
    if (e instanceof AidoError) throw e;
    const code = (e as { statusCode?: number }).statusCode;
    if (code !== 404 && code !== 409)
      throw new AidoError(ErrorCode.sandboxFailed, `removing container ${name} failed: ${errorMessage(e)}`, {
        name,
      });
  }
}
