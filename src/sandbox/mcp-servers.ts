// sandbox/mcp-servers.ts — which external MCP server containers (mcp-container.ts) this
// process started and still speaks to. Their stdin was attached once (StdinOnce), so only
// the process that started one can ever talk to it: one it does not hold is a leftover of
// a process before, however live its goal. DockerBackend (docker.ts) holds one of these;
// it starts a goal's servers, removes them with the goal, freezes them with the goal's own
// container while its node is fenced (ofGoal), and asks sweep() about each server container
// its gc() meets.

import type Docker from "dockerode";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { FailedContainer, GcOptions, RemovedContainer } from "./backend.js";
import { containerName, LABEL } from "./docker-containers.js";
import {
  type McpContainerDeps,
  type McpServerContainer,
  type McpServerSpec,
  removeMcpContainer,
  startMcpServerContainer,
  stopMcpContainersOfGoal,
} from "./mcp-container.js";

export class LiveMcpServers {
  /** By container id. */
  private readonly live = new Map<string, { goalId: string; server: McpServerContainer }>();
  /** goal + server of the servers being started right now. */
  private readonly starting = new Set<string>();
  private readonly deps: McpContainerDeps;

  constructor(deps: Omit<McpContainerDeps, "gone">) {
    this.deps = { ...deps, gone: (containerId) => this.live.delete(containerId) };
  }

  /**
   * Start a goal's server. A second start of the same one would take its container's name
   * and cut its client off: refused, checked and marked before any await. `ready` runs
   * first (the image); `retired` is asked once it runs, and a goal that ended meanwhile has
   * its server stopped again and the start refused.
   */
  async start(
    spec: McpServerSpec,
    ready: () => Promise<unknown>,
    refuseRetired: (goalId: string) => void,
  ): Promise<McpServerContainer> {
    const key = `${spec.goalId}\0${spec.server}`;
    const running = [...this.live.values()].some(
      (m) => m.goalId === spec.goalId && m.server.server === spec.server,
    );
    if (running || this.starting.has(key)) {
      throw new AidoError(
        ErrorCode.invalidInput,
        `MCP server "${spec.server}" of goal ${spec.goalId} is running already; stop it before starting it again`,
        { goalId: spec.goalId, server: spec.server },
      );
    }
    this.starting.add(key);
    let server: McpServerContainer;
    try {
      await ready();
      server = await startMcpServerContainer(this.deps, spec);
      this.live.set(server.containerId, { goalId: spec.goalId, server });
    } finally {
      this.starting.delete(key);
    }
    try {
      refuseRetired(spec.goalId);
    } catch (e) {
      await server.stop();
      throw e;
    }
    return server;
  }

  /** The containers of the goal's servers this process speaks to (what its fence freezes). */
  ofGoal(goalId: string): string[] {
    return [...this.live].filter(([, m]) => m.goalId === goalId).map(([id]) => id);
  }

  /** Close the goal's servers this process speaks to, then remove any other left by a process before. */
  async removeOfGoal(goalId: string): Promise<void> {
    const own = [...this.live.values()].filter((m) => m.goalId === goalId);
    await Promise.all(own.map((m) => m.server.stop()));
    await stopMcpContainersOfGoal(this.deps.docker, this.deps.runtimeId, goalId);
  }

  /**
   * A server container gc() met: removed (and reported) when it expired (stopped or not), stopped, its goal
   * is not live, or no process speaks to it; undefined when it stays, or when the engine
   * would not remove it (then it is in `failed`, with the engine's answer). One paused while
   * `frozen` says its goal is (its node's fence) runs, held: it is swept as a running one.
   */
  async sweep(
    c: Docker.ContainerInfo,
    mcpServer: string,
    now: number,
    opts: GcOptions & { frozen: (goalId: string) => boolean },
    failed: FailedContainer[],
  ): Promise<RemovedContainer | undefined> {
    const goalId = c.Labels[LABEL.goal];
    // Being started (made, not yet running or not yet held in `live`): it is its start's. Before,
    // the sweep removed it as an orphan (or a stopped one, while only created) mid-start.
    if (goalId && this.starting.has(`${goalId}\0${mcpServer}`)) return undefined;
    const expires = Number(c.Labels[LABEL.expires] ?? "0");
    let reason: RemovedContainer["reason"] | undefined;
    // Past its TTL, stopped or not, it is expired: its goal ends (as stopped it went on).
    if (expires > 0 && expires <= now) reason = "expired";
    // The engine lists a frozen one as "paused": swept as stopped, a fenced node's live goal
    // came back to a new server, whatever the old one held gone.
    else if (c.State !== "running" && !(c.State === "paused" && goalId && opts.frozen(goalId)))
      reason = "stopped";
    else if (!this.live.has(c.Id) || !goalId || !(await opts.isGoalLive(goalId))) reason = "orphan";
    if (!reason) return undefined;
    const own = this.live.get(c.Id);
    const swept = {
      name: containerName(c),
      reason,
      containerId: c.Id,
      mcpServer,
      ...(goalId ? { goalId } : {}),
    };
    try {
      if (own) await own.server.stop();
      else await removeMcpContainer(this.deps.docker, c.Id);
    } catch (e) {
      // Reported in `failed`; the sweep goes on with the other containers.
      failed.push({ ...swept, error: errorMessage(e) });
      return undefined;
    }
    return swept;
  }

  /** Stop every server this process started (nothing else could speak to them). */
  async closeAll(): Promise<void> {
    await Promise.all([...this.live.values()].map((m) => m.server.stop()));
  }
}
