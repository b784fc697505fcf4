import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 600_000,
    pool: "forks",
    // Docker-backed suites share one engine; two cores do not gain from more.
    maxWorkers: 2,
    // expect.poll waits for a daemon, a container or a browser to catch up: on two loaded
    // cores that can take seconds (the dashboard's approval count once took more than the
    // default 1 s). A poll that gives up sooner is a flake, not a finding.
    expect: { poll: { timeout: 15_000 } },
  },
});
