// gate/confinement.ts: what an agent's exec may touch, from its verified grants — here, which
// exec grants let it run programs from the goal's folders (the execute right there).

import { describe, expect, it } from "vitest";
import { confinementFor } from "../../src/gate/confinement.js";
import { parseGrant } from "../../src/security/grants.js";

const NONE = { deny: [], denyRead: [], denyWrite: [] };
const executes = (...execs: string[]) =>
  confinementFor(
    ["tool: exec", "file_read: /workspace/**", ...execs.map((e) => `exec: ${e}`)].map((g) => parseGrant(g)),
    NONE,
    "a1",
    undefined,
  ).execute;

describe("the execute right in the goal's folders", () => {
  it("goes to an agent whose exec grants name a program there", () => {
    expect(executes("*")).toBe(true);
    expect(executes("py* *")).toBe(true); // * spans / and ..: py/../a.out
    expect(executes("./build.sh")).toBe(true);
    expect(executes("bin/tool *")).toBe(true);
    expect(executes("/workspace/bin/tool *")).toBe(true);
    expect(executes("/tmp/agent-a1/x")).toBe(true);
    expect(executes("/usr/bin/../../workspace/x")).toBe(true);
  });

  it("goes to no other agent: bare names, absolute paths outside the folders, no exec grant", () => {
    expect(executes()).toBe(false);
    expect(executes("python3 *", "git *", "sh *")).toBe(false);
    expect(executes("/usr/bin/python3 *")).toBe(false);
    expect(executes("/lib64/ld-linux-x86-64.so.2 *", "ldd *")).toBe(false);
  });
});
