// A need may name a whole subtree ("/workspace/**": snapshot_create copies all of it).
// It must be judged as the subtree, not as a path that happens to contain "**".

import { describe, expect, it } from "vitest";
import { globsOverlap } from "../../src/security/glob.js";
import { parseGrant } from "../../src/security/grants.js";
import { grantsAllow } from "../../src/security/narrowing.js";
import { PolicyEngine } from "../../src/security/policy.js";

const grants = (...g: string[]) => g.map(parseGrant);

describe("subtree needs", () => {
  it("are not allowed by a grant that covers only the top level", () => {
    const need = { kind: "file_write", path: "/workspace/**" } as const;
    expect(grantsAllow(grants("file_write: /workspace/*"), need)).toBeUndefined();
    expect(grantsAllow(grants("file_write: /workspace/src/**"), need)).toBeUndefined();
    expect(grantsAllow(grants("file_write: /workspace/**"), need)).toBeDefined();
    expect(grantsAllow(grants("file_write: /**"), need)).toBeDefined();
  });

  it("hit a deny rule that covers any part of the subtree", () => {
    const engine = new PolicyEngine({
      policy: { deny: ["path: /workspace/secrets/**"], confirm: [], snapshotBeforeMutation: false },
    });
    const d = engine.decide({
      tool: "snapshot_restore",
      input: {},
      needs: [{ kind: "file_write", path: "/workspace/**" }],
    });
    expect(d.decision).toBe("deny");
    const ok = engine.decide({
      tool: "snapshot_restore",
      input: {},
      needs: [{ kind: "file_write", path: "/output/**" }],
    });
    expect(ok.decision).toBe("allow");
  });

  it("reaching a system path are denied by the built-in rule", () => {
    const engine = new PolicyEngine({ policy: { deny: [], confirm: [], snapshotBeforeMutation: false } });
    const d = engine.decide({ tool: "x", input: {}, needs: [{ kind: "file_write", path: "/**" }] });
    expect(d).toMatchObject({ decision: "deny", rule: "system-path-write" });
  });
});

describe("globsOverlap", () => {
  it("finds a shared path or says there is none", () => {
    expect(globsOverlap("/workspace/**", "/workspace/secrets/**")).toBe(true);
    expect(globsOverlap("/workspace/*.md", "/workspace/a*")).toBe(true);
    expect(globsOverlap("/a/**/z", "/a/b/*")).toBe(true);
    expect(globsOverlap("/output/**", "/workspace/**")).toBe(false);
    expect(globsOverlap("/data/*", "/data-x/*")).toBe(false);
    expect(globsOverlap("/a/*.md", "/a/*.txt")).toBe(false);
    expect(globsOverlap("/a/*", "/a/b/c")).toBe(false);
  });
});
