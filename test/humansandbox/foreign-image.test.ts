// A human sandbox on an image not built from the recipe (`runtime: docker://IMAGE`): the
// host's executor bundle is bind-mounted and runs on the image's own node; the image has no
// Landlock helper, so the person's script runs unconfined (as the human sandbox always
// runs it) straight from the executor, and only when the file allows it Unix sockets (no
// helper refuses them). The recipe's base layer stands in for such an image:
// Debian with python3 and node, no /opt/aido.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readRecipe } from "../../src/sandbox/image.js";
import { makeProject, type Project } from "./fixture.js";

let p: Project;

beforeAll(async () => {
  p = await makeProject();
});
afterAll(async () => {
  await p?.cleanup();
});

describe("a docker:// runtime without the helper", () => {
  it("runs the script with the mounted executor", async () => {
    const base = `aido-sandbox-base:${readRecipe(p.home.config).baseHash.slice(0, 16)}`;
    p.write(
      "sandbox.yaml",
      [`runtime: docker://${base}`, "permissions: { filesystem: readwrite, unix_sockets: allow }"].join("\n"),
    );
    p.write("hello.py", "import os\nprint('hello from', os.getcwd())\n");
    const up = await p.aido("sandbox", "up");
    expect(up.code, up.err.join("\n")).toBe(0);
    const run = await p.aido("run", "hello.py");
    expect(run.code, run.err.join("\n")).toBe(0);
    expect(run.out).toEqual(["hello from /workspace"]);
  });
});

describe("a docker:// runtime with a host list", () => {
  it("is refused at up, before anything is made: only the recipe's helper holds a script to the proxy's port", async () => {
    const base = `aido-sandbox-base:${readRecipe(p.home.config).baseHash.slice(0, 16)}`;
    p.write("net.yaml", [`runtime: docker://${base}`, "permissions: { network: [pypi.org] }"].join("\n"));
    const before = (await p.aido("sandbox", "list", "--json")).json<unknown[]>().length;
    const up = await p.aido("sandbox", "up", "-f", "net.yaml");
    expect(up.code).toBe(2);
    expect(up.err.join("\n")).toMatch(
      /a host list \(permissions\.network\) needs an image built from the sandbox recipe/,
    );
    expect((await p.aido("sandbox", "list", "--json")).json<unknown[]>()).toHaveLength(before);
  });
});

describe("a docker:// runtime with Unix sockets refused (the default)", () => {
  it("is refused at up, before anything is made: only the recipe's helper refuses them", async () => {
    const base = `aido-sandbox-base:${readRecipe(p.home.config).baseHash.slice(0, 16)}`;
    p.write("plain.yaml", `runtime: docker://${base}\n`);
    const before = (await p.aido("sandbox", "list", "--json")).json<unknown[]>().length;
    const up = await p.aido("sandbox", "up", "-f", "plain.yaml");
    expect(up.code).toBe(2);
    expect(up.err.join("\n")).toMatch(
      /has no Landlock helper to refuse the script Unix sockets \(permissions\.unix_sockets: deny, the default\)/,
    );
    expect((await p.aido("sandbox", "list", "--json")).json<unknown[]>()).toHaveLength(before);
  });
});
