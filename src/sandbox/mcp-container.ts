// sandbox/mcp-container.ts — an external stdio MCP server in a container of its own, one
// per goal and server, spoken to as an MCP SDK Transport (mcp-transport.ts). The server is
// someone else's code, so its container gets the lockdown of a goal's (container-spec.ts
// lockedHostConfig: no network, no capabilities, no-new-privileges, read-only root, tmpfs
// /tmp, limits, init, non-root) and nothing of the host it was not handed: its argv runs
// without a shell, its environment holds only the literal values the operator wrote (never
// the daemon's), the goal's /workspace is mounted only when the operator said "ro" or
// "rw", and the operator's other mounts are read-only and checked (mcp-mounts.ts). A
// server the operator gave `network:` entries joins an egress network of its own instead
// of none (spec.network), reaching only its relay and, through it, the proxy.
//
// Name aido-mcp-<goal>-<server>; labels: the runtime's, the goal's, the server's and an
// expiry, so DockerBackend's gc and a test home's cleanup find it. The container lives as
// long as its connection: whatever ends the transport (stop(), the server exiting, a
// broken line) removes it. Which are live is mcp-servers.ts's (LiveMcpServers, held by
// DockerBackend).

import type { Duplex } from "node:stream";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type Docker from "dockerode";
import type { Config } from "../config.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { MCP_SERVER_NAME } from "../security/grants.js";
import { defaultLimits, lockedHostConfig, type SandboxLimits, tightenLimits } from "./container-spec.js";
import { LABEL } from "./docker-containers.js";
import { assertGoalId, type GoalFolders, parseUser, prepareFolders } from "./folders.js";
import { checkMcpMounts } from "./mcp-mounts.js";
import { ContainerStdioTransport } from "./mcp-transport.js";

export type McpWorkspaceMode = "none" | "ro" | "rw";

export interface McpServerSpec {
  goalId: string;
  /** The server's name as the operator declared it (MCP_SERVER_NAME). */
  server: string;
  /** Default: the sandbox image (config.sandbox.image). */
  image?: string;
  /** The server's argv, run as is: no shell. */
  command: readonly string[];
  /** The server's environment: literal values only, nothing of the daemon's. */
  env?: Readonly<Record<string, string>>;
  /** The goal's /workspace: not mounted, read-only or read-write. */
  workspace: McpWorkspaceMode;
  /** Host files or folders mounted read-only (the server's code, e.g. a node_modules). */
  mounts?: readonly { source: string; target: string }[];
  /** Each may only be lower than config.sandbox's. */
  limits?: Partial<SandboxLimits>;
  /**
   * The egress network of its own to join (egress/plumbing.ts server(): its relay is the
   * only other member); absent: network none. The proxy variables come in `env`.
   */
  network?: string;
}

/** How a server's freezes show (its goal's: while its node is fenced, cluster/fence.ts). */
export interface FreezeClock {
  /** While the server is frozen: settles once it is not (or its goal was removed). */
  thawed(): Promise<void> | undefined;
  /** Settles once it is not frozen (true), or as `signal` aborts first (false), leaving nothing behind. */
  untilThawed(signal?: AbortSignal): Promise<boolean>;
  /** How long it has been frozen in all (ms, monotonic), the freeze under way included. */
  frozenMs(): number;
}

export interface McpServerContainer {
  /** Hand to an SDK Client's connect(); it is started by it. */
  transport: Transport;
  /**
   * Its freezes (DockerBackend's): a request is sent only once it is not frozen, and its
   * timeout leaves out the time it was (tools/mcp/request-time.ts). Absent: never frozen.
   */
  freezes?: FreezeClock;
  /** The server's name (the spec's). */
  server: string;
  /** The container's name. */
  name: string;
  containerId: string;
  /** Close the connection and remove the container; a second call is harmless. */
  stop(): Promise<void>;
  /** The end of the server's stderr (bounded), for the operator: never for a model. */
  stderrTail(): string;
  /**
   * What its connection never passes on (tool results, errors, its stderr in an end's reason):
   * the proxy credentials in its environment (tools/mcp/stdio-start.ts). Absent: none.
   */
  secrets?: readonly string[];
}

export interface McpContainerDeps {
  docker: Docker;
  config: Config;
  runtimeId: string;
  /** uid:gid inside the container. */
  user: string;
  /** Extra labels (tests mark theirs). */
  labels?: Record<string, string>;
  /** Extra security options, after Aido's own. */
  securityOpt?: string[];
  /** The goal's host folders, a session's bound workspace included. */
  folders(goalId: string): GoalFolders;
  /** The container is gone (its connection ended and it was removed, or that failed). */
  gone?(containerId: string): void;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Container paths a mount may not cover: the kernel's, the tmpfs, the goal's folders. */

export function mcpContainerName(goalId: string, server: string): string {
  return `aido-mcp-${goalId}-${server}`;
}

/** Start the server's container with stdin and stdout attached; the caller connects a Client. */
export async function startMcpServerContainer(
  deps: McpContainerDeps,
  spec: McpServerSpec,
): Promise<McpServerContainer> {
  const options = createMcpOptions(deps, spec);
  const name = options.name as string;
  await removeStale(deps, name);
  let container: Docker.Container;
  try {
    container = await deps.docker.createContainer(options);
  } catch (e) {
    throw engineError(`creating the container of MCP server "${spec.server}"`, e, options.Image);
  }
  const label = `MCP server "${spec.server}" (goal ${spec.goalId})`;
  let exit: Promise<{ StatusCode?: number } | undefined> = Promise.resolve(undefined);
  let stream: Duplex;
  try {
    stream = (await container.attach({
      stream: true,
      stdin: true,
      stdout: true,
      stderr: true,
      hijack: true,
    })) as unknown as Duplex;
    exit = container.wait({ condition: "next-exit" }).catch(() => undefined);
    await container.start();
  } catch (e) {
    await removeMcpContainer(deps.docker, container.id);
    throw engineError(`starting the container of MCP server "${spec.server}"`, e, options.Image);
  }
  const transport = new ContainerStdioTransport(stream, {
    label,
    describeEnd: async () => describeExit(container, exit),
    ended: async () => {
      try {
        await removeMcpContainer(deps.docker, container.id);
      } finally {
        deps.gone?.(container.id);
      }
    },
  });
  return {
    transport,
    server: spec.server,
    name,
    containerId: container.id,
    stop: () => transport.close(),
    stderrTail: () => transport.stderrTail(),
  };
}

/** The runtime's MCP server containers of a goal (stopped ones too). */
async function mcpContainersOfGoal(
  docker: Docker,
  runtimeId: string,
  goalId: string,
): Promise<Docker.ContainerInfo[]> {
  assertGoalId(goalId);
  return docker.listContainers({
    all: true,
    filters: { label: [`${LABEL.runtime}=${runtimeId}`, `${LABEL.goal}=${goalId}`, LABEL.mcpServer] },
  });
}

/** Remove every MCP server container of a goal (whoever holds its connection); returns their names. */
export async function stopMcpContainersOfGoal(
  docker: Docker,
  runtimeId: string,
  goalId: string,
): Promise<string[]> {
  const found = await mcpContainersOfGoal(docker, runtimeId, goalId);
  for (const c of found) await removeMcpContainer(docker, c.Id);
  return found.map((c) => (c.Names[0] ?? c.Id).replace(/^\//, ""));
}

/** The engine's create options for the spec, every field checked first (errors name it). */
function createMcpOptions(deps: McpContainerDeps, spec: McpServerSpec): Docker.ContainerCreateOptions {
  assertGoalId(spec.goalId);
  const bad = (field: string, reason: string): never => {
    throw new AidoError(ErrorCode.invalidInput, `MCP server "${spec.server}": ${field} ${reason}`, {
      server: spec.server,
      field,
    });
  };
  if (!MCP_SERVER_NAME.test(spec.server)) {
    bad("name", `is not a server name (a-z, 0-9, "-", at most 32, starting with a letter)`);
  }
  if (spec.command.length === 0) bad("command", "is empty: give the server's argv");
  spec.command.forEach((arg, i) => {
    if (typeof arg !== "string" || arg.includes("\0")) bad(`command[${i}]`, "must be a string without NUL");
  });
  if (spec.command[0] === "") bad("command[0]", "is empty");
  const env = ["HOME=/tmp", "LANG=C.UTF-8"];
  for (const [key, value] of Object.entries(spec.env ?? {})) {
    if (!ENV_NAME.test(key)) bad(`env.${key}`, "is not a variable name (letters, digits, _)");
    if (typeof value !== "string" || value.includes("\0")) bad(`env.${key}`, "must be a string without NUL");
    env.push(`${key}=${value}`);
  }
  if (!["none", "ro", "rw"].includes(spec.workspace)) bad("workspace", `must be none, ro or rw`);
  const mounts: Docker.MountSettings[] = [];
  if (spec.workspace !== "none") {
    const folders = deps.folders(spec.goalId);
    prepareFolders(folders, parseUser(deps.user));
    mounts.push({
      Type: "bind",
      Source: folders.workspace,
      Target: "/workspace",
      ReadOnly: spec.workspace === "ro",
    });
  }
  for (const m of checkMcpMounts(spec.mounts ?? [], deps.config.home, (i, key, reason) => {
    throw new AidoError(
      ErrorCode.invalidInput,
      `MCP server "${spec.server}": mounts[${i}].${key}${key === "source" ? ":" : ""} ${reason}`,
      {
        server: spec.server,
        field: `mounts[${i}].${key}`,
      },
    );
  }))
    mounts.push({ Type: "bind", Source: m.source, Target: m.target, ReadOnly: true });
  const limits = tightenLimits(defaultLimits(deps.config), spec.limits);
  const host = lockedHostConfig(limits, mounts);
  if (spec.network !== undefined) host.NetworkMode = spec.network;
  if (deps.securityOpt) host.SecurityOpt = [...(host.SecurityOpt ?? []), ...deps.securityOpt];
  return {
    name: mcpContainerName(spec.goalId, spec.server),
    Image: spec.image ?? deps.config.sandbox.image,
    // The image's entrypoint and command are replaced by the argv, run without a shell.
    Entrypoint: [...spec.command],
    User: deps.user,
    WorkingDir: spec.workspace === "none" ? "/tmp" : "/workspace",
    Env: env,
    Labels: {
      ...deps.labels,
      [LABEL.runtime]: deps.runtimeId,
      [LABEL.goal]: spec.goalId,
      [LABEL.mcpServer]: spec.server,
      [LABEL.expires]: String(Math.floor(Date.now() / 1000) + limits.ttlSeconds),
    },
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    OpenStdin: true,
    StdinOnce: true,
    Tty: false,
    NetworkDisabled: spec.network === undefined,
    HostConfig: host,
  };
}

/** A container of that name left by this runtime goes; another runtime's is an error. */
async function removeStale(deps: McpContainerDeps, name: string): Promise<void> {
  let info: Docker.ContainerInspectInfo;
  try {
    info = await deps.docker.getContainer(name).inspect();
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 404) return;
    throw engineError(`inspecting ${name}`, e);
  }
  if (info.Config.Labels?.[LABEL.runtime] !== deps.runtimeId) {
    throw new AidoError(
      ErrorCode.sandboxFailed,
      `a container named ${name} exists and is not this runtime's; remove it or use another goal id`,
      { name },
    );
  }
  await removeMcpContainer(deps.docker, info.Id);
}

/** Remove a server's container whatever its state (gone, or being removed, is fine). */
export async function removeMcpContainer(docker: Docker, id: string): Promise<void> {
  try {
    await docker.getContainer(id).remove({ force: true, v: true });
  } catch (e) {
    const code = (e as { statusCode?: number }).statusCode;
    if (code !== 404 && code !== 409)
      throw engineError(`removing MCP server container ${id.slice(0, 12)}`, e);
  }
}

/** "it exited with code 1", "it was killed for using more than its memory", ... */
async function describeExit(
  container: Docker.Container,
  exit: Promise<{ StatusCode?: number } | undefined>,
): Promise<string> {
  const status = await Promise.race([
    exit,
    new Promise<undefined>((r) => setTimeout(() => r(undefined), 2_000).unref()),
  ]);
  // The engine may learn of the OOM kill after the exit (containerd sent the event
  // late, https://github.com/containerd/containerd/pull/12714): a SIGKILL'd end waits
  // a little for the flag before it is called a plain exit.
  const killed = status?.StatusCode === 137;
  let oom = await oomKilled(container);
  for (let i = 0; killed && oom === false && i < 15; i++) {
    await new Promise((r) => setTimeout(r, 100));
    oom = await oomKilled(container);
  }
  if (oom) return "it was killed for using more than its memory limit";
  if (status?.StatusCode === undefined) return "its output stream closed";
  return `it exited with code ${status.StatusCode}`;
}

/** The engine's OOMKilled flag; undefined once the container is gone. */
async function oomKilled(container: Docker.Container): Promise<boolean | undefined> {
  try {
    return (await container.inspect()).State.OOMKilled;
  } catch {
    return undefined; // removed already
  }
}

function engineError(what: string, e: unknown, image?: string): AidoError {
  const msg = errorMessage(e);
  const hint = /No such image/i.test(msg) && image ? ` (is the image ${image} built?)` : "";
  return new AidoError(ErrorCode.sandboxFailed, `${what} failed: ${msg}${hint}`, {}, { cause: e });
}
