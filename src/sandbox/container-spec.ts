// sandbox/container-spec.ts — what a goal's container is allowed: the limits (from
// Config.sandbox, tightened per call, never widened) and the engine create options that
// carry them. Network none, all capabilities dropped, no-new-privileges, read-only root
// with a tmpfs /tmp, pids/memory/cpu caps, an init as pid 1 that reaps orphans.

import { existsSync, lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
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

/**
 * The skills to show at /skills, read-only: every folder with a SKILL.md in the given
 * skills dirs, one bind mount each at /skills/<name>; a later dir wins a name clash
 * (package < user < project, the order of Config.skillsDirs). Symlinked skill folders
 * are skipped: a mount source must be what it looks like.
 */
export function skillMounts(skillsDirs: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const dir of skillsDirs) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) continue;
      const st = lstatSync(p);
      if (st.isDirectory() && existsSync(join(p, "SKILL.md"))) out.set(name, p);
    }
  }
  return out;
}

export interface ContainerSpec {
  name: string;
  image: string;
  user: string;
  labels: Record<string, string>;
  folders: GoalFolders;
  skills: Map<string, string>;
  limits: SandboxLimits;
}

export function createOptions(spec: ContainerSpec): Docker.ContainerCreateOptions {
  const l = spec.limits;
  const memory = l.memoryMb * 1024 * 1024;
  const tmpfs = `rw,nosuid,nodev,size=${l.tmpfsMb}m,mode=1777${l.tmpNoexec ? ",noexec" : ""}`;
  const mounts: Docker.MountSettings[] = [
    { Type: "bind", Source: spec.folders.workspace, Target: "/workspace", ReadOnly: false },
    { Type: "bind", Source: spec.folders.output, Target: "/output", ReadOnly: false },
    { Type: "bind", Source: spec.folders.inputs, Target: "/inputs", ReadOnly: true },
    ...[...spec.skills].map(([name, src]) => ({
      Type: "bind" as const,
      Source: src,
      Target: `/skills/${name}`,
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
    NetworkDisabled: true,
    HostConfig: {
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
    },
  };
}
