// The sandbox image: built for real on first need (offline via debootstrap when no
// registry answers, as on this machine), found again by its recipe label, and rebuilt
// when the recipe changes. The first run on a fresh engine takes minutes; later ones
// find the label and return at once.

import { appendFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findAptMirror, parseDeb822, parseSourcesList } from "../../src/sandbox/apt-mirror.js";
import { connectDocker } from "../../src/sandbox/engine.js";
import { ensureImage, RECIPE_LABEL, readRecipe } from "../../src/sandbox/image.js";
import { requireDocker } from "../support/docker.js";
import { makeTempHome } from "../support/home.js";

const home = makeTempHome();
const docker = connectDocker();
const scratchTag = `aido-sandbox-test:${process.pid}`;
afterAll(async () => {
  await docker
    .getImage(scratchTag)
    .remove({ force: true })
    .catch(() => {});
  home.cleanup();
});

describe("ensureImage", () => {
  it("builds the image on first need, then finds it by its recipe label", {
    timeout: 60 * 60_000,
  }, async () => {
    requireDocker();
    const progress: string[] = [];
    const first = await ensureImage(home.config, { onProgress: (m) => progress.push(m) });
    const recipe = readRecipe(home.config);
    expect(first.recipeHash).toBe(recipe.hash);
    if (first.source !== "cached") expect(progress.length).toBeGreaterThan(3);
    const info = await docker.getImage(home.config.sandbox.image).inspect();
    expect(info.Config.Labels?.[RECIPE_LABEL]).toBe(recipe.hash);
    expect(info.Config.User).toBe("1000:1000");
    const again = await ensureImage(home.config);
    expect(again.source).toBe("cached");
    expect(again.durationMs).toBeLessThan(5000);
  });

  it("rebuilds the top layer on the cached base when only the image name (the recipe target) is new", async () => {
    const config = { ...home.config, sandbox: { ...home.config.sandbox, image: scratchTag } };
    const progress: string[] = [];
    const r = await ensureImage(config, { onProgress: (m) => progress.push(m) });
    expect(r.source).toBe("base-cached");
    expect(progress.join("\n")).toMatch(/Successfully tagged/);
    const c = await docker.createContainer({
      Image: scratchTag,
      Cmd: [
        "sh",
        "-c",
        "for p in python3 node git jq patch diff less file unzip zip tree gawk ps find; do command -v $p >/dev/null || echo missing $p; done; test -r /opt/aido/executor.js && id -un; " +
          // The helper runs; the executor's node may be run but not read; sh is dash.
          'test -x /opt/aido/aido-landlock && test -x /opt/aido/node && ! test -r /opt/aido/node && test "$(readlink -f /bin/sh)" = /usr/bin/dash && echo layout-ok',
      ],
      NetworkDisabled: true,
    });
    try {
      await c.start();
      await c.wait();
      const logs = (await c.logs({ stdout: true, stderr: true })).toString("utf8");
      expect(logs).not.toMatch(/missing/);
      expect(logs).toMatch(/aido/);
      expect(logs).toMatch(/layout-ok/);
    } finally {
      await c.remove({ force: true });
    }
  });
});

describe("the recipe", () => {
  it("covers the Landlock helper's source and the executor bundle in the top layer's hash only", () => {
    const root = mkdtempSync(join(tmpdir(), "aido-recipe-"));
    cpSync(join(home.config.packageRoot, "sandbox-image"), join(root, "sandbox-image"), { recursive: true });
    const before = readRecipe({ packageRoot: root });
    expect(before.executorPath).toMatch(/executor\.cjs$/);
    appendFileSync(join(root, "sandbox-image", "aido-landlock.c"), "\n/* changed */\n");
    const after = readRecipe({ packageRoot: root });
    expect(after.baseHash).toBe(before.baseHash);
    expect(after.hash).not.toBe(before.hash);
    rmSync(root, { recursive: true, force: true });
  });
});

describe("Debian mirror discovery", () => {
  it("reads the mirror of the suite from deb822 sources, skipping the security archive", () => {
    const text = [
      "Types: deb",
      "URIs: http://mirror.example/debian-security",
      "Suites: bookworm-security",
      "",
      "Types: deb",
      "URIs: http://mirror.example/debian",
      "Suites: bookworm bookworm-updates",
    ].join("\n");
    const dir = mkdtempSync(join(tmpdir(), "aido-apt-"));
    mkdirSync(join(dir, "sources.list.d"));
    writeFileSync(join(dir, "sources.list.d", "debian.sources"), text);
    expect(findAptMirror("bookworm", dir)).toBe("http://mirror.example/debian");
    expect(parseDeb822("Types: deb-src\nURIs: http://x/\nSuites: bookworm")).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });

  it("reads classic sources.list lines with options", () => {
    expect(parseSourcesList("# c\ndeb [arch=amd64] http://m.example/debian bookworm main\n")).toEqual([
      { uri: "http://m.example/debian", suites: ["bookworm"] },
    ]);
  });

  it("says how to pass a mirror when the host has none", () => {
    const dir = mkdtempSync(join(tmpdir(), "aido-apt-"));
    expect(() => findAptMirror("bookworm", dir)).toThrow(/mirror option/);
    rmSync(dir, { recursive: true, force: true });
  });
});
