// sandbox/mcp-mounts.ts — the operator's extra read-only mounts of a stdio MCP server's
// container (`mcp_servers.<name>.mounts`), checked: each source fit to be bound at all
// (checkBindSource: absolute, existing, not /, a pseudo-filesystem, AIDO_HOME or the Docker
// socket), each target an absolute, normalized container path other than / that neither
// covers nor lies in a folder the container needs for itself, and mounted once. Checked
// when the config loads (config.ts: an error naming mcp_servers.<name>.mounts.<i> and its
// line, rather than at a goal's first call) and again when a container is made (a path can
// change in between).

import { posix } from "node:path";
import { AidoError } from "../errors.js";
import { isWithin } from "../fs/within.js";
import { checkBindSource } from "./workspace-binds.js";

/** Container paths a mount may neither cover nor lie in (the container's own). */
export const RESERVED_TARGETS = ["/proc", "/sys", "/dev", "/tmp", "/workspace", "/output", "/inputs"];

/** What a refusal names: the mount's index, its key, and why. */
export type MountRefusal = (index: number, key: "source" | "target", reason: string) => never;

/** The mounts with each source's real path, or the first refusal (`bad`). */
export function checkMcpMounts(
  mounts: readonly { source: string; target: string }[],
  home: string,
  bad: MountRefusal,
): { source: string; target: string }[] {
  const targets = new Set<string>();
  return mounts.map((m, i) => {
    let source: string;
    try {
      source = checkBindSource(m.source, home, "source");
    } catch (e) {
      // checkBindSource names its field first ("source: ..."): the reason is what follows.
      if (e instanceof AidoError) return bad(i, "source", e.message.replace(/^source: /, ""));
      throw e;
    }
    const t = m.target;
    if (
      typeof t !== "string" ||
      !t.startsWith("/") ||
      t.includes("\0") ||
      posix.normalize(t) !== t ||
      t === "/"
    )
      bad(i, "target", `${JSON.stringify(t)} must be an absolute, normalized container path other than /`);
    const reserved = RESERVED_TARGETS.find((r) => isWithin(r, t) || isWithin(t, r));
    if (reserved) bad(i, "target", `${JSON.stringify(t)} would cover or lie in ${reserved}`);
    if (targets.has(t)) bad(i, "target", `${JSON.stringify(t)} is mounted twice`);
    targets.add(t);
    return { source, target: t };
  });
}
