import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import {
  loadManifestFile,
  ManifestError,
  parseManifestText,
  parseManifestValue,
} from "../../src/manifest/load.js";

function issuesOf(fn: () => unknown): ManifestError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ManifestError) return e;
    throw e;
  }
  throw new Error("expected a manifest error");
}

describe("manifests", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "aido-manifest-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("parses the DESIGN.md example with every key", () => {
    const m = parseManifestText(
      `name: writer
model: anthropic/claude-sonnet-4-5
system_prompt: "You write."
lifecycle: on-demand
capabilities:
  - "tool: file_write"
  - "file_read: /workspace/**"
  - "file_write: /output/*.md"
  - "exec: python3 *"
  - "network: api.github.com"
  - "spawn_child: [researcher]"
approval_required: [file_write]
budget: { max_tokens: 200000, reset_period_seconds: 86400 }
limits: { max_iterations: 40, max_children: 8, max_depth: 3 }
memory: { episodic: true, context_window: 128k, summarize_at: 0.7 }
skills: [code-review]
`,
      "writer.yaml",
    );
    expect(m.name).toBe("writer");
    expect(m.capabilities).toHaveLength(6);
    expect(m.capabilities[5]).toEqual({ kind: "spawn_child", names: ["researcher"] });
    expect(m.memory?.context_window).toBe(128_000);
    expect(m.budget?.max_tokens).toBe(200_000);
  });

  it("refuses an unknown key, naming the key, the file and the line", () => {
    const e = issuesOf(() => parseManifestText("name: a\nmodle: anthropic/x\n", "/m/a.yaml"));
    expect(e.code).toBe(ErrorCode.manifestInvalid);
    expect(e.message).toContain("/m/a.yaml:2");
    expect(e.message).toContain('unknown key "modle"');
  });

  it("refuses an unknown nested key and a wrong type with the key path", () => {
    const e = issuesOf(() =>
      parseManifestText("name: a\nbudget:\n  max_tokens: lots\nlimits:\n  max_iterashuns: 3\n", "b.yaml"),
    );
    expect(e.message).toMatch(/b\.yaml:3: budget\.max_tokens/);
    expect(e.message).toMatch(/b\.yaml:5: limits\.max_iterashuns: unknown key/);
  });

  it("refuses a malformed capability string, saying why", () => {
    const e = issuesOf(() =>
      parseManifestText('name: a\ncapabilities: ["file_write: output/**"]\n', "c.yaml"),
    );
    expect(e.message).toContain("capabilities.0");
    expect(e.message).toContain("absolute");
    const f = issuesOf(() => parseManifestText('name: a\ncapabilities: ["exec: ls; rm -rf /"]\n', "c.yaml"));
    expect(f.message).toContain("shell syntax");
    const g = issuesOf(() => parseManifestText('name: a\ncapabilities: ["teleport: mars"]\n', "c.yaml"));
    expect(g.message).toContain('unknown kind "teleport"');
  });

  it("reports YAML syntax errors with a line", () => {
    const e = issuesOf(() => parseManifestText("name: a\ncapabilities: [\n", "d.yaml"));
    expect(e.issues[0]?.line).toBeGreaterThan(0);
  });

  it("refuses a duplicated key instead of taking the last one", () => {
    const e = issuesOf(() =>
      parseManifestText('name: a\ncapabilities: []\ncapabilities: ["tool: *"]\n', "e.yaml"),
    );
    expect(e.code).toBe(ErrorCode.manifestInvalid);
  });

  it("resolves system_prompt_file next to the manifest", () => {
    mkdirSync(join(dir, "prompts"));
    writeFileSync(join(dir, "prompts", "w.md"), "Be brief.");
    writeFileSync(join(dir, "w.yaml"), "name: w\nsystem_prompt_file: prompts/w.md\n");
    expect(loadManifestFile(join(dir, "w.yaml")).system_prompt).toBe("Be brief.");
  });

  it("refuses a system_prompt_file that escapes the manifest folder, by .. or by symlink", () => {
    const inner = join(dir, "inner");
    mkdirSync(inner);
    writeFileSync(join(dir, "secret.txt"), "secret");
    writeFileSync(join(inner, "a.yaml"), "name: a\nsystem_prompt_file: ../secret.txt\n");
    expect(issuesOf(() => loadManifestFile(join(inner, "a.yaml"))).message).toContain("escapes");
    symlinkSync(join(dir, "secret.txt"), join(inner, "link.md"));
    writeFileSync(join(inner, "b.yaml"), "name: b\nsystem_prompt_file: link.md\n");
    expect(issuesOf(() => loadManifestFile(join(inner, "b.yaml"))).message).toContain("escapes");
    writeFileSync(join(inner, "c.yaml"), "name: c\nsystem_prompt_file: /etc/passwd\n");
    expect(issuesOf(() => loadManifestFile(join(inner, "c.yaml"))).message).toContain("relative");
  });

  it("accepts a manifest as an object, as spawn tools and the socket pass it", () => {
    const m = parseManifestValue({ name: "coder", capabilities: ["tool: exec"] }, "spawn_agent input");
    expect(m.capabilities).toEqual([{ kind: "tool", name: "exec" }]);
    const e = issuesOf(() =>
      parseManifestValue({ name: "Coder!", capabilities: "tool: exec" }, "spawn_agent input"),
    );
    expect(e.issues.map((i) => i.path)).toEqual(expect.arrayContaining(["name", "capabilities"]));
  });

  it("refuses a description with control characters, which would reach the operator's terminal", () => {
    const e = issuesOf(() =>
      parseManifestValue(
        { name: "a", description: "fine\u001b[2J\u001b]0;owned\u0007" },
        "spawn_agent input",
      ),
    );
    expect(e.issues).toEqual([
      expect.objectContaining({
        path: "description",
        message: "description must not hold control characters",
      }),
    ]);
    expect(parseManifestValue({ name: "a", description: "two\nlines\tok" }, "x").description).toBe(
      "two\nlines\tok",
    );
  });

  it("refuses a model without a known provider", () => {
    const e = issuesOf(() => parseManifestText("name: a\nmodel: skynet/v9\n", "m.yaml"));
    expect(e.message).toContain("provider/model");
  });
});
