// Every sandbox command answers --help with its usage and an example, and misuse is exit 2.

import { describe, expect, it } from "vitest";
import type { CliIo } from "../../src/cli/command.js";
import { runCli } from "../../src/cli/main.js";

async function aido(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { out: (l) => out.push(l), err: (l) => err.push(l), interactive: false };
  const code = await runCli(argv, io, { AIDO_HOME: "/nonexistent-aido-home" });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("sandbox CLI help and usage", () => {
  for (const cmd of [["sandbox", "up"], ["sandbox", "list"], ["sandbox", "destroy"], ["run"], ["logs"]]) {
    it(`aido ${cmd.join(" ")} --help shows usage and an example`, async () => {
      const r = await aido(...cmd, "--help");
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/usage: aido /);
      expect(r.out).toMatch(/example:\n {2}\S/);
    });
  }

  it("aido run without a task is a usage error", async () => {
    const r = await aido("run");
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/missing TASK/);
  });

  it("aido run refuses an unknown option before TASK but passes the task's own flags through", async () => {
    expect((await aido("run", "--bogus", "x")).code).toBe(2);
  });

  it("aido sandbox destroy refuses an id that is not 12 hex characters", async () => {
    const r = await aido("sandbox", "destroy", "../../etc");
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/12 hex characters/);
  });
});
