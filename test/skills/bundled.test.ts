import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { parseManifestText } from "../../src/manifest/load.js";
import { discoverSkills } from "../../src/skills/discover.js";
import { SkillRegistry } from "../../src/skills/registry.js";

const bundledDir = resolve(import.meta.dirname, "../../skills");
const EXPECTED = [
  "data-analysis-python",
  "decompose-goal",
  "research-with-citations",
  "tdd-code-change",
  "write-report",
];

describe("bundled skills", () => {
  it("are the five documented skills, each valid, with no problems reported", () => {
    const { skills, problems } = discoverSkills([bundledDir]);
    expect(problems).toEqual([]);
    expect(skills.map((s) => s.name)).toEqual(EXPECTED);
  });

  it("name only tools this runtime has", () => {
    const tools = new Set([
      "file_read",
      "file_read_many",
      "file_write",
      "file_edit",
      "file_list",
      "grep",
      "exec",
      "web_fetch",
      "spawn_agent",
      "spawn_agents",
      "memory_store",
      "memory_query",
      "memory_delete",
      "skill_read",
      "snapshot_create",
      "snapshot_restore",
      "snapshot_list",
    ]);
    const reg = SkillRegistry.fromDirs([bundledDir]);
    let calls = 0;
    for (const name of EXPECTED) {
      const body = reg.read(name).content;
      // Tool calls are written as `tool_name {args}` in the skills.
      for (const m of body.matchAll(/`([a-z_]+) \{/g)) {
        expect(tools, `${name} names ${m[1]}`).toContain(m[1]);
        calls++;
      }
    }
    expect(calls).toBeGreaterThan(10);
  });

  it("decompose-goal shows a child manifest that the manifest loader accepts", () => {
    const body = readFileSync(join(bundledDir, "decompose-goal", "SKILL.md"), "utf8");
    const yaml = /```yaml\n([\s\S]*?)```/.exec(body)?.[1];
    expect(yaml).toBeDefined();
    const m = parseManifestText(yaml!, "decompose-goal/SKILL.md");
    expect(m.name).toBe("pricing-researcher");
    expect(m.capabilities.map((g) => g.kind).sort()).toEqual([
      "file_write",
      "network",
      "tool",
      "tool",
      "tool",
    ]);
    expect(m.skills).toEqual(["research-with-citations"]);
  });

  it("data-analysis-python's profiler runs on python3 with the standard library and groups values", () => {
    const dir = mkdtempSync(join(tmpdir(), "aido-csv-"));
    try {
      const csv = join(dir, "sales.csv");
      writeFileSync(csv, 'region,revenue\nnorth,"1,200"\nsouth,800\nnorth,$300\neast,\n');
      const script = join(bundledDir, "data-analysis-python", "scripts", "summarize_csv.py");
      const out = JSON.parse(
        execFileSync("python3", ["-I", script, csv, "--group-by", "region", "--value", "revenue"], {
          encoding: "utf8",
        }),
      );
      expect(out.rows).toBe(4);
      expect(out.columns.revenue).toMatchObject({
        type: "numeric",
        missing: 1,
        count: 3,
        median: 800,
        min: 300,
        max: 1200,
      });
      expect(out.columns.region).toMatchObject({ type: "text", distinct: 3 });
      expect(out.grouped.groups[0]).toMatchObject({ group: "north", count: 2, sum: 1500 });
      expect(out.grouped.rows_skipped).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
