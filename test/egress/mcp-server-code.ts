// test/egress/mcp-server-code.ts — what the Docker suites of stdio MCP servers with network
// entries share: the server's code in a folder of its own (mounted read-only into its
// container) and the removal of the networks a failed test leaves behind.

import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LABEL, runtimeIdOf } from "../../src/sandbox/docker-containers.js";

export function docker(...args: string[]): string {
  return execFileSync("docker", args, { encoding: "utf8" }).trim();
}

/** A new folder holding `source` as `file`, readable by the container's user. */
export function serverCodeDir(prefix: string, file: string, source: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeFileSync(join(dir, file), source);
  chmodSync(dir, 0o755);
  chmodSync(join(dir, file), 0o644);
  return dir;
}

/** Remove every Docker network of the runtime of `home` (the fixture removes containers only). */
export function removeRuntimeNetworks(home: string): void {
  const runtime = `${LABEL.runtime}=${runtimeIdOf(home)}`;
  for (const n of docker("network", "ls", "-q", "--filter", `label=${runtime}`).split("\n").filter(Boolean))
    docker("network", "rm", n);
}
