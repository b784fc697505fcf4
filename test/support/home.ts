// test/support/home.ts — a throwaway AIDO_HOME per test, with a Config built from it.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Config, type Env, loadConfig } from "../../src/config.js";

export interface TempHome {
  dir: string;
  config: Config;
  env: Env;
  cleanup(): void;
}

export function makeTempHome(extraEnv: Env = {}): TempHome {
  const dir = mkdtempSync(join(tmpdir(), "aido-test-"));
  const env: Env = { AIDO_HOME: dir, ...extraEnv };
  const config = loadConfig({ env, projectDir: dir });
  return { dir, config, env, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
