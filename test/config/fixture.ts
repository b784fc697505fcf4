// test/config/fixture.ts — what the config tests share: an AIDO_HOME and a project folder
// (with its .aido/) made new for each test and removed after it, the config loaded from them
// as the CLI loads it, the operator's and the project's config.yaml, and the error a load
// is refused with.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach } from "vitest";
import { type Config, loadConfig } from "../../src/config.js";
import { type AidoError, isAidoError } from "../../src/errors.js";

export interface ConfigFolders {
  home: string;
  project: string;
}

export interface ConfigFiles {
  /** The config from the test's folders, with `env` over AIDO_HOME. */
  load(env?: Record<string, string>): Config;
  /** Write the operator's config.yaml (in AIDO_HOME). */
  operator(text: string): void;
  /** Write the project's .aido/config.yaml. */
  projectFile(text: string): void;
}

/** Fresh folders for each test of the suite it is called in, handed to `made` before the test. */
export function useConfigFolders(made: (folders: ConfigFolders) => void, prefix = "aido-"): ConfigFiles {
  let home = "";
  let project = "";
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), `${prefix}home-`));
    project = mkdtempSync(join(tmpdir(), `${prefix}project-`));
    mkdirSync(join(project, ".aido"));
    made({ home, project });
  });
  afterEach(() => {
    rmSync(home, { recursive: true, force: true });
    rmSync(project, { recursive: true, force: true });
  });
  return {
    load: (env = {}) => loadConfig({ env: { AIDO_HOME: home, ...env }, projectDir: project }),
    operator: (text) => writeFileSync(join(home, "config.yaml"), text),
    projectFile: (text) => writeFileSync(join(project, ".aido", "config.yaml"), text),
  };
}

/** The config error `fn` throws; anything else it throws is rethrown, and none is a failure. */
export function failure(fn: () => unknown): AidoError {
  try {
    fn();
  } catch (e) {
    if (isAidoError(e)) return e;
    throw e;
  }
  throw new Error("expected a config error");
}
