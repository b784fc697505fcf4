// sandbox/goal-container.ts — where a goal's container comes from at its first acquire
// (DockerBackend.open): its running container adopted (one on the network the goal now has:
// none, or its egress network), else a warm-pool slot handed over (only for a goal with the
// default limits, every skill, its own workspace and no network, and a slot that has waited
// less than a tenth of its TTL), else a new one made. What it was made with (limits, skills,
// bound workspace, egress share, expiry) is recorded in the backend's maps, for the
// containers made in place of it (replaceContainer) and for the sweep.

import { existsSync, renameSync } from "node:fs";
import type Docker from "dockerode";
import type { Config } from "../config.js";
import { ensurePrivateDir } from "../security/private-home.js";
import { type SkillMount, skillMounts } from "../skills/registry.js";
import type { AcquireOptions } from "./backend.js";
import { defaultLimits, type SandboxLimits, sameLimits, tightenLimits } from "./container-spec.js";
import { LABEL, type RuntimeContainers } from "./docker-containers.js";
import type { DockerSandbox } from "./docker-sandbox.js";
import type { ExecutorSession } from "./executor-session.js";
import type { GoalFolders } from "./folders.js";
import type { GoalExpiries } from "./goal-expiry.js";
import type { PoolSlot, WarmPool } from "./pool.js";
import type { PoolSlots } from "./pool-slots.js";

/** What opening a goal's container reads and records of its backend (DockerBackend). */
export interface GoalContainerSource {
  config: Config;
  docker: Docker;
  containers: RuntimeContainers;
  pool: WarmPool;
  slots: PoolSlots;
  expiries: GoalExpiries;
  limitsOf: Map<string, SandboxLimits>;
  skillsOf: Map<string, SkillMount[]>;
  workspaceOf: Map<string, string>;
  egressShareOf: Map<string, string>;
  foldersOf(goalId: string, workspace: string | undefined): GoalFolders;
  /** The goal's egress network, made (with its relay) if the goal has one. */
  networkOf(goalId: string): Promise<string | undefined>;
  imageOnce(): Promise<unknown>;
  /** The goal's sandbox over this container (and this executor session, a slot's). */
  handle(goalId: string, container: Docker.Container, session?: ExecutorSession): DockerSandbox;
}

/** The skill a /skills/<name> mount carries. */
function nameOfMount(m: SkillMount): string {
  return m.containerPath.slice(m.containerPath.lastIndexOf("/") + 1);
}

export async function openGoalContainer(
  b: GoalContainerSource,
  goalId: string,
  opts: AcquireOptions,
): Promise<DockerSandbox> {
  const defaults = defaultLimits(b.config);
  const limits = tightenLimits(defaults, opts.limits);
  const folders = b.foldersOf(goalId, opts.workspace);
  const everySkill = skillMounts(b.config);
  const skills = opts.skills ? everySkill.filter((m) => opts.skills?.includes(nameOfMount(m))) : everySkill;
  const name = b.containers.goalName(goalId);
  const existing = await b.containers.inspect(name);
  let handle: DockerSandbox | undefined;
  if (opts.workspace !== undefined) b.workspaceOf.set(goalId, opts.workspace);
  if (opts.egressShare !== undefined) b.egressShareOf.set(goalId, opts.egressShare);
  const network = await b.networkOf(goalId);
  // A running container on the wrong network (none, where the goal now has one) is replaced.
  const onNetwork = (c: Docker.ContainerInspectInfo) =>
    network === undefined ? c.HostConfig.NetworkMode === "none" : c.HostConfig.NetworkMode === network;
  if (existing?.State.Running && onNetwork(existing)) {
    b.limitsOf.set(goalId, b.containers.limitsFromLabels(existing.Config.Labels) ?? limits);
    b.expiries.adopt(goalId, existing.Config.Labels);
    b.skillsOf.set(goalId, skills);
    handle = b.handle(goalId, b.docker.getContainer(existing.Id));
  } else {
    if (existing) {
      b.expiries.adopt(goalId, existing.Config.Labels); // a stopped one's expiry goes on
      await b.containers.remove(existing.Id);
    }
    b.limitsOf.set(goalId, limits);
    b.skillsOf.set(goalId, skills);
    // Pool slots mount every skill and their own workspace; a goal allowed fewer skills,
    // or working in a bound host folder, gets a container of its own.
    const poolFits =
      !b.expiries.has(goalId) &&
      sameLimits(limits, defaults) &&
      skills.length === everySkill.length &&
      opts.workspace === undefined &&
      network === undefined;
    // A slot's TTL counts from when it started: one that waited more than a tenth of it
    // (a daemon left idle) is replaced, or its goal would be ended as expired early, or
    // at the first sweep when it waited past its TTL.
    const fresh = (s: PoolSlot) => s.expires - Date.now() / 1000 >= 0.9 * defaults.ttlSeconds;
    const slot = !existsSync(folders.root) && poolFits ? b.pool.take(fresh) : undefined;
    if (slot) {
      ensurePrivateDir(b.config.goalsDir);
      renameSync(slot.folders.root, folders.root);
      await slot.container.rename({ name });
      b.slots.handOver(slot);
      b.expiries.adopt(goalId, { [LABEL.expires]: String(slot.expires) });
      handle = b.handle(goalId, slot.container, slot.session);
    } else {
      await b.imageOnce();
      // Its TTL counts from its start's end; the sweep leaves it while it starts.
      const container = await b.expiries.start(goalId, limits.ttlSeconds, (expiry) =>
        b.containers.createStarted(
          name,
          folders,
          limits,
          { [LABEL.goal]: goalId, ...expiry },
          skills,
          network,
        ),
      );
      handle = b.handle(goalId, container);
    }
    void b.pool.refill();
  }
  return handle;
}
