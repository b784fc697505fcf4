// sandbox/container-spec.ts — what a goal's container is allowed: the limits (from
// Config.sandbox, tightened per call, never widened) and the engine create options that
// carry them. Network none (or the goal's internal egress network, whose only peer is its
// relay), all capabilities dropped, no-new-privileges, read-only root
// with a tmpfs /tmp, pids/memory/cpu caps, an init as pid 1 that reaps orphans.

import type Docker from "dockerode";
import type { Config } from "../config.js";
import { AidoError, ErrorCode } from "../errors.js";
import type { GoalFolders } from "./folders.js";

export interface SandboxLimits {
  memoryMb: number;
  cpus: number;
  pids: number;
  tmpfsMb: number;
  /** Mount /tmp noexec (scripts then run as `sh /tmp/x`, not `/tmp/x`). */
  tmpNoexec: boolean;
  ttlSeconds: number;
}

export function defaultLimits(config: Config): SandboxLimits {
  const s = config.sandbox;
  return {
    memoryMb: s.memoryMb,
    cpus: s.cpus,
    pids: s.pids,
    tmpfsMb: s.tmpfsMb,
    tmpNoexec: false,
    ttlSeconds: s.ttlSeconds,
  };
}

/** Apply a caller's (e.g. a manifest's) limits: each may only be lower; noexec only on. */
export function tightenLimits(base: SandboxLimits, asked: Partial<SandboxLimits> = {}): SandboxLimits {
  const out = { ...base };
  for (const key of ["memoryMb", "cpus", "pids", "tmpfsMb", "ttlSeconds"] as const) {
    const v = asked[key];
    if (v === undefined) continue;
    if (!(typeof v === "number" && Number.isFinite(v) && v > 0)) {
      throw new AidoError(
        ErrorCode.invalidInput,
        `sandbox limit ${key} must be a positive number, got ${v}`,
        { key },
      );
    }
    out[key] = Math.min(base[key], v);
  }
  if (asked.tmpNoexec) out.tmpNoexec = true;
  return out;
}

export function sameLimits(a: SandboxLimits, b: SandboxLimits): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export interface ContainerSpec {
  name: string;
  image: string;
  user: string;
  labels: Record<string, string>;
  folders: GoalFolders;
  /** Skill folders to mount read-only at /skills/<name> (skills/registry.ts skillMounts). */
  skills: readonly { hostPath: string; containerPath: string }[];
  limits: SandboxLimits;
  /**
   * The goal's internal egress network (sandbox/egress-network.ts), whose only other
   * member is its relay. Absent: network none.
   */
  network?: string;
}

/**
 * The lockdown every container of the runtime gets, whatever it runs (a goal's, an MCP
 * server's): no network, no capabilities, no-new-privileges, read-only root with a tmpfs
 * /tmp, the limits, an init that reaps orphans, a private IPC namespace.
 */
export function lockedHostConfig(l: SandboxLimits, mounts: Docker.MountSettings[]): Docker.HostConfig {
  const memory = l.memoryMb * 1024 * 1024;
  const tmpfs = `rw,nosuid,nodev,size=${l.tmpfsMb}m,mode=1777${l.tmpNoexec ? ",noexec" : ""}`;
  return {
    NetworkMode: "none",
    CapDrop: ["ALL"],
    SecurityOpt: ["no-new-privileges"],
    ReadonlyRootfs: true,
    Tmpfs: { "/tmp": tmpfs },
    PidsLimit: l.pids,
    Memory: memory,
    MemorySwap: memory,
    NanoCpus: Math.round(l.cpus * 1e9),
    Init: true,
    IpcMode: "private",
    Mounts: mounts,
  };
}

export function createOptions(spec: ContainerSpec): Docker.ContainerCreateOptions {
  const mounts: Docker.MountSettings[] = [
    { Type: "bind", Source: spec.folders.workspace, Target: "/workspace", ReadOnly: false },
    { Type: "bind", Source: spec.folders.output, Target: "/output", ReadOnly: false },
    { Type: "bind", Source: spec.folders.inputs, Target: "/inputs", ReadOnly: true },
    ...spec.skills.map(({ hostPath: src, containerPath }) => ({
      Type: "bind" as const,
      Source: src,
      Target: containerPath,
      ReadOnly: true,
    })),
  ];
  return {
    name: spec.name,
    Image: spec.image,
    Cmd: ["sleep", "infinity"],
    User: spec.user,
    WorkingDir: "/workspace",
    Env: ["HOME=/tmp", "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1"],
    Labels: spec.labels,
    NetworkDisabled: spec.network === undefined,
    HostConfig: { ...lockedHostConfig(spec.limits, mounts), NetworkMode: spec.network ?? "none" },
  };
}
