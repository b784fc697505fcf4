// test/support/docker.ts — Docker-backed suites call requireDocker() in beforeAll. In CI
// (CI=true) a missing engine is a failure, never a silent skip; locally it fails too,
// with the command that starts one.

import { execFileSync } from "node:child_process";

export function dockerAvailable(): boolean {
  try {
    execFileSync("docker", ["info", "--format", "{{.ServerVersion}}"], { stdio: "pipe", timeout: 15_000 });
    return true;
  } catch {
    return false;
  }
}

export function requireDocker(): void {
  if (!dockerAvailable()) {
    throw new Error(
      "these tests need a running Docker engine: run `bash scripts/ensure-docker.sh` (installs docker.io and starts dockerd)",
    );
  }
}
