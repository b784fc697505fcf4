// What a standing approval covers: the scope of a call. Spellings of one exec command share
// a scope; different commands, different folders or different files never do, and a
// command whose meaning is not in its printed words is scoped to its exact text.

import { describe, expect, it } from "vitest";
import type { Need } from "../../src/gate/types.js";
import { approvalScopeOf, commandScope } from "../../src/security/approval-scope.js";
import { normalizeCommand } from "../../src/security/command-scope.js";

const inWorkspace: Need[] = [{ kind: "file_read", path: "/workspace" }];
const none = { resolved: [] };
const key = (command: string, needs: Need[] = inWorkspace) =>
  commandScope(command, needs, "/workspace", none).key;

describe("the normalized exec command", () => {
  it("is shared by whitespace and quoting variants of one command", () => {
    const forms = [
      "git push origin main",
      "  git   push\torigin 'main' ",
      `git "push" 'origin' main;`,
      "git push origin ma''in",
    ];
    for (const f of forms)
      expect(normalizeCommand(f)).toEqual({ text: "git push origin main", normalized: true });
    expect(new Set(forms.map((f) => key(f))).size).toBe(1);
  });

  it("differs between different arguments, operators, redirections and order", () => {
    const distinct = [
      "rm a",
      "rm b",
      "rm a b",
      "rm 'a b'",
      "test -e x && rm x",
      "test -e x || rm x",
      "ls | wc -l",
      "ls; wc -l",
      "echo hi > out.txt",
      "echo hi >> out.txt",
      "echo hi 2> out.txt",
      "echo hi > other.txt",
      "echo hi & rm a",
      "rm a; echo hi",
    ];
    expect(new Set(distinct.map((c) => key(c))).size).toBe(distinct.length);
  });

  it("is the exact text when words are only known at run time or carry a program", () => {
    for (const c of [
      "X=a; rm $X",
      "X=b; rm $X",
      "rm $(cat list)",
      "python3 <<EOF\nprint(1)\nEOF",
      "python3 <<EOF\nimport shutil; shutil.rmtree('/workspace')\nEOF",
      "rm *.txt",
      "rm ~/x",
      "for f in a b; do rm $f; done",
      "(cd /tmp && rm a)",
      "! rm a",
    ]) {
      expect(normalizeCommand(c)).toEqual({ text: c, normalized: false });
    }
    expect(key("X=a; rm $X")).not.toBe(key("X=b; rm $X"));
    expect(key("python3 <<EOF\nprint(1)\nEOF")).not.toBe(key("python3 <<EOF\nprint(2)\nEOF"));
  });

  it("never lets a quoted command name pass for an assignment", () => {
    expect(normalizeCommand("'a=b' x")).toEqual({ text: "'a=b' x", normalized: true });
    expect(normalizeCommand("a=b x")).toEqual({ text: "a=b x", normalized: false });
    expect(key("'a=b' x")).not.toBe(key("a=b x"));
  });
});

describe("the scope of an exec call", () => {
  it("includes every path the call was judged on: the same command in another folder is another scope", () => {
    const sub: Need[] = [{ kind: "file_read", path: "/workspace/sub" }];
    expect(key("rm a", sub)).not.toBe(key("rm a"));
    const out: Need[] = [...inWorkspace, { kind: "file_write", path: "/workspace/out.txt" }];
    const elsewhere: Need[] = [...inWorkspace, { kind: "file_write", path: "/workspace/real/out.txt" }];
    expect(key("echo hi > out.txt", out)).not.toBe(key("echo hi > out.txt", elsewhere));
  });

  it("says in words what it covers", () => {
    expect(commandScope("git  push origin 'main'", inWorkspace, "/workspace", none).target).toBe(
      "exec of `git push origin main` in /workspace",
    );
    expect(commandScope("rm $X", inWorkspace, "/workspace/w", none).target).toBe(
      "exec of `rm $X` (exactly this text) in /workspace/w",
    );
  });

  it("includes what each word that could name a file resolves to", () => {
    const plain = { resolved: ["/workspace/backup.csv\u0000/workspace/backup.csv"] };
    const linked = { resolved: ["/workspace/backup.csv\u0000/output/report.md"] };
    const cp = "cp data.csv backup.csv";
    expect(commandScope(cp, inWorkspace, "/workspace", plain).key).not.toBe(
      commandScope(cp, inWorkspace, "/workspace", linked).key,
    );
    expect(commandScope(cp, inWorkspace, "/workspace", plain)).toEqual(
      commandScope(cp, inWorkspace, "/workspace", { resolved: [...plain.resolved] }),
    );
  });

  it("is not reusable, and says so, when the words could not all be resolved", () => {
    const s = commandScope("cp a b", inWorkspace, "/workspace", {
      unresolved: "it names more than 256 words",
    });
    expect(s.reusable).toBe(false);
    expect(s.key).toMatch(/^command-unshared:/);
    expect(s.target).toBe(
      "exec of `cp a b` in /workspace; no standing answer will cover it: it names more than 256 words",
    );
  });
});

describe("the scope of other calls", () => {
  it("is the canonical path for file tools, the host for web_fetch, the manifest name for spawn", () => {
    expect(
      approvalScopeOf("file_write", { path: "x/../a.md" }, [{ kind: "file_write", path: "/workspace/a.md" }]),
    ).toEqual({ key: "path:/workspace/a.md", target: "file_write on /workspace/a.md" });
    expect(
      approvalScopeOf("file_edit", {}, [
        { kind: "file_read", path: "/workspace/a.md" },
        { kind: "file_write", path: "/workspace/a.md" },
      ]).key,
    ).toBe("path:/workspace/a.md");
    expect(
      approvalScopeOf("web_fetch", { url: "https://example.com/x?y" }, [
        { kind: "network", host: "example.com", port: 443 },
      ]),
    ).toEqual({ key: "host:example.com", target: "web_fetch of any URL on host example.com" });
  });

  it("is the exact input for tools without a target", () => {
    const a = approvalScopeOf("memory_store", { content: "x", category: "fact" }, []);
    const same = approvalScopeOf("memory_store", { category: "fact", content: "x" }, []);
    const other = approvalScopeOf("memory_store", { content: "y", category: "fact" }, []);
    expect(a.key).toBe(same.key);
    expect(a.key).not.toBe(other.key);
    expect(a.target).toBe('memory_store with exactly the input {"category":"fact","content":"x"}');
  });
});
