// The manifests shipped in manifests/: they load with the real loader, every role fits
// inside the bootstrap's grants and its other limits (so the bootstrap can actually spawn
// it), each has the description the bootstrap's role catalog shows, and the prompts
// explain the /workspace vs /output convention.

import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { completeRoot, narrowChild } from "../../src/kernel/narrow-manifest.js";
import { loadManifestFile } from "../../src/manifest/load.js";
import { narrowGrants } from "../../src/security/narrowing.js";
import { SkillRegistry } from "../../src/skills/registry.js";

const dir = join(import.meta.dirname, "..", "..", "manifests");
const ROLES = ["researcher", "coder", "writer", "reviewer"];

describe("bundled manifests", () => {
  const bootstrap = loadManifestFile(join(dir, "bootstrap.yaml"));

  it("the bootstrap can delegate: every tool, workspace and output paths, and spawning each role", () => {
    expect(bootstrap.lifecycle).toBe("on-demand");
    expect(bootstrap.model).toMatch(/^anthropic\//);
    const caps = bootstrap.capabilities.map((g) => JSON.stringify(g));
    expect(caps).toContain(JSON.stringify({ kind: "tool", name: "*" }));
    expect(caps).toContain(JSON.stringify({ kind: "file_write", glob: "/output/**" }));
    expect(caps).toContain(JSON.stringify({ kind: "file_write", glob: "/workspace/**" }));
    const spawn = bootstrap.capabilities.find((g) => g.kind === "spawn_child");
    expect(spawn?.kind === "spawn_child" && [...spawn.names].sort()).toEqual([...ROLES].sort());
    expect(bootstrap.budget?.max_tokens).toBeGreaterThan(0);
  });

  it.each(ROLES)("%s loads, fits inside the bootstrap's grants and explains the folders", (role) => {
    const m = loadManifestFile(join(dir, `${role}.yaml`));
    expect(m.name).toBe(role);
    expect(() => narrowGrants(bootstrap.capabilities, m.capabilities)).not.toThrow();
    expect(m.system_prompt).toContain("/workspace");
    expect(m.system_prompt).toMatch(/\/output/);
    expect(m.budget?.max_tokens).toBeLessThan(bootstrap.budget!.max_tokens);
    expect(m.description, "the role catalog the bootstrap reads shows it").toMatch(/\w+/);
  });

  it.each(ROLES)("%s fits the bootstrap on every other axis too (skills, limits, memory)", (role) => {
    const config = loadConfig({
      env: { AIDO_HOME: join(dir, "no-home") },
      projectDir: join(dir, "no-project"),
    });
    const skills = SkillRegistry.fromConfig(config).skills.map((s) => s.name);
    const root = completeRoot(bootstrap, config, skills);
    const m = loadManifestFile(join(dir, `${role}.yaml`));
    const { offenses } = narrowChild(m, { manifest: root, model: "anthropic/x", periodic: false }, config);
    expect(offenses).toEqual([]);
  });

  it("the reviewer can read but never write or run anything", () => {
    const m = loadManifestFile(join(dir, "reviewer.yaml"));
    expect(m.capabilities.filter((g) => g.kind === "file_write" || g.kind === "exec")).toEqual([]);
    expect(
      m.capabilities.some((g) => g.kind === "tool" && ["file_write", "exec", "file_edit"].includes(g.name)),
    ).toBe(false);
  });
});
