// humansandbox/egress.ts — a human sandbox's host list (`permissions.network: [hosts]`) through
// the machinery a goal's network grants use (docs/egress.md), with a fixed list instead of
// grants and approvals:
//   - at `up`: an internal Docker network of the sandbox's own and a relay on it
//     (sandbox/egress-network.ts; runtime id "sbx", so no daemon's sweep takes them for a
//     dead goal's), over the share folder .aido/sandboxes/<id>/egress/ (0700); the sandbox's
//     container joins that network instead of none;
//   - for the length of each `aido run`, in the CLI process: a RelayListener on the share
//     folder's socket and a proxy (createEgressProxy) whose policy is static — one caller
//     ("sandbox") with credentials made for this run, the host list read as network grants
//     (networkGrantFor: an address only when the list names it literally), no approvals —
//     and whose record is the run's evidence: network.log (JSON lines, every connection;
//     refusals at a bounded rate, as the daemon's audit takes them: denial-throttle.ts,
//     their open counts written also when a signal stops the run),
//     a `network` line per line of it in events.log, counts for summary.json that take
//     every refusal (a relay line's connections, a counted one's repeats, a flood line's
//     refusals); one run at a time (a second is refused while the socket answers);
//   - at `destroy` (or TTL expiry): relay, network and share folder go; the evidence stays.
// Credentials live in the `aido run` process only; they reach the task as its proxy
// variables (proxyEnv) and are scrubbed from everything written or shown.

import { closeSync, openSync, writeSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import type Docker from "dockerode";
import type { Config } from "../config.js";
import { EgressCallers, proxyEnv } from "../egress/callers.js";
import { DenialThrottle, type FloodCount, floodInWords } from "../egress/denial-throttle.js";
import { networkGrantFor } from "../egress/gate-policy.js";
import { RelayListener, unheldPortsInWords } from "../egress/listener.js";
import { createEgressProxy } from "../egress/proxy.js";
import { credentialSpellings } from "../egress/secret-spellings.js";
import type { EgressCaller, EgressRecord, EgressVerdict } from "../egress/types.js";
import { EGRESS_SOCKET } from "../egress/types.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { RuntimeContainers } from "../sandbox/docker-containers.js";
import { type EgressEndpoint, EgressNetworks, removeRelayAndNetwork } from "../sandbox/egress-network.js";
import { fdPath } from "../sandbox/untrusted-files.js";
import { parseGrant } from "../security/grants.js";
import { isSandboxOf, LABEL, notSandboxOf, projectLabelOf } from "./container.js";
import { NEW_FILE } from "./run-evidence.js";
import type { Scrubber } from "./scrub.js";
import { appendEvent, type SandboxPaths } from "./state.js";
import { openShareFolder } from "./store-dirs.js";

/** The runtime id of human sandboxes' relays and networks: aido_sbx_relay_<id>, aido_sbx_egress_<id>. */
export const SANDBOX_RUNTIME = "sbx";
/** The one caller of a human sandbox's proxy: the proxy user of its runs. */
export const SANDBOX_CALLER = "sandbox";
/** How long the end of a run waits for its last connections' "close" records. */
const CLOSE_WAIT_MS = 3_000;
/** A Unix socket's path is at most 107 bytes (sun_path). */
const MAX_SOCKET_PATH = 107;

function networksOf(docker: Docker, config: Config, cwd: string, id: string): EgressNetworks {
  // The relay runs as this process's user, so that it may open the 0600 socket we listen on.
  const self = `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`;
  const containers = new RuntimeContainers(docker, config, { user: self, runtimeId: SANDBOX_RUNTIME });
  return new EgressNetworks(docker, config, containers, self, {
    [LABEL.sandbox]: id,
    [LABEL.project]: projectLabelOf(cwd),
  });
}

/**
 * The sandbox's network and running relay over its share folder (made, or found and
 * restarted when its relay stopped). The share folder must hold a socket path the kernel
 * takes, so a project folder too deep for one is refused here, at `up`. The folder itself
 * is made by `up` through the sandbox's folder held open (store-dirs.ts makeShareFolder)
 * and is only checked here, through the sandbox's folder held open at `held`, to be that
 * folder still at its path (the engine binds the path into the relay, making what is not
 * there): by its path, a sandbox folder the person swapped for a link had root make an
 * `egress` folder wherever it pointed, or make one they put there root's and 0700.
 */
export async function openSandboxNetwork(
  docker: Docker,
  config: Config,
  paths: SandboxPaths,
  held: string,
): Promise<EgressEndpoint> {
  const socket = join(paths.egress, EGRESS_SOCKET);
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH)
    throw new AidoError(
      ErrorCode.configInvalid,
      `a host list needs the Unix socket ${socket}, longer than the ${MAX_SOCKET_PATH} bytes a socket path may have: run from a project folder with a shorter path`,
      { path: socket },
    );
  closeSync(openShareFolder(held, paths.egress));
  return networksOf(docker, config, paths.project.path, paths.id).ensure(paths.id, paths.egress);
}

/** The names of the sandbox's relay and network (recorded at `up`, before either is made). */
export function sandboxEgressNames(
  docker: Docker,
  config: Config,
  cwd: string,
  id: string,
): { network: string; relay: string } {
  const n = networksOf(docker, config, cwd, id);
  return { network: n.networkName(id), relay: n.relayName(id) };
}

/**
 * Relay and network removed by their recorded names (after the sandbox's container: a
 * network in use stays). Needs no config: the TTL sweep runs first. The share folder is
 * destroy's to remove with the other working folders (lifecycle.ts, through the sandbox's
 * folder held open), also when the relay or network would not go: it holds only the
 * proxy's socket, which no `aido run` serves once the sandbox is being destroyed, and a
 * relay left bound to it reaches nothing without it. The relay's failure is still thrown
 * (the destroy reports it, the record stays running, the next destroy removes it by its
 * recorded name).
 */
export async function removeSandboxNetwork(
  docker: Docker,
  egress: { network: string; relay: string },
  cwd: string,
  id: string,
): Promise<void> {
  // By the names the record gives, only when the engine's labels say they are this sandbox's.
  const labels = await Promise.all([
    docker
      .getContainer(egress.relay)
      .inspect()
      .then((i) => ["relay container", egress.relay, i.Config.Labels] as const, absent),
    docker
      .getNetwork(egress.network)
      .inspect()
      .then((n: Docker.NetworkInspectInfo) => ["network", egress.network, n.Labels] as const, absent),
  ]);
  for (const l of labels) if (l && !isSandboxOf(l[2], cwd, id)) throw notSandboxOf(l[0], l[1], id);
  await removeRelayAndNetwork(docker, egress.relay, egress.network);
}

/** A 404 of the engine: nothing there to check or remove. */
function absent(e: unknown): undefined {
  if ((e as { statusCode?: number }).statusCode === 404) return undefined;
  throw e;
}

/** What one run's connections came to (summary.json `network`). */
export interface NetworkCounts {
  hosts: string[];
  /** The run's network log, relative to the sandbox's folder. */
  log: string;
  connections: number;
  allowed: number;
  denied: number;
  /** The refused connections per stage (capability, address, relay, ...): every one counted. */
  denied_by_stage: Record<string, number>;
  bytes_up: number;
  bytes_down: number;
}

/** The proxy served for one run. */
export interface RunEgress {
  /** The proxy variables, with this run's credentials: the task's environment. */
  env: Record<string, string>;
  /** The only TCP port the task may connect to (aido-landlock --tcp-connect). */
  connect: number[];
  /** Stop serving (the open connections end, their close recorded) and count. */
  close(): Promise<NetworkCounts>;
  /**
   * The counts so far, after writing the refusals the open windows counted: a run stopped
   * by a signal ends before close(), and network.log is the evidence of those refusals.
   */
  countNow(): NetworkCounts;
}

export interface ServeOptions {
  docker: Docker;
  config: Config;
  id: string;
  hosts: readonly string[];
  paths: SandboxPaths;
  /** The sandbox's folder held open for the run (/proc/self/fd/N): the share folder is reached through it. */
  held: string;
  runId: string;
  /** runs/<run>/: network.log goes here. */
  runDir: string;
  /** Applied to what a record carries from the task (host names, reasons); told the password. */
  scrubber: Pick<Scrubber, "scrub" | "hide">;
  log(message: string): void;
}

/**
 * Is another `aido run` serving this folder's socket? Starting a listener would take its
 * socket over (and its run's connections would meet this run's credentials), so a second
 * run is refused instead. A socket nobody answers on is a stale one and is replaced.
 */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** Serve the sandbox's proxy for one run: listener on the share folder, static host list, evidence. */
export async function serveRunEgress(o: ServeOptions): Promise<RunEgress> {
  const share = openShareFolder(o.held, o.paths.egress);
  try {
    const served = await serveIn(o, fdPath(share));
    return {
      ...served,
      async close() {
        try {
          return await served.close();
        } finally {
          closeSync(share);
        }
      },
    };
  } catch (e) {
    closeSync(share);
    throw e;
  }
}

async function serveIn(o: ServeOptions, dir: string): Promise<RunEgress> {
  if (await socketAnswers(join(dir, EGRESS_SOCKET)))
    throw new AidoError(
      ErrorCode.sandboxUnavailable,
      `another \`aido run\` in sandbox ${o.id} is serving its egress proxy: with a host list, one run at a time`,
      { id: o.id },
    );
  const endpoint = await openSandboxNetwork(o.docker, o.config, o.paths, o.held);
  const callers = new EgressCallers();
  const slot = callers.slotOf({ goalId: o.id, agentId: SANDBOX_CALLER });
  // As given, as curl -v and wget -d print it (base64 of user:password), encoded on one line.
  for (const s of credentialSpellings(slot.user, slot.password, [slot.password])) o.scrubber.hide(s);
  const grants = o.hosts.map((h) => parseGrant(`network: ${h}`));
  const logRel = join("runs", o.runId, "network.log");
  const fd = openSync(join(o.runDir, "network.log"), NEW_FILE, 0o644);
  const counts: NetworkCounts = {
    hosts: [...o.hosts],
    log: logRel,
    connections: 0,
    allowed: 0,
    denied: 0,
    denied_by_stage: {},
    bytes_up: 0,
    bytes_down: 0,
  };
  // Connections opened and not yet closed: close() waits for their "close" (a tunnel records
  // it when both of its ends are gone, which may be a moment after the client's end).
  let live = 0;
  let settled: (() => void) | undefined;
  let over = false;
  // Synchronous: an open that cannot be written throws, and the proxy refuses the connection.
  const write = (line: NetworkLine): void => {
    // Never a write to a closed (and perhaps reused) descriptor; an open then is refused.
    if (over) throw new Error(`run ${o.runId} is over: its network log is closed`);
    writeSync(fd, `${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`);
    if (line.phase !== "open") appendEvent(o.paths, { event: "network", run_id: o.runId, ...line });
  };
  const refused = (stage: string, connections: number): void => {
    counts.connections += connections;
    counts.denied += connections;
    counts.denied_by_stage[stage] = (counts.denied_by_stage[stage] ?? 0) + connections;
  };
  // Refusals are written as the daemon's are (egress/denial-throttle.ts): identical ones
  // within a second counted into `repeats`, and past 20 lines a second the rest
  // counted into one `flood` line a second; the counts above take every one.
  const denials = new DenialThrottle<EgressRecord>(
    {
      entry: (e, repeats) => write({ ...evidenceOf(e, o.scrubber), ...(repeats > 0 ? { repeats } : {}) }),
      flood: (_first, count) => write(floodLine(count, o.scrubber)),
    },
    (e) => o.log(`could not write counted refusals to the network log: ${errorMessage(e)}`),
  );
  const record = (e: EgressRecord): void => {
    if (e.phase === "denied") {
      if (over) throw new Error(`run ${o.runId} is over: its network log is closed`);
      const stage = e.stage ?? "request";
      refused(stage, 1);
      denials.report(SANDBOX_CALLER, JSON.stringify([stage, e.host, e.port, e.method, e.reason]), stage, e);
      return;
    }
    write(evidenceOf(e, o.scrubber));
    if (e.phase === "open") {
      live++;
      return;
    }
    if (--live === 0) settled?.();
    counts.connections++;
    counts.allowed++;
    counts.bytes_up += e.bytesUp ?? 0;
    counts.bytes_down += e.bytesDown ?? 0;
  };
  const decide = async (caller: EgressCaller, target: Parameters<typeof networkGrantFor>[1]) =>
    caller.goalId === o.id && caller.agentId === SANDBOX_CALLER && networkGrantFor(grants, target)
      ? ({ allow: true } as EgressVerdict)
      : ({
          allow: false,
          stage: "capability",
          reason: `${target.host} port ${target.port} is not in the sandbox's host list (permissions.network)${target.literal ? "; an address must be listed as itself" : ""}`,
        } as EgressVerdict);
  const proxy = createEgressProxy(
    {
      authenticate: (caller, user, password) => callers.authenticate(caller, user, password),
      decide,
      record,
    },
    {
      hosts: o.config.egress.hosts,
      connectTimeoutMs: o.config.egress.connectTimeoutMs,
      idleTimeoutMs: o.config.egress.idleTimeoutMs,
      maxConnections: o.config.egress.maxConnections,
      // One caller: the sandbox's share is all of it.
      maxConnectionsPerCaller: o.config.egress.maxConnections,
    },
  );
  let listener: RelayListener;
  try {
    listener = await RelayListener.start({
      dir,
      callerOf: (port) => callers.callerOfPort(o.id, port),
      proxy,
      // Something in the sandbox spoke on another of the relay's ports: on the evidence too.
      // The listener reports at most once a second, counting the connections since.
      unheld: ({ ports, connections }) => {
        write({
          phase: "denied",
          host: "",
          port: 0,
          method: "",
          allowed: false,
          stage: "relay",
          reason: `relay ${unheldPortsInWords(ports)} ${ports.length === 1 ? "is" : "are"} held by no caller: ${
            connections === 1 ? "the connection was" : `${connections} connections were`
          } closed unread`,
          connections,
        });
        refused("relay", connections);
      },
      log: o.log,
    });
  } catch (e) {
    await proxy.close();
    closeSync(fd);
    throw e;
  }
  return {
    env: proxyEnv(slot, endpoint.address),
    connect: [slot.port],
    async close() {
      await listener.close();
      await proxy.close();
      if (live > 0)
        await new Promise<void>((resolve) => {
          settled = resolve;
          setTimeout(resolve, CLOSE_WAIT_MS).unref();
        });
      denials.flush();
      over = true;
      closeSync(fd);
      return counts;
    },
    countNow() {
      if (!over) denials.flush();
      return structuredClone(counts);
    },
  };
}

/** One connection's line in network.log and events.log: no credentials, task text scrubbed. */
export interface NetworkLine {
  phase: EgressRecord["phase"];
  connection?: number;
  host: string;
  port: number;
  method: string;
  allowed: boolean;
  address?: string;
  stage?: string;
  reason?: string;
  bytes_up?: number;
  bytes_down?: number;
  duration_ms?: number;
  /** Identical refusals within a second after this one, counted instead of written. */
  repeats?: number;
  /** Stage "relay": the connections this line reports. */
  connections?: number;
  /** Stage "flood": refusals past the 20 lines written in a second (denial-throttle.ts). */
  refusals?: number;
  distinct?: number;
  /** `distinct` is a lower bound: more distinct refusals came than the throttle tells apart. */
  distinct_capped?: boolean;
  stages?: Record<string, number>;
  sample?: { host: string; port: number; method: string; stage: string; reason: string }[];
}

function evidenceOf(e: EgressRecord, scrubber: Pick<Scrubber, "scrub">): NetworkLine {
  return {
    phase: e.phase,
    ...(e.connection === undefined ? {} : { connection: e.connection }),
    host: scrubber.scrub(e.host),
    port: e.port,
    method: scrubber.scrub(e.method),
    allowed: e.phase !== "denied",
    ...(e.address ? { address: e.address } : {}),
    ...(e.stage ? { stage: e.stage } : {}),
    ...(e.reason ? { reason: scrubber.scrub(e.reason) } : {}),
    ...(e.phase === "close"
      ? { bytes_up: e.bytesUp ?? 0, bytes_down: e.bytesDown ?? 0, duration_ms: e.durationMs ?? 0 }
      : {}),
  };
}

/** The line summing a second's refusals past the 20 lines written. */
function floodLine(count: FloodCount<EgressRecord>, scrubber: Pick<Scrubber, "scrub">): NetworkLine {
  return {
    phase: "denied",
    host: "",
    port: 0,
    method: "",
    allowed: false,
    stage: "flood",
    reason: floodInWords(count),
    refusals: count.refusals,
    distinct: count.distinct,
    ...(count.distinctCapped ? { distinct_capped: true } : {}),
    stages: count.stages,
    sample: count.sample.map((e) => ({
      host: scrubber.scrub(e.host),
      port: e.port,
      method: scrubber.scrub(e.method),
      stage: e.stage ?? "request",
      reason: scrubber.scrub(e.reason ?? "refused"),
    })),
  };
}
