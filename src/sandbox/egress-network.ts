// sandbox/egress-network.ts — the Docker side of a goal's egress: an internal network of its
// own and a relay container on it (issue 13). The network is created Internal and with the
// bridge's IPv4 address inhibited, so it has no gateway: its members reach each other and
// nothing else (not the host, not the default bridge, not the outside; measured on Docker
// 20.10). Its only members are the goal's container and the relay, which runs
// sandbox-image/aido-relay.js as the daemon's uid:gid (so it may open the daemon's 0600
// socket in the shared folder), with every capability dropped, no-new-privileges, a
// read-only root and small limits, and forwards each TCP connection on its ports to that
// socket (egress/listener.ts on the daemon's side).
// Names: aido_<runtime>_egress_<goal> (network) and aido_<runtime>_relay_<goal> (relay),
// both with the runtime label and LABEL.relay = the goal, so that a sweep finds them. A
// stdio MCP server with network entries has its own (the goal id is then its pseudo-goal,
// egress/mcp-callers.ts), removed with its goal (removeServers).

import type Docker from "dockerode";
import type { Config } from "../config.js";
import { parseMcpEgressId } from "../egress/mcp-callers.js";
import { EGRESS_BASE_PORT, EGRESS_SLOTS, EGRESS_SOCKET } from "../egress/types.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { ensurePrivateDir } from "../security/private-home.js";
import type { FailedContainer } from "./backend.js";
import { containerName, LABEL, type RuntimeContainers } from "./docker-containers.js";

/** Where the shared folder is mounted in the relay. */
const SHARE_MOUNT = "/egress";
const RELAY_SCRIPT = "/opt/aido/aido-relay.js";
const RELAY_READY_MS = 15_000;

export interface EgressEndpoint {
  /** The network the goal's container joins. */
  network: string;
  /** The relay's address on it: what the proxy variables name. */
  address: string;
}

export class EgressNetworks {
  private readonly ready = new Map<string, Promise<EgressEndpoint>>();
  /**
   * The removals under way: a second one of the same network joins the first. Two at once (an
   * MCP server's stop, tools/mcp/stdio-start.ts, and its goal's removal) raced: the second found
   * the relay being removed and failed on its network, still in use by it.
   */
  private readonly removing = new Map<string, Promise<void>>();

  constructor(
    private readonly docker: Docker,
    private readonly config: Config,
    private readonly containers: RuntimeContainers,
    /** uid:gid of the daemon: the relay's user. */
    private readonly daemonUser: string,
    private readonly labels: Record<string, string> = {},
  ) {}

  networkName(goalId: string): string {
    return `aido_${this.containers.runtimeId}_egress_${goalId}`;
  }

  relayName(goalId: string): string {
    return `aido_${this.containers.runtimeId}_relay_${goalId}`;
  }

  /** The goal's network and running relay over `share`, made once (concurrent calls share it). */
  ensure(goalId: string, share: string): Promise<EgressEndpoint> {
    let p = this.ready.get(goalId);
    if (!p) {
      p = this.make(goalId, share).catch((e) => {
        this.ready.delete(goalId);
        throw e;
      });
      this.ready.set(goalId, p);
    }
    return p;
  }

  /** The endpoint made by ensure(), if any (replacing a dead goal container). */
  endpointOf(goalId: string): Promise<EgressEndpoint> | undefined {
    return this.ready.get(goalId);
  }

  /** The relay and the network go (after the goal's container: a network in use stays). */
  remove(goalId: string): Promise<void> {
    this.ready.delete(goalId);
    let removal = this.removing.get(goalId);
    if (!removal) {
      removal = removeRelayAndNetwork(this.docker, this.relayName(goalId), this.networkName(goalId)).finally(
        () => this.removing.delete(goalId),
      );
      this.removing.set(goalId, removal);
    }
    return removal;
  }

  /** The networks of the goal's MCP servers (egress/mcp-callers.ts), with their relays. */
  async removeServers(goalId: string): Promise<void> {
    const ids = new Set<string>();
    for (const id of this.ready.keys()) if (parseMcpEgressId(id)?.goalId === goalId) ids.add(id);
    for (const n of await this.networks()) {
      const id = n.Labels?.[LABEL.relay];
      if (id !== undefined && parseMcpEgressId(id)?.goalId === goalId) ids.add(id);
    }
    for (const id of ids) await this.remove(id);
  }

  /**
   * Relays and networks of goals that are not live (`isLive`), and relays that stopped:
   * removed. Returns the goals whose egress went. The goal containers are swept first. A
   * relay the engine would not remove goes in `failed` (the sweep goes on), and its network,
   * still in use by it, stays for the next sweep.
   */
  async sweep(
    failed: FailedContainer[],
    isLive: (goalId: string) => boolean | Promise<boolean>,
  ): Promise<string[]> {
    const gone = new Set<string>();
    /** Goals whose relay the engine would not remove: their network, still in use, stays too. */
    const stuck = new Set<string>();
    for (const c of await this.containers.list(true)) {
      const goalId = c.Labels[LABEL.relay];
      if (!goalId) continue;
      if (c.State === "running" && (await isLive(goalId))) continue;
      this.ready.delete(goalId);
      try {
        await this.containers.remove(c.Id);
      } catch (e) {
        const reason = c.State === "running" ? "orphan" : "stopped";
        failed.push({ name: containerName(c), containerId: c.Id, goalId, reason, error: errorMessage(e) });
        stuck.add(goalId);
        continue;
      }
      gone.add(goalId);
    }
    for (const n of await this.networks()) {
      const goalId = n.Labels?.[LABEL.relay];
      if (!goalId || stuck.has(goalId) || ((await isLive(goalId)) && !gone.has(goalId))) continue;
      this.ready.delete(goalId);
      await removeNetwork(this.docker, n.Id);
      gone.add(goalId);
    }
    return [...gone].sort();
  }

  /** Every network of this runtime (tests' cleanup; the containers must be gone first). */
  async removeAll(): Promise<void> {
    this.ready.clear();
    for (const n of await this.networks()) await removeNetwork(this.docker, n.Id);
  }

  private networks(): Promise<Docker.NetworkInspectInfo[]> {
    return this.docker.listNetworks({
      filters: { label: [`${LABEL.runtime}=${this.containers.runtimeId}`] },
    });
  }

  private async make(goalId: string, share: string): Promise<EgressEndpoint> {
    const network = this.networkName(goalId);
    const labels = { ...this.labels, [LABEL.runtime]: this.containers.runtimeId, [LABEL.relay]: goalId };
    try {
      await this.docker.createNetwork({
        Name: network,
        Driver: "bridge",
        Internal: true,
        CheckDuplicate: true,
        Labels: labels,
        // No address on the host's side of the bridge: no gateway to the host or beyond.
        Options: { "com.docker.network.bridge.inhibit_ipv4": "true" },
      });
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 409)
        throw engineError(`creating network ${network}`, e);
    }
    const relay = this.relayName(goalId);
    let info = await this.containers.inspect(relay);
    if (info && !info.State.Running) {
      await this.containers.remove(info.Id);
      info = undefined;
    }
    if (!info) {
      ensurePrivateDir(share);
      const container = await this.createRelay(relay, network, share, labels);
      await this.waitReady(container, relay);
      info = await this.containers.inspect(relay);
    }
    const address = info?.NetworkSettings.Networks[network]?.IPAddress;
    if (!address) {
      throw new AidoError(ErrorCode.sandboxFailed, `the egress relay ${relay} has no address on ${network}`, {
        goalId,
      });
    }
    return { network, address };
  }

  private async createRelay(
    name: string,
    network: string,
    share: string,
    labels: Record<string, string>,
  ): Promise<Docker.Container> {
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer({
        name,
        Image: this.config.sandbox.image,
        Cmd: [
          "/usr/bin/node",
          RELAY_SCRIPT,
          `${SHARE_MOUNT}/${EGRESS_SOCKET}`,
          String(EGRESS_BASE_PORT),
          String(EGRESS_SLOTS),
        ],
        User: this.daemonUser,
        WorkingDir: "/",
        Env: ["HOME=/tmp"],
        Labels: labels,
        HostConfig: {
          NetworkMode: network,
          CapDrop: ["ALL"],
          SecurityOpt: ["no-new-privileges"],
          ReadonlyRootfs: true,
          Tmpfs: { "/tmp": "rw,nosuid,nodev,noexec,size=1m" },
          PidsLimit: 32,
          Memory: 128 * 1024 * 1024,
          MemorySwap: 128 * 1024 * 1024,
          NanoCpus: 500_000_000,
          IpcMode: "private",
          Init: true,
          Mounts: [{ Type: "bind", Source: share, Target: SHARE_MOUNT, ReadOnly: false }],
        },
      });
    } catch (e) {
      throw engineError(`creating the egress relay ${name}`, e);
    }
    try {
      await container.start();
    } catch (e) {
      await this.containers.remove(container.id);
      throw engineError(`starting the egress relay ${name}`, e);
    }
    return container;
  }

  /** The relay prints "ready" once every port listens. */
  private async waitReady(container: Docker.Container, name: string): Promise<void> {
    const deadline = Date.now() + RELAY_READY_MS;
    for (;;) {
      const logs = (await container.logs({ stdout: true, stderr: true })).toString("latin1");
      if (/\bready\n/.test(logs)) return;
      const state = (await container.inspect()).State;
      if (!state.Running || Date.now() > deadline) {
        await this.containers.remove(container.id);
        throw new AidoError(
          ErrorCode.sandboxFailed,
          `the egress relay ${name} did not start${state.Running ? ` within ${RELAY_READY_MS} ms` : ` (exit ${state.ExitCode})`}: ${logs.slice(-300)}`,
          {},
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * A relay, then its network, by name (gone already is fine). The network's other members
 * must be gone first: a network in use stays. A human sandbox's destroy calls it with the
 * names it recorded (it may run before any config is read: the TTL sweep).
 */
export async function removeRelayAndNetwork(docker: Docker, relay: string, network: string): Promise<void> {
  try {
    await docker.getContainer(relay).remove({ force: true, v: true });
  } catch (e) {
    const code = (e as { statusCode?: number }).statusCode;
    if (code !== 404 && code !== 409) throw engineError(`removing the egress relay ${relay}`, e);
  }
  await removeNetwork(docker, network);
}

async function removeNetwork(docker: Docker, idOrName: string): Promise<void> {
  try {
    await docker.getNetwork(idOrName).remove();
  } catch (e) {
    const code = (e as { statusCode?: number }).statusCode;
    if (code !== 404) throw engineError(`removing network ${idOrName}`, e);
  }
}

function engineError(what: string, e: unknown): AidoError {
  return new AidoError(ErrorCode.sandboxFailed, `${what} failed: ${errorMessage(e)}`, {}, { cause: e });
}
