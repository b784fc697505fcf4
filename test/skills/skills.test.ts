import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ToolContext } from "../../src/gate/types.js";
import type { SandboxHandle } from "../../src/sandbox/types.js";
import type { SkillAccess } from "../../src/skills/access.js";
import { discoverSkills } from "../../src/skills/discover.js";
import { SkillRegistry, skillMounts } from "../../src/skills/registry.js";
import { createSkillTools } from "../../src/skills/tools.js";

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "aido-skills-"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function skill(
  dir: string,
  name: string,
  description = `does ${name}`,
  body = `# ${name}\n\nSteps for ${name}.\n`,
): string {
  const folder = join(dir, name);
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, "SKILL.md"), `---\nname: ${name}\ndescription: ${description}\n---\n${body}`);
  return folder;
}

/** skill_read must never touch the container. */
const noSandbox = new Proxy({} as SandboxHandle, {
  get(_t, prop) {
    throw new Error(`skill_read touched the sandbox (${String(prop)})`);
  },
});

async function skillRead(access: SkillAccess, input: unknown, outputMaxBytes = 32_768) {
  const [tool] = createSkillTools();
  const ctx: ToolContext = {
    sandbox: noSandbox,
    goalId: "g-1",
    agentId: "a-1",
    outputMaxBytes,
    services: { skills: access },
  };
  return tool!.run(tool!.input.parse(input), ctx);
}

describe("skill discovery", () => {
  it("finds every folder with a valid SKILL.md, sorted by name", () => {
    const a = join(root, "a");
    skill(a, "zeta");
    skill(a, "alpha");
    const { skills, problems } = discoverSkills([a, join(root, "does-not-exist")]);
    expect(skills.map((s) => s.name)).toEqual(["alpha", "zeta"]);
    expect(skills[0]).toMatchObject({ description: "does alpha", root: a });
    expect(problems).toEqual([]);
  });

  it("reports a malformed SKILL.md with its file and reason, skips it, and keeps the others", () => {
    const a = join(root, "a");
    skill(a, "good");
    mkdirSync(join(a, "no-front-matter"));
    writeFileSync(join(a, "no-front-matter", "SKILL.md"), "# just markdown\n");
    mkdirSync(join(a, "wrong-name"));
    writeFileSync(join(a, "wrong-name", "SKILL.md"), "---\nname: other\ndescription: x\n---\n");
    mkdirSync(join(a, "long-desc"));
    writeFileSync(
      join(a, "long-desc", "SKILL.md"),
      `---\nname: long-desc\ndescription: ${"x".repeat(1025)}\n---\n`,
    );
    mkdirSync(join(a, "bad-yaml"));
    writeFileSync(join(a, "bad-yaml", "SKILL.md"), "---\nname: [unclosed\n---\n");
    mkdirSync(join(a, "Upper"));
    writeFileSync(join(a, "Upper", "SKILL.md"), "---\nname: Upper\ndescription: x\n---\n");
    const { skills, problems } = discoverSkills([a]);
    expect(skills.map((s) => s.name)).toEqual(["good"]);
    const byFile = Object.fromEntries(problems.map((p) => [p.file.slice(a.length + 1), p.reason]));
    expect(byFile).toEqual({
      "bad-yaml/SKILL.md": expect.stringMatching(/not valid YAML/),
      "long-desc/SKILL.md": expect.stringMatching(/longer than 1024/),
      "no-front-matter/SKILL.md": expect.stringMatching(/no front matter/),
      "Upper/SKILL.md": expect.stringMatching(/\[a-z0-9-\]/),
      "wrong-name/SKILL.md": expect.stringMatching(/does not match the folder name "wrong-name"/),
    });
  });

  it("keeps the earlier dir's skill when a later dir has the same name, and reports the shadowing", () => {
    const bundled = join(root, "bundled");
    const project = join(root, "project");
    skill(bundled, "write-report", "bundled version");
    skill(project, "write-report", "project version");
    const { skills, problems } = discoverSkills([bundled, project]);
    expect(skills).toHaveLength(1);
    expect(skills[0]!.description).toBe("bundled version");
    expect(problems).toEqual([
      {
        file: join(project, "write-report", "SKILL.md"),
        reason: expect.stringMatching(/shadowed by .*bundled/),
      },
    ]);
  });

  it("refuses a SKILL.md that is a symlink to a file outside the skill folder", () => {
    const a = join(root, "a");
    mkdirSync(join(a, "sneaky"), { recursive: true });
    writeFileSync(join(root, "outside.md"), "---\nname: sneaky\ndescription: x\n---\nsecret\n");
    symlinkSync(join(root, "outside.md"), join(a, "sneaky", "SKILL.md"));
    const { skills, problems } = discoverSkills([a]);
    expect(skills).toEqual([]);
    expect(problems[0]!.reason).toMatch(/outside the skill folder/);
  });
});

describe("skill folders that are symlinks", () => {
  it("refuses a skill folder that is a symlink out of its skills dir, and accepts one that stays inside", () => {
    const a = join(root, "a");
    const project = join(root, "project");
    skill(project, "leaky"); // e.g. a project root holding .env next to a SKILL.md
    writeFileSync(join(project, "leaky", ".env"), "SECRET=1");
    mkdirSync(a);
    symlinkSync(join(project, "leaky"), join(a, "leaky"));
    skill(join(a, ".versions"), "inner"); // hidden entries are not skills themselves
    symlinkSync(join(a, ".versions", "inner"), join(a, "inner"));
    const { skills, problems } = discoverSkills([a]);
    expect(skills.map((s) => s.name)).toEqual(["inner"]);
    expect(problems).toEqual([
      { file: join(a, "leaky"), reason: expect.stringMatching(/symlink leading outside/) },
    ]);
    expect(skillMounts([a]).map((m) => m.containerPath)).toEqual(["/skills/inner"]);
  });
});

describe("catalog", () => {
  it("lists name and description sorted by name, limited to the allow-list", () => {
    const a = join(root, "a");
    for (const n of ["charlie", "alpha", "bravo"]) skill(a, n);
    const reg = SkillRegistry.fromDirs([a]);
    const text = reg.catalog();
    expect(text.split("\n").slice(1)).toEqual([
      "- alpha: does alpha",
      "- bravo: does bravo",
      "- charlie: does charlie",
    ]);
    expect(reg.catalog(["charlie"]).split("\n").slice(1)).toEqual(["- charlie: does charlie"]);
    expect(reg.catalog([])).toBe("");
  });

  it("stays under its byte bound and says how many skills were left out", () => {
    const a = join(root, "a");
    for (let i = 0; i < 40; i++) skill(a, `skill-${String(i).padStart(2, "0")}`, "d".repeat(1000));
    const text = SkillRegistry.fromDirs([a]).catalog();
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(8 * 1024);
    const listed = text.split("\n").filter((l) => l.startsWith("- ")).length;
    expect(listed).toBeGreaterThan(0);
    expect(text).toContain(`(${40 - listed} more skills left out`);
    expect(text).toContain("- skill-00:");
  });
});

describe("skill_read confinement", () => {
  let access: SkillAccess;
  let folder: string;
  beforeEach(() => {
    const a = join(root, "skills");
    folder = skill(a, "helper", "helps", "# Helper\n\nRun scripts/run.py.\n");
    mkdirSync(join(folder, "scripts"));
    writeFileSync(join(folder, "scripts", "run.py"), "print('hi')\n");
    writeFileSync(join(root, "secret.txt"), "TOP SECRET");
    // A sibling folder whose name starts like the skill's: must not count as inside it.
    mkdirSync(join(a, "helper-evil"));
    writeFileSync(join(a, "helper-evil", "x.txt"), "evil");
    access = { registry: SkillRegistry.fromDirs([a]) };
  });

  it("reads the SKILL.md body without front matter, and a file inside the folder", async () => {
    expect((await skillRead(access, { name: "helper" })).output).toBe("# Helper\n\nRun scripts/run.py.\n");
    expect((await skillRead(access, { name: "helper", file: "scripts/run.py" })).output).toBe(
      "print('hi')\n",
    );
  });

  it("refuses paths with ..", async () => {
    for (const file of [
      "../secret.txt",
      "scripts/../../secret.txt",
      "..",
      "scripts/..\\..\\secret.txt",
      "../helper-evil/x.txt",
    ]) {
      await expect(skillRead(access, { name: "helper", file })).rejects.toMatchObject({
        code: "capability_denied",
      });
    }
  });

  it("refuses absolute paths, even ones inside the skill folder", async () => {
    await expect(skillRead(access, { name: "helper", file: join(root, "secret.txt") })).rejects.toMatchObject(
      {
        code: "capability_denied",
        message: expect.stringContaining("absolute"),
      },
    );
    await expect(skillRead(access, { name: "helper", file: join(folder, "SKILL.md") })).rejects.toMatchObject(
      {
        code: "capability_denied",
      },
    );
  });

  it("refuses a symlink inside the skill that points outside it (file or folder)", async () => {
    symlinkSync(join(root, "secret.txt"), join(folder, "notes.md"));
    symlinkSync(root, join(folder, "up"));
    symlinkSync(join(root, "skills", "helper-evil"), join(folder, "evil"));
    for (const file of ["notes.md", "up/secret.txt", "evil/x.txt"]) {
      const err = await skillRead(access, { name: "helper", file }).catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: "capability_denied",
        message: expect.stringContaining("outside the skill folder"),
      });
      expect(String((err as Error).message)).not.toContain("TOP SECRET");
    }
  });

  it("follows a symlink that stays inside the skill folder", async () => {
    symlinkSync(join(folder, "scripts", "run.py"), join(folder, "alias.py"));
    expect((await skillRead(access, { name: "helper", file: "alias.py" })).output).toBe("print('hi')\n");
  });

  it("refuses a folder, and answers not_found for a missing file", async () => {
    await expect(skillRead(access, { name: "helper", file: "scripts" })).rejects.toMatchObject({
      code: "capability_denied",
    });
    await expect(skillRead(access, { name: "helper", file: "nope.txt" })).rejects.toMatchObject({
      code: "not_found",
    });
  });

  it("caps what it returns at the context's output size", async () => {
    writeFileSync(join(folder, "big.txt"), "y".repeat(100_000));
    const r = await skillRead(access, { name: "helper", file: "big.txt" }, 2048);
    expect(Buffer.byteLength(r.output)).toBeLessThanOrEqual(2048);
    expect(r.output).toMatch(/cut at 2048 bytes/);
  });
});

describe("skill allow-list", () => {
  it("lets an agent read only the skills its manifest lists; others look absent", async () => {
    const a = join(root, "a");
    skill(a, "allowed-one");
    skill(a, "forbidden");
    const registry = SkillRegistry.fromDirs([a]);
    const access: SkillAccess = { registry, allowed: ["allowed-one"] };
    expect((await skillRead(access, { name: "allowed-one" })).output).toContain("Steps for allowed-one");
    await expect(skillRead(access, { name: "forbidden" })).rejects.toMatchObject({
      code: "not_found",
      message: 'skill "forbidden" not found',
    });
    await expect(skillRead(access, { name: "forbidden", file: "SKILL.md" })).rejects.toMatchObject({
      code: "not_found",
    });
  });

  it("refuses when no skills are bound to the agent", async () => {
    const [tool] = createSkillTools();
    const ctx: ToolContext = { sandbox: noSandbox, goalId: "g", agentId: "a", outputMaxBytes: 1000 };
    await expect(tool!.run({ name: "x" }, ctx)).rejects.toMatchObject({ code: "capability_denied" });
  });
});

describe("skill mounts", () => {
  it("mounts each discovered skill read-only at /skills/<name>, from its real folder", () => {
    const a = join(root, "a");
    const folder = skill(a, "one");
    expect(skillMounts({ skillsDirs: [a] })).toEqual([{ hostPath: folder, containerPath: "/skills/one" }]);
    expect(skillMounts([a])).toEqual(skillMounts({ skillsDirs: [a] }));
  });

  it("mounts the same skill skill_read serves: invalid skills are not mounted, the earlier dir wins a clash", () => {
    const bundled = join(root, "bundled");
    const project = join(root, "project");
    const kept = skill(bundled, "report");
    skill(project, "report", "a project's replacement");
    mkdirSync(join(project, "broken"));
    writeFileSync(join(project, "broken", "SKILL.md"), "no front matter");
    expect(skillMounts([bundled, project])).toEqual([{ hostPath: kept, containerPath: "/skills/report" }]);
  });
});
