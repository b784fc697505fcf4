// sandbox/docker-containers.ts — one runtime's containers on a Docker engine: how they
// are named and labelled, and the engine calls that make, find and remove them. Names:
// aido_<runtime>_goal_<goal_id> and aido_<runtime>_pool_<slot> (and a goal's egress relay,
// aido_<runtime>_relay_<goal_id>, egress-network.ts). Labels: the runtime (a
// hash of AIDO_HOME, so two homes on one engine never touch each other's containers),
// the goal or pool slot, an expiry (epoch seconds) and the limits, so that a restarted
// daemon re-attaches to the live ones and its GC removes orphans and expired ones. The
// name is the one source of a container's goal: a warm-pool container gets its goal by
// being renamed (labels cannot change after create), so GC and reattach read the goal
// from the name. Which container a goal has, and when, is docker.ts's (DockerBackend).

import { createHash } from "node:crypto";
import type Docker from "dockerode";
import type { Config } from "../config.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { SkillMount } from "../skills/registry.js";
import { createOptions, defaultLimits, type SandboxLimits, tightenLimits } from "./container-spec.js";
import { type GoalFolders, parseUser, prepareFolders } from "./folders.js";

export const LABEL = {
  runtime: "aido.runtime",
  goal: "aido.goal",
  pool: "aido.pool",
  expires: "aido.expires",
  limits: "aido.limits",
  /** An external stdio MCP server's container (sandbox/mcp-container.ts): the server's name. */
  mcpServer: "aido.mcp_server",
  /** On an egress relay container and network: the goal it serves (egress-network.ts). */
  relay: "aido.relay",
} as const;

/** A listed container's name as it was given (the engine lists it with a leading slash). */
export function containerName(c: Docker.ContainerInfo): string {
  return (c.Names[0] ?? "").replace(/^\//, "");
}

export function runtimeIdOf(home: string): string {
  return createHash("sha256").update(home).digest("hex").slice(0, 12);
}

export interface RuntimeContainersOptions {
  /** uid:gid inside the container. */
  user: string;
  /** Extra labels on every container made. */
  labels?: Record<string, string>;
  /** Extra security options on every container made, after Aido's own. */
  securityOpt?: string[];
  /**
   * The runtime id in names and labels; default: the hash of AIDO_HOME. A human sandbox's
   * egress relay and network use their own ("sbx", humansandbox/egress.ts), so that no
   * daemon's sweep takes them for a dead goal's.
   */
  runtimeId?: string;
}

export class RuntimeContainers {
  readonly runtimeId: string;

  constructor(
    readonly docker: Docker,
    private readonly config: Config,
    private readonly opts: RuntimeContainersOptions,
  ) {
    this.runtimeId = opts.runtimeId ?? runtimeIdOf(config.home);
  }

  goalName(goalId: string): string {
    return `aido_${this.runtimeId}_goal_${goalId}`;
  }

  poolName(slot: string): string {
    return `aido_${this.runtimeId}_pool_${slot}`;
  }

  /** The goal a container of this runtime belongs to, from its name; undefined for pool slots. */
  goalOfName(name: string): string | undefined {
    const prefix = `aido_${this.runtimeId}_goal_`;
    const n = name.replace(/^\//, "");
    return n.startsWith(prefix) ? n.slice(prefix.length) : undefined;
  }

  /** Create and start a container over `folders` (prepared for the container's user first). */
  async createStarted(
    name: string,
    folders: GoalFolders,
    limits: SandboxLimits,
    extraLabels: Record<string, string>,
    skills: readonly SkillMount[],
    /** The goal's egress network (egress-network.ts); absent: no network at all. */
    network?: string,
  ): Promise<Docker.Container> {
    prepareFolders(folders, parseUser(this.opts.user));
    const labels = {
      ...this.opts.labels,
      // Now + the TTL, unless extraLabels carries one (a goal's next container keeps its first's).
      [LABEL.expires]: String(Math.floor(Date.now() / 1000) + limits.ttlSeconds),
      ...extraLabels,
      [LABEL.runtime]: this.runtimeId,
      [LABEL.limits]: JSON.stringify(limits),
    };
    const spec = {
      name,
      image: this.config.sandbox.image,
      user: this.opts.user,
      labels,
      folders,
      skills,
      limits,
      ...(network ? { network } : {}),
    };
    const options = createOptions(spec);
    if (this.opts.securityOpt && options.HostConfig) {
      options.HostConfig.SecurityOpt = [...(options.HostConfig.SecurityOpt ?? []), ...this.opts.securityOpt];
    }
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer(options);
    } catch (e) {
      throw engineError(`creating container ${name}`, e);
    }
    try {
      await container.start();
    } catch (e) {
      await this.remove(container.id);
      throw engineError(`starting container ${name}`, e);
    }
    return container;
  }

  /** The container's state, or undefined when there is none of that name or id. */
  async inspect(name: string): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      return await this.docker.getContainer(name).inspect();
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return undefined;
      throw engineError(`inspecting ${name}`, e);
    }
  }

  /** Stop a container (gone or already stopped is fine); `what` names it in an error. */
  async stop(name: string, what: string): Promise<void> {
    try {
      await this.docker.getContainer(name).stop({ t: 2 });
    } catch (e) {
      const code = (e as { statusCode?: number }).statusCode;
      if (code !== 404 && code !== 304) throw engineError(`stopping ${what}`, e);
    }
  }

  /**
   * Freeze a running container (the cgroup freezer: docker pause). None by that name, or one
   * not running, is fine: nothing runs in it to freeze. Already paused is fine.
   */
  async pause(name: string): Promise<void> {
    const c = this.docker.getContainer(name);
    try {
      const st = (await c.inspect()).State;
      if (!st.Running || st.Paused) return;
      await c.pause();
    } catch (e) {
      const code = (e as { statusCode?: number }).statusCode;
      if (code !== 404 && code !== 409) throw engineError(`pausing container ${name}`, e);
    }
  }

  /** Let a paused container run again (none by that name, or one not paused, is fine). */
  async unpause(name: string): Promise<void> {
    const c = this.docker.getContainer(name);
    try {
      if (!(await c.inspect()).State.Paused) return;
      await c.unpause();
    } catch (e) {
      const code = (e as { statusCode?: number }).statusCode;
      if (code !== 404 && code !== 409) throw engineError(`unpausing container ${name}`, e);
    }
  }

  /** Remove a container and its volumes, whatever its state (gone, or being removed, is fine). */
  async remove(idOrName: string): Promise<void> {
    try {
      await this.docker.getContainer(idOrName).remove({ force: true, v: true });
    } catch (e) {
      const code = (e as { statusCode?: number }).statusCode;
      if (code !== 404 && code !== 409) throw engineError(`removing container ${idOrName}`, e);
    }
  }

  /** This runtime's containers (`all`: stopped ones too). */
  list(all: boolean): Promise<Docker.ContainerInfo[]> {
    return this.docker.listContainers({ all, filters: { label: [`${LABEL.runtime}=${this.runtimeId}`] } });
  }

  /** The limits a container was made with, held to today's defaults; undefined if unreadable. */
  limitsFromLabels(labels: Record<string, string> | undefined): SandboxLimits | undefined {
    const raw = labels?.[LABEL.limits];
    if (!raw) return undefined;
    try {
      return tightenLimits(defaultLimits(this.config), JSON.parse(raw) as Partial<SandboxLimits>);
    } catch {
      return undefined;
    }
  }
}

function engineError(what: string, e: unknown): AidoError {
  const msg = errorMessage(e);
  const hint = /No such image/i.test(msg) ? ` (build it with \`aido image build\`)` : "";
  return new AidoError(ErrorCode.sandboxFailed, `${what} failed: ${msg}${hint}`, {}, { cause: e });
}
