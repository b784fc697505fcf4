// test/support/docker.ts — Docker-backed suites call requireDocker() in beforeAll. In CI
// (CI=true) a missing engine is a failure, never a silent skip; locally it fails too,
// with the command that starts one.

import { execFileSync, spawn } from "node:child_process";

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

/** A container's executor as the host sees it (its host pid), for attacks from outside. */
export function hostPidOfExecutor(container: string): number {
  const out = execFileSync("docker", ["top", container, "-eo", "pid,args"], { encoding: "utf8" });
  const line = out.split("\n").find((l) => l.includes("/opt/aido/node /opt/aido/executor.js"));
  if (!line) throw new Error(`no executor in ${container}:\n${out}`);
  return Number(line.trim().split(/\s+/)[0]);
}

/**
 * Write `bytes` into a process's stdout from the host, as root: the one writer stronger
 * than anything inside a container (whose capability bounding set is empty). Resolves when
 * the writer is done or the pipe's reader went away.
 */
export function writeIntoStdout(hostPid: number, bytes: Buffer): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new Error("this test writes into a container process from the host: run the suite as root");
  }
  return new Promise((resolve) => {
    const child = spawn("sh", ["-c", `exec cat > /proc/${hostPid}/fd/1`], {
      stdio: ["pipe", "ignore", "ignore"],
    });
    child.stdin.on("error", () => {});
    child.on("exit", () => resolve());
    child.stdin.end(bytes);
  });
}

/**
 * The host's address on Docker's default bridge (what a container on it routes to the host
 * through). The bridge's IPAM config names it as its gateway, except when the engine took a
 * bridge interface that already had its address (the engine then records only the subnet):
 * then it is read from that interface, as the host sees it.
 */
export function bridgeGateway(): string {
  const inspect = (format: string) =>
    execFileSync("docker", ["network", "inspect", "bridge", "-f", format], { encoding: "utf8" }).trim();
  const gateway = inspect("{{range .IPAM.Config}}{{.Gateway}}{{end}}");
  if (gateway !== "") return gateway;
  // Read with ip(8): Node lists only interfaces that are up, and the bridge is down while no
  // container is attached to it.
  const name = inspect('{{index .Options "com.docker.network.bridge.name"}}') || "docker0";
  const shown = execFileSync("ip", ["-4", "-o", "addr", "show", "dev", name], { encoding: "utf8" });
  const address = /\binet (\d+\.\d+\.\d+\.\d+)\//.exec(shown)?.[1];
  if (address === undefined)
    throw new Error(
      `Docker's default bridge names no gateway, and its interface ${name} has no IPv4 address`,
    );
  return address;
}
