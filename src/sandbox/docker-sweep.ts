// sandbox/docker-sweep.ts — DockerBackend.gc(): what of a runtime's containers, egress networks
// and folders goes. A goal's container goes when it is an orphan (its goal not live, or on an
// egress network this process did not set up), expired (its label's time passed: its goal
// ends) or stopped; a paused one this process holds frozen (its node's fence) runs, held, and
// stays. A warm-pool slot goes unless this process owns it; an MCP server's container is
// mcp-servers.ts's to judge. One container the engine will not remove does not stop the sweep
// (reported, tried again next time). Relays and networks of ended goals go after the
// containers; expired goal folders when asked, and the folders of slots nobody owns.

import { performance } from "node:perf_hooks";
import type { Config } from "../config.js";
import { parseMcpEgressId } from "../egress/mcp-callers.js";
import { errorMessage } from "../errors.js";
import type { GcOptions, GcReport } from "./backend.js";
import { containerName, LABEL, type RuntimeContainers } from "./docker-containers.js";
import type { EgressNetworks } from "./egress-network.js";
import { sweepGoalFolders, sweepPoolFolders } from "./gc-folders.js";
import type { LiveMcpServers } from "./mcp-servers.js";
import type { PoolSlots } from "./pool-slots.js";

/** What the sweep reads of its backend, and tells it. */
export interface SweptRuntime {
  config: Config;
  containers: RuntimeContainers;
  mcpServers: LiveMcpServers;
  networks: EgressNetworks;
  slots: PoolSlots;
  /** Goal folders a sweep found expired but could not remove: the next sweep tries them again. */
  failedGoalFolders: Set<string>;
  /** Whether this process holds the goal frozen (its paused containers are kept). */
  frozen(goalId: string): boolean;
  /** Whether the goal is on an egress network this process set up. */
  onEgressNetwork(goalId: string): boolean;
  /** Whether this process has a sandbox handle for the goal. */
  hasHandle(goalId: string): boolean;
  /**
   * Whether a start of the goal's container is under way, or ended after `since` (performance.now()):
   * what the listing says of it (created, an expiry label from its creation) is the start's.
   */
  starting(goalId: string, since: number): boolean;
  /** The goal's expiry as this process keeps it (from its first container's start), if it does. */
  expiresOf(goalId: string): number | undefined;
  /**
   * The goal's container was judged to go (its handle goes; its expiry too, when it expired).
   * `labels`: those of a live goal's container, whose expiry its next container keeps.
   */
  swept(
    goalId: string,
    reason: GcReport["removedContainers"][number]["reason"],
    labels?: Record<string, string>,
  ): void;
  /** The goal has something in the engine (a kept network): its removal asks the engine. */
  touch(goalId: string): void;
}

export async function sweepRuntime(s: SweptRuntime, opts: GcOptions): Promise<GcReport> {
  const now = opts.nowSeconds ?? Math.floor(Date.now() / 1000);
  const report: GcReport = {
    removedContainers: [],
    removedFolders: [],
    failedFolders: [],
    failedContainers: [],
  };
  const liveContainers = new Set<string>();
  const listedAt = performance.now();
  for (const c of await s.containers.list(true)) {
    if (c.Labels[LABEL.relay]) continue; // the egress sweep's, below
    const name = containerName(c);
    const mcpServer = c.Labels[LABEL.mcpServer];
    if (mcpServer !== undefined) {
      const frozen = (g: string) => s.frozen(g);
      const removed = await s.mcpServers.sweep(
        c,
        mcpServer,
        now,
        { ...opts, frozen },
        report.failedContainers,
      );
      if (removed) report.removedContainers.push(removed);
      else if (c.Labels[LABEL.goal]) liveContainers.add(c.Labels[LABEL.goal] as string);
      continue;
    }
    const goalId = s.containers.goalOfName(name);
    const slot = c.Labels[LABEL.pool];
    let reason: GcReport["removedContainers"][number]["reason"] | undefined;
    // Its TTL counts from its first container's start (the label, from its creation, is earlier).
    const kept = goalId ? s.expiresOf(goalId) : undefined;
    const expires = kept || Number(c.Labels[LABEL.expires] ?? "0");
    if (!goalId) reason = slot && s.slots.owned.has(slot) ? undefined : "stale-pool";
    // Past the expiry this process keeps (its first container's start + TTL): expired, a
    // restart under way or not. Before, a goal whose container kept dying and being started
    // again (its task ending the container's `sleep`) was left as starting by each sweep that
    // looked mid-restart, and outlived its TTL.
    else if (kept !== undefined && kept > 0 && kept <= now) reason = "expired";
    // Being started (created, not yet running; or started since the listing): it is the start's.
    // Before, a start slower than the TTL was killed mid-way (expired, or stopped as created).
    else if (s.starting(goalId, listedAt)) reason = undefined;
    else if (expires > 0 && expires <= now) reason = "expired";
    // A container this process froze (its node is fenced: pause) runs, held: the engine
    // lists it as "paused", and sweeping it as stopped removed a live goal's container under
    // its fence. One paused that nothing here holds frozen (an earlier process's fence, an
    // unpause given up whose removal failed too) would stay so for good: it goes as a stopped one does.
    else if (c.State !== "running" && !(c.State === "paused" && goalId && s.frozen(goalId)))
      reason = "stopped";
    else if (!(await opts.isGoalLive(goalId))) reason = "orphan";
    // On an egress network this process did not set up (one being made now is in there).
    else if (c.HostConfig.NetworkMode !== "none" && !s.onEgressNetwork(goalId)) reason = "orphan";
    if (!reason) {
      if (goalId) liveContainers.add(goalId);
      continue;
    }
    // A live goal's container that goes (stopped, or on a network this process did not set up)
    // leaves its expiry to the goal's next one: before, after a restart (nothing adopted it:
    // reattach takes only running containers without a network) the next counted a fresh TTL.
    if (goalId) {
      const live = reason === "stopped" || reason === "orphan" ? await opts.isGoalLive(goalId) : false;
      s.swept(goalId, reason, live ? c.Labels : undefined);
    }
    const swept = { name, reason, containerId: c.Id, ...(goalId ? { goalId } : {}) };
    // One container the engine will not remove (a 500 for it) does not stop the sweep.
    const error = await s.containers.remove(c.Id).then(
      () => undefined,
      (e: unknown) => errorMessage(e),
    );
    if (error !== undefined) {
      report.failedContainers.push({ ...swept, error });
      continue;
    }
    report.removedContainers.push(swept);
  }
  // Relays and networks of goals that ended (a live goal's stay: its next container joins them).
  report.removedEgress = await s.networks.sweep(report.failedContainers, async (g) => {
    // An MCP server's network lives as long as its goal; one kept is the goal's to remove.
    const goalId = parseMcpEgressId(g)?.goalId ?? g;
    const kept = s.onEgressNetwork(g) || (await opts.isGoalLive(goalId));
    if (kept) s.touch(goalId);
    return kept;
  });
  if (opts.removeExpiredFolders) {
    const keep = async (goalId: string) =>
      liveContainers.has(goalId) || s.hasHandle(goalId) || (await opts.isGoalLive(goalId));
    const ttl = s.config.sandbox.ttlSeconds;
    await sweepGoalFolders(s.config.goalsDir, ttl, now, keep, report, s.failedGoalFolders);
  }
  // Stale slots' folders too (their containers removed above): once a sweep, so one that
  // will not go is tried, and reported, once.
  sweepPoolFolders(s.slots.dir, s.slots.owned, report);
  return report;
}
