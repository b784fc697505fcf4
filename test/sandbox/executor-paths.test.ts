// The executor's path code on the host, without Docker, in a temp folder: realpath with
// kernel semantics (links followed where met, `link/..` is the target's parent, a missing
// tail appended normalised, loops stopped, /proc taken as written), and anchoring (an op
// judged on a canonical path refuses when a symlink stands anywhere along it, and acts
// inside the folder it opened).

import { closeSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { anchorDir, anchorParent, lstatAnchored } from "../../src/sandbox/executor/anchored.js";
import { opList, opRead, opStat, opWrite } from "../../src/sandbox/executor/files.js";
import { OpError } from "../../src/sandbox/executor/op-error.js";
import { absolute, realpathOf } from "../../src/sandbox/executor/realpath.js";

let root: string;

beforeAll(() => {
  root = realpathSync(mkdtempSync(join(tmpdir(), "aido-exec-paths-")));
  mkdirSync(join(root, "real/sub"), { recursive: true });
  writeFileSync(join(root, "real/sub/f.txt"), "one\ntwo\nthree\n");
  symlinkSync(join(root, "real"), join(root, "abs-link"));
  symlinkSync("real/sub", join(root, "rel-link"));
  symlinkSync("loop-b", join(root, "loop-a"));
  symlinkSync("loop-a", join(root, "loop-b"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (e) {
    return (e as OpError).code;
  }
};

describe("realpathOf", () => {
  it("follows absolute and relative links where they are met", () => {
    expect(realpathOf(`${root}/abs-link/sub/f.txt`)).toBe(`${root}/real/sub/f.txt`);
    expect(realpathOf(`${root}/rel-link/f.txt`)).toBe(`${root}/real/sub/f.txt`);
  });

  it("takes link/.. as the parent of the link's target, as the kernel does", () => {
    expect(realpathOf(`${root}/rel-link/../x`)).toBe(`${root}/real/x`);
  });

  it("appends a missing tail with . and .. removed", () => {
    expect(realpathOf(`${root}/real/none/./a/../b`)).toBe(`${root}/real/none/b`);
  });

  it("stops a symlink loop with an error naming the path", () => {
    expect(() => realpathOf(`${root}/loop-a/x`)).toThrow(/too many levels of symbolic links/);
  });

  it("takes relative paths from the base it is given, and refuses NUL and empty paths", () => {
    expect(absolute("a/b", "/workspace")).toBe("/workspace/a/b");
    expect(realpathOf("sub/f.txt", `${root}/real`)).toBe(`${root}/real/sub/f.txt`);
    expect(code(() => absolute("a\0b"))).toBe("invalid_input");
    expect(code(() => absolute(""))).toBe("invalid_input");
  });
});

describe("anchored operations", () => {
  it("refuses a judged path that now runs through a symlink", () => {
    const expect_ = `${root}/abs-link/sub/f.txt`;
    // The host judged the link path itself as canonical: realpath now says otherwise.
    expect(code(() => anchorParent({ path: expect_, expect: expect_ }, false))).toBe("path_changed");
  });

  it("refuses a path that is not the expected one, or not canonical", () => {
    expect(code(() => anchorParent({ path: `${root}/a`, expect: `${root}/b` }, false))).toBe("invalid_input");
    expect(code(() => anchorParent({ path: `${root}/a/../b`, expect: `${root}/a/../b` }, false))).toBe(
      "invalid_input",
    );
  });

  it("opens the parent folder and sees the last component without following it", () => {
    const p = `${root}/real/sub/f.txt`;
    const at = anchorParent({ path: p, expect: p }, false);
    try {
      expect(lstatAnchored(at)?.isFile()).toBe(true);
    } finally {
      closeSync(at.dir);
    }
    const d = anchorDir({ path: `${root}/real`, expect: `${root}/real` });
    closeSync(d);
  });

  it("reads a line window, writes atomically and lists through the anchored folder", async () => {
    const p = `${root}/real/sub/f.txt`;
    expect(await opRead({ path: p, expect: p, offset: 1, limit: 1 })).toEqual({
      content: "two\n",
      truncated: true,
      size: 14,
    });
    const w = `${root}/real/new/deep/n.txt`;
    expect(await opWrite({ path: w, expect: w, content: "hi" })).toEqual({ bytes: 2 });
    expect(await opList({ path: `${root}/real/new/deep`, expect: `${root}/real/new/deep` })).toEqual([
      { name: "n.txt", type: "file", size: 2 },
    ]);
    expect(await opStat({ path: `${root}/real/none`, expect: `${root}/real/none` })).toBeNull();
  });

  it("refuses to write through a folder that a symlink now stands in for", async () => {
    const w = `${root}/rel-link/x.txt`;
    await expect(opWrite({ path: w, expect: w, content: "x" })).rejects.toBeInstanceOf(OpError);
  });
});

describe("paths below /proc", () => {
  it("are taken as written: /proc/self and a process's magic links are not followed", () => {
    // Followed, /proc/self would be the executor and /proc/1/cwd another process's folder.
    expect(realpathOf("/proc/self/cwd/x")).toBe("/proc/self/cwd/x");
    expect(realpathOf("/proc/1/cwd/../root/etc")).toBe("/proc/1/root/etc");
    expect(realpathOf("/proc/self/fd/0")).toBe("/proc/self/fd/0");
    expect(realpathOf("/proc/../etc/hostname")).toBe("/etc/hostname");
    symlinkSync("/proc/self/cwd", join(root, "to-proc"));
    expect(realpathOf(`${root}/to-proc/secret`)).toBe("/proc/self/cwd/secret");
  });
});
