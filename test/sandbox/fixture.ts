// test/sandbox/fixture.ts — a DockerBackend over a throwaway AIDO_HOME. Every container it
// makes carries the label aido.test=sandbox (a leftover can be found with
// `docker ps -a --filter label=aido.test=sandbox`) and cleanup() removes them all.

import type { Config } from "../../src/config.js";
import { DockerBackend, type DockerBackendOptions } from "../../src/sandbox/docker.js";
import { requireDocker } from "../support/docker.js";
import { makeTempHome, type TempHome } from "../support/home.js";

export interface SandboxFixture {
  home: TempHome;
  config: Config;
  backend: DockerBackend;
  cleanup(): Promise<void>;
}

export function makeSandboxFixture(
  tune: (c: Config) => void = () => {},
  opts: DockerBackendOptions = {},
): SandboxFixture {
  requireDocker();
  const home = makeTempHome();
  tune(home.config);
  const backend = new DockerBackend(home.config, { labels: { "aido.test": "sandbox" }, ...opts });
  return {
    home,
    config: home.config,
    backend,
    async cleanup() {
      await backend.removeAll();
      home.cleanup();
    },
  };
}
