// test/support/home.ts — a throwaway AIDO_HOME per test, with a Config built from it.
// cleanup() also removes every container the runtime of that home created: a test that
// fails half-way, or keeps a persistent agent's container for a reopen, must not leave
// containers running on the engine after its home is gone.

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Config, type Env, loadConfig } from "../../src/config.js";
import { LABEL, runtimeIdOf } from "../../src/sandbox/docker-containers.js";

export interface TempHome {
  dir: string;
  config: Config;
  env: Env;
  cleanup(): void;
}

/** Names of the containers the runtime of `home` created, running or not (by its label). */
export function containersOfHome(home: string): string[] {
  return execFileSync(
    "docker",
    ["ps", "-a", "--filter", `label=${LABEL.runtime}=${runtimeIdOf(home)}`, "--format", "{{.Names}}"],
    { encoding: "utf8" },
  )
    .split("\n")
    .filter(Boolean);
}

export function removeContainersOfHome(home: string): void {
  try {
    const ids = execFileSync(
      "docker",
      ["ps", "-aq", "--filter", `label=${LABEL.runtime}=${runtimeIdOf(home)}`],
      { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 30_000 },
    )
      .split("\n")
      .filter((l) => l.trim() !== "");
    if (ids.length > 0) {
      execFileSync("docker", ["rm", "-f", "-v", ...ids], { stdio: "ignore", timeout: 60_000 });
    }
    // Egress networks go after their members (a network in use cannot be removed): a test
    // that failed half-way must not leave the engine's address pools a subnet short.
    const networks = execFileSync(
      "docker",
      ["network", "ls", "-q", "--filter", `label=${LABEL.runtime}=${runtimeIdOf(home)}`],
      { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 30_000 },
    )
      .split("\n")
      .filter((l) => l.trim() !== "");
    if (networks.length > 0) {
      execFileSync("docker", ["network", "rm", ...networks], { stdio: "ignore", timeout: 60_000 });
    }
  } catch {
    // No engine (suites without containers): nothing was created.
  }
}

export function makeTempHome(extraEnv: Env = {}): TempHome {
  const dir = mkdtempSync(join(tmpdir(), "aido-test-"));
  // AIDO_SANDBOX_IMAGE lets a checkout under development run its suite against its own
  // image tag, so two checkouts with different executors never rebuild each other's image.
  const image = process.env.AIDO_SANDBOX_IMAGE;
  const env: Env = { AIDO_HOME: dir, ...(image ? { AIDO_SANDBOX_IMAGE: image } : {}), ...extraEnv };
  const config = loadConfig({ env, projectDir: dir });
  return {
    dir,
    config,
    env,
    cleanup: () => {
      removeContainersOfHome(config.home);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
