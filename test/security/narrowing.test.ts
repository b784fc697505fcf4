import { describe, expect, it } from "vitest";
import { AidoError } from "../../src/errors.js";
import type { Need } from "../../src/gate/types.js";
import { type Grant, parseGrant } from "../../src/security/grants.js";
import {
  execCovers,
  execMatch,
  grantCovers,
  grantsAllow,
  grantsWithin,
  hostCovers,
  narrowGrants,
} from "../../src/security/narrowing.js";

const g = (s: string): Grant => parseGrant(s);
const gs = (...s: string[]): Grant[] => s.map(g);

function denied(fn: () => unknown): AidoError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AidoError);
    expect((e as AidoError).code).toBe("capability_denied");
    return e as AidoError;
  }
  throw new Error("expected capability_denied, but the call succeeded");
}

describe("grantCovers", () => {
  it.each([
    ["tool: *", "tool: file_write", true],
    ["tool: file_read", "tool: file_read", true],
    ["tool: file_read", "tool: file_write", false],
    ["tool: file_read", "tool: *", false],
    ["file_read: /workspace/**", "file_read: /workspace/src/*.ts", true],
    ["file_write: /output/*.md", "file_write: /output/**", false],
    ["file_write: /workspace/**", "file_read: /workspace/a", false],
    ["file_read: /workspace/**", "file_write: /workspace/a", false],
    ["exec: python3 *", "exec: python3 script.py *", true],
    ["exec: python3 *", "exec: python3", true],
    ["exec: python3 script.py", "exec: python3 *", false],
    ["exec: python3 *.py", "exec: python3 a.py", true],
    ["exec: python3 *.py", "exec: python3 *", false],
    ["exec: *", "exec: rm -rf /", true],
    ["exec: ls", "exec: *", false],
    ["network: *", "network: anything.org", true],
    ["network: *.example.com", "network: a.example.com", true],
    ["network: *.example.com", "network: *.a.example.com", true],
    ["network: *.example.com", "network: example.com", false],
    ["network: *.example.com", "network: *", false],
    ["network: api.github.com", "network: github.com", false],
    ["network: pypi.org", "network: pypi.org:443", true],
    ["network: pypi.org", "network: pypi.org:80", true],
    ["network: pypi.org", "network: pypi.org:8080", false],
    ["network: pypi.org", "network: pypi.org:*", false],
    ["network: pypi.org:443", "network: pypi.org", false],
    ["network: pypi.org:*", "network: pypi.org:22", true],
    ["network: pypi.org:*", "network: pypi.org", true],
    ["network: *:*", "network: [::1]:22", true],
    ["network: *.example.com:8443", "network: a.example.com:8443", true],
    ["network: *.example.com:8443", "network: a.example.com:443", false],
    ["mcp: github/*", "mcp: github/list_issues", true],
    ["mcp: github/list_*", "mcp: github/list_issues", true],
    ["mcp: github/list_*", "mcp: github/list_*", true],
    ["mcp: github/list_*", "mcp: github/*", false],
    ["mcp: github/list_*", "mcp: github/create_issue", false],
    ["mcp: github/*", "mcp: gitlab/list_issues", false],
    ["tool: *", "mcp: github/list_issues", false],
    ["spawn_child: [*]", "spawn_child: [writer]", true],
    ["spawn_child: [researcher, writer]", "spawn_child: [writer]", true],
    ["spawn_child: [researcher]", "spawn_child: [researcher, writer]", false],
    ["spawn_child: [researcher, writer]", "spawn_child: [*]", false],
    ["tool: *", "spawn_child: [writer]", false],
  ])("%s covers %s -> %s", (parent, child, expected) => {
    expect(grantCovers(g(parent), g(child))).toBe(expected);
  });
});

describe("narrowGrants: a child can only narrow", () => {
  const parent = gs(
    "tool: file_read",
    "tool: file_write",
    "tool: exec",
    "file_read: /workspace/**",
    "file_write: /output/*.md",
    "exec: python3 *",
    "network: *.example.com",
    "spawn_child: [researcher]",
  );

  it("returns the requested grants unchanged when all are covered", () => {
    const requested = gs(
      "tool: file_read",
      "file_read: /workspace/src/**",
      "exec: python3 run.py",
      "network: a.example.com",
    );
    expect(narrowGrants(parent, requested)).toEqual(requested);
    expect(narrowGrants(parent, [])).toEqual([]);
  });

  it.each([
    ["a broader file_read glob", "file_read: /**"],
    ["file_read outside the parent's tree", "file_read: /workspace-x/**"],
    ["file_write '**' where the parent has '*'", "file_write: /output/**"],
    ["file_write of another extension", "file_write: /output/*.sh"],
    ["file_write through a read grant", "file_write: /workspace/a.txt"],
    ["a tool the parent lacks", "tool: web_fetch"],
    ["every tool", "tool: *"],
    ["spawn_child [*] under a parent limited to names", "spawn_child: [*]"],
    ["spawn_child of a name the parent lacks", "spawn_child: [writer]"],
    ["a new network host", "network: evil.org"],
    ["the parent domain itself", "network: example.com"],
    ["any host", "network: *"],
    ["a wider exec pattern", "exec: *"],
    ["another command", "exec: bash *"],
    ["a command spelled by path", "exec: /usr/bin/python3 *"],
  ])("refuses %s", (_what, grant) => {
    const err = denied(() => narrowGrants(parent, [g("tool: file_read"), g(grant)]));
    expect(err.details.offending).toEqual([grant]);
    expect(err.message).toContain(grant);
  });

  it("names EACH offending grant, and drops none silently", () => {
    const err = denied(() =>
      narrowGrants(
        parent,
        gs(
          "tool: file_read",
          "tool: web_fetch",
          "file_write: /output/**",
          "network: evil.org",
          "spawn_child: [*]",
        ),
      ),
    );
    const offending = ["tool: web_fetch", "file_write: /output/**", "network: evil.org", "spawn_child: [*]"];
    expect(err.details.offending).toEqual(offending);
    for (const o of offending) expect(err.message).toContain(o);
    expect(err.message).not.toContain('"tool: file_read"');
  });

  it("refuses traversal-shaped globs at the parser, so they never reach narrowing", () => {
    for (const s of [
      "file_read: /workspace/../etc/**",
      "file_read: /workspace/./x",
      "file_read: /workspace//x",
    ]) {
      expect(() => g(s)).toThrow(/invalid capability/);
    }
  });

  it("parses network ports and mcp grants, and names what is wrong with a bad one", () => {
    expect(g("network: pypi.org:8443")).toEqual({ kind: "network", host: "pypi.org", port: 8443 });
    expect(g("network: [::1]:22")).toEqual({ kind: "network", host: "[::1]", port: 22 });
    expect(g("network: *.example.com:*")).toEqual({ kind: "network", host: "*.example.com", port: "*" });
    expect(g("mcp: github/list_*")).toEqual({ kind: "mcp", server: "github", tool: "list_*" });
    for (const [s, why] of [
      ["network: pypi.org:0", /port "0"/],
      ["network: pypi.org:70000", /port "70000"/],
      ["network: pypi.org:8a", /port "8a"/],
      ["network: pypi.org:443:1", /<host-glob>\[:port\]/],
      ["mcp: github", /"" is not a tool name/],
      ["mcp: Git_Hub/x", /"Git_Hub" is not a server name/],
      ["mcp: a__b/x", /"a__b" is not a server name/],
      ["mcp: github/a b", /"a b" is not a tool name/],
    ] as const) {
      expect(() => g(s)).toThrow(why);
    }
  });
});

describe("grantsWithin: the operator's ceilings", () => {
  it("accepts grants under every ceiling list", () => {
    const ceilings = [
      ["file_read: /workspace/**", "tool: *"],
      ["file_read: /workspace/src/**", "tool: file_read"],
    ];
    expect(grantsWithin(ceilings, gs("file_read: /workspace/src/a.ts", "tool: file_read"))).toHaveLength(2);
    expect(grantsWithin([], gs("tool: *"))).toHaveLength(1);
  });

  it("refuses a grant covered by the user's ceiling but not the project's", () => {
    const ceilings = [
      ["file_read: /workspace/**", "tool: *"],
      ["file_read: /workspace/src/**", "tool: file_read"],
    ];
    const err = denied(() =>
      grantsWithin(ceilings, gs("file_read: /workspace/secret", "tool: exec", "tool: file_read")),
    );
    expect(err.details.offending).toEqual(["file_read: /workspace/secret", "tool: exec"]);
    expect(err.message).toContain("ceiling");
  });

  it("rejects a malformed ceiling loudly instead of ignoring it", () => {
    expect(() => grantsWithin([["file_read: relative/**"]], gs("tool: x"))).toThrow(/invalid capability/);
  });
});

describe("grantsAllow: does a concrete call fit", () => {
  const grants = gs(
    "tool: file_read",
    "file_read: /workspace/**",
    "file_write: /output/*.md",
    "exec: python3 *",
    "exec: ls -la *.txt",
    "network: api.github.com",
    "network: *.example.com",
    "spawn_child: [researcher]",
  );
  const allows = (need: Need): boolean => grantsAllow(grants, need) !== undefined;

  it("returns the grant that allowed the need", () => {
    expect(grantsAllow(grants, { kind: "file_read", path: "/workspace/a" })).toEqual(
      g("file_read: /workspace/**"),
    );
  });

  it("matches tools by name", () => {
    expect(allows({ kind: "tool", name: "file_read" })).toBe(true);
    expect(allows({ kind: "tool", name: "file_write" })).toBe(false);
    expect(grantsAllow(gs("tool: *"), { kind: "tool", name: "anything" })).toBeDefined();
  });

  it.each([
    ["file_read", "/workspace/src/a.ts", true],
    ["file_read", "/workspace", true],
    ["file_read", "/workspace-x/a", false],
    ["file_read", "/workspace/../etc/passwd", false],
    ["file_read", "/workspace/./a", false],
    ["file_read", "/workspace//a", false],
    ["file_read", "workspace/a", false],
    ["file_read", "/output/a.md", false],
    ["file_write", "/output/a.md", true],
    ["file_write", "/output/a.md/x", false],
    ["file_write", "/output/sub/a.md", false],
    ["file_write", "/workspace/a", false],
    ["file_write", "/output/../workspace/a.md", false],
  ] as const)("%s %s -> %s", (kind, path, expected) => {
    expect(allows({ kind, path })).toBe(expected);
  });

  it.each([
    [["python3"], true],
    [["python3", "a.py"], true],
    [["python3", "-c", "import os"], true],
    [["python3", ""], true],
    [["/usr/bin/python3", "a.py"], false],
    [["python", "a.py"], false],
    [["python3x"], false],
    [["ls", "-la", "notes.txt"], true],
    [["ls", "-la", "notes.txt", "extra"], false],
    [["ls", "-la"], false],
    [["ls", "-la", "notes.txt.sh"], false],
    [[], false],
    [["python3\0", "a.py"], false],
  ])("exec %j -> %s", (argv, expected) => {
    expect(allows({ kind: "exec", argv: [...argv] })).toBe(expected);
  });

  it("lets 'exec: *' run any command", () => {
    expect(grantsAllow(gs("exec: *"), { kind: "exec", argv: ["rm", "-rf", "/tmp/x"] })).toBeDefined();
  });

  it.each([
    ["api.github.com", true],
    ["API.GitHub.com", true],
    ["api.github.com.", true],
    ["github.com", false],
    ["evil-api.github.com", false],
    ["api.github.com.evil.org", false],
    ["a.example.com", true],
    ["x.y.example.com", true],
    ["example.com", false],
    ["notexample.com", false],
    ["*.example.com", false],
    ["a.example.com@evil.org", false],
    ["", false],
  ])("network %s -> %s", (host, expected) => {
    expect(allows({ kind: "network", host, port: 443 })).toBe(expected);
  });

  it("never lets a wildcard host reach an IP literal", () => {
    expect(
      grantsAllow(gs("network: *.3.4"), { kind: "network", host: "1.2.3.4", port: 443 }),
    ).toBeUndefined();
    expect(hostCovers("*.3.4", "1.2.3.4")).toBe(false);
    expect(
      grantsAllow(gs("network: 1.2.3.4"), { kind: "network", host: "1.2.3.4", port: 443 }),
    ).toBeDefined();
    expect(grantsAllow(gs("network: *"), { kind: "network", host: "[::1]", port: 443 })).toBeDefined();
  });

  it("holds a network grant to its ports: none means 80 and 443, a number that one, * any", () => {
    const net = (grant: string, port: number, host = "pypi.org") =>
      grantsAllow(gs(grant), { kind: "network", host, port }) !== undefined;
    expect(net("network: pypi.org", 443)).toBe(true);
    expect(net("network: pypi.org", 80)).toBe(true);
    expect(net("network: pypi.org", 8443)).toBe(false);
    expect(net("network: pypi.org:8443", 8443)).toBe(true);
    expect(net("network: pypi.org:8443", 443)).toBe(false);
    expect(net("network: pypi.org:*", 22)).toBe(true);
    expect(net("network: *", 22, "anything.org")).toBe(false);
  });

  it("matches an mcp call by server and tool glob", () => {
    const mcp = (grant: string, server: string, tool: string) =>
      grantsAllow(gs(grant), { kind: "mcp", server, tool }) !== undefined;
    expect(mcp("mcp: github/list_*", "github", "list_issues")).toBe(true);
    expect(mcp("mcp: github/list_*", "github", "create_issue")).toBe(false);
    expect(mcp("mcp: github/list_*", "gitlab", "list_issues")).toBe(false);
    expect(mcp("mcp: github/*", "github", "anything")).toBe(true);
  });

  it("matches spawn_child by listed name", () => {
    expect(allows({ kind: "spawn_child", name: "researcher" })).toBe(true);
    expect(allows({ kind: "spawn_child", name: "writer" })).toBe(false);
    expect(grantsAllow(gs("spawn_child: [*]"), { kind: "spawn_child", name: "writer" })).toBeDefined();
  });

  it("keeps kinds apart: a write grant does not allow reading", () => {
    expect(
      grantsAllow(gs("file_write: /output/**"), { kind: "file_read", path: "/output/a" }),
    ).toBeUndefined();
  });
});

describe("exec patterns", () => {
  it("agrees with execMatch: whatever a covered pattern allows, the covering one allows", () => {
    const patterns = [
      "python3 *",
      "python3 a.py",
      "python3 *.py",
      "python3 *.py *",
      "python3 -c *",
      "*",
      "ls *",
      "ls",
    ];
    const argvs = [
      ["python3"],
      ["python3", "a.py"],
      ["python3", "b.py", "x"],
      ["python3", "-c", "print(1)"],
      ["ls"],
      ["ls", "-l"],
      ["python3", ".py"],
    ];
    for (const outer of patterns) {
      for (const inner of patterns) {
        if (!execCovers(outer, inner)) continue;
        for (const argv of argvs) {
          if (execMatch(inner, argv))
            expect(execMatch(outer, argv), `${outer} ⊇ ${inner} on ${argv}`).toBe(true);
        }
      }
    }
  });
});
