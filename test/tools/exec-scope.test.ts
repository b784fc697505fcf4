// The words of an exec that a standing approval must see resolved (tools/exec-scope.ts):
// every static word that could name a file, whatever it looks like, and nothing a run
// decides. Resolution itself is exercised against the real container in
// test/redteam/approval-files.test.ts; here, which words and how a batch is bounded.

import { describe, expect, it } from "vitest";
import type { SandboxHandle } from "../../src/sandbox/types.js";
import { analyzeCommand } from "../../src/security/shell.js";
import { fileWords, MAX_SCOPE_PATHS, resolveScopeWords } from "../../src/tools/exec-scope.js";

const words = (command: string) => analyzeCommand(command).commands.flatMap((c) => fileWords(c));
/** These words name no code file: nothing is read. */
const readable = () => undefined;

/** A container stand-in whose realpath maps a few links; counts the calls. */
function linked(links: Record<string, string>) {
  const asked: string[] = [];
  const sandbox = {
    realpath: async (p: string) => {
      asked.push(p);
      if (p.includes("bad")) throw new Error("too many levels of symbolic links");
      return links[p] ?? p;
    },
  } as unknown as SandboxHandle;
  return { sandbox, asked };
}

describe("the words that could name a file", () => {
  it("are operands, option values, NAME=VALUE values and the tails of short-option clusters", () => {
    expect(words("cp data.csv backup.csv")).toEqual(["data.csv", "backup.csv"]);
    expect(words("dd if=data.csv of=backup.csv")).toEqual([
      "if=data.csv",
      "data.csv",
      "of=backup.csv",
      "backup.csv",
    ]);
    expect(words("sort --output=out.txt -oother.txt in.txt")).toEqual([
      "out.txt",
      "other.txt",
      "ther.txt",
      "her.txt",
      "er.txt",
      "r.txt",
      ".txt",
      "txt",
      "xt",
      "t",
      "in.txt",
    ]);
    expect(words("rm -- -rf")).toEqual(["-rf"]);
    expect(words("FILE=x.txt cat y")).toEqual(["y", "x.txt"]);
  });

  it("leave out run-time words, bare options and stdin", () => {
    expect(words("cat $X - *.txt --verbose -v")).toEqual([]);
  });
});

describe("resolving them", () => {
  it("resolves each word from each folder it may be opened from, as sorted pairs", async () => {
    const { sandbox, asked } = linked({ "/workspace/backup.csv": "/output/report.md" });
    const r = await resolveScopeWords(
      sandbox,
      [
        { text: "backup.csv", dirs: ["/workspace", "/workspace/sub"] },
        { text: "/abs", dirs: null },
      ],
      readable,
    );
    expect(r).toEqual({
      resolved: [
        "/abs\u0000/abs",
        "/workspace/backup.csv\u0000/output/report.md",
        "/workspace/sub/backup.csv\u0000/workspace/sub/backup.csv",
      ],
    });
    expect(asked).toHaveLength(3);
  });

  it(`gives up (ask every time) past ${MAX_SCOPE_PATHS} paths, for unknown folders and for failures`, async () => {
    const { sandbox, asked } = linked({});
    const many = Array.from({ length: MAX_SCOPE_PATHS + 1 }, (_, i) => ({
      text: `f${i}`,
      dirs: ["/workspace"],
    }));
    expect(await resolveScopeWords(sandbox, many, readable)).toEqual({
      unresolved: `it names more than ${MAX_SCOPE_PATHS} words that could be files`,
    });
    expect(asked).toHaveLength(0);
    expect(await resolveScopeWords(sandbox, [{ text: "x", dirs: null }], readable)).toEqual({
      unresolved: 'the word "x" is opened from a folder known only at run time',
    });
    expect(await resolveScopeWords(sandbox, [{ text: "bad", dirs: ["/workspace"] }], readable)).toEqual({
      unresolved: '"/workspace/bad" cannot be resolved (too many levels of symbolic links)',
    });
  });
});
