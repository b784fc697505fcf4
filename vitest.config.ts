import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 600_000,
    pool: "forks",
    // Docker-backed suites share one engine; two cores do not gain from more.
    maxWorkers: 2,
  },
});
