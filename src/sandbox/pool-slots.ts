// sandbox/pool-slots.ts — the warm pool's slot containers (pool.ts keeps them ready): each made
// over a folder of its own under $AIDO_HOME/sandbox-pool, with every skill and the default
// limits, its executor started; owned by this process from its creation until it is a goal's
// (handOver) or destroyed. DockerBackend's sweep removes only the slot containers and folders
// no process owns (a dead process's), never one being made or handed over here.

import { join } from "node:path";
import type Docker from "dockerode";
import type { Config } from "../config.js";
import { skillMounts } from "../skills/registry.js";
import { defaultLimits } from "./container-spec.js";
import { LABEL, type RuntimeContainers } from "./docker-containers.js";
import { ExecutorSession } from "./executor-session.js";
import { foldersUnder, removeTreeNoFollow } from "./folders.js";
import type { PoolSlot } from "./pool.js";

export class PoolSlots {
  /** Where the slots' folders are. */
  readonly dir: string;
  /** The slots this process owns, from their creation until they are a goal's. */
  private readonly ownSlots = new Set<string>();

  constructor(
    private readonly config: Config,
    private readonly containers: RuntimeContainers,
    /** Builds the image if need be (once). */
    private readonly imageOnce: () => Promise<unknown>,
  ) {
    this.dir = join(config.home, "sandbox-pool");
  }

  /** The slot ids this process owns (the sweep leaves these). */
  get owned(): ReadonlySet<string> {
    return this.ownSlots;
  }

  /** The slot is a goal's now (its container renamed, its folder moved): no longer the pool's. */
  handOver(slot: PoolSlot): void {
    this.ownSlots.delete(slot.id);
  }

  async make(): Promise<PoolSlot> {
    await this.imageOnce();
    const id = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    const folders = foldersUnder(join(this.dir, id));
    this.ownSlots.add(id);
    let container: Docker.Container | undefined;
    const limits = defaultLimits(this.config);
    const expires = Math.floor(Date.now() / 1000) + limits.ttlSeconds;
    try {
      container = await this.containers.createStarted(
        this.containers.poolName(id),
        folders,
        limits,
        { [LABEL.pool]: id, [LABEL.expires]: String(expires) },
        skillMounts(this.config),
      );
      const session = await ExecutorSession.start(container);
      return { id, folders, container, session, expires };
    } catch (e) {
      this.ownSlots.delete(id);
      if (container) await this.containers.remove(container.id);
      removeTreeNoFollow(folders.root);
      throw e;
    }
  }

  async destroy(slot: PoolSlot): Promise<void> {
    this.ownSlots.delete(slot.id);
    slot.session.close();
    await this.containers.remove(slot.container.id);
    removeTreeNoFollow(slot.folders.root);
  }
}
