// The executor's path code on the host, without Docker, in a temp folder: realpath with
// kernel semantics (links followed where met, `link/..` is the target's parent, a missing
// tail appended normalised, loops stopped, /proc taken as written), and anchoring (an op
// judged on a canonical path refuses when a symlink stands anywhere along it, acts inside the
// folder it opened, and returns nothing read through a folder that moved). Reads refuse what
// is not a regular file (a fifo) without blocking; file_edit refuses files over 8 MiB.

import { execFileSync } from "node:child_process";
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { anchorDir, anchorParent, lstatAnchored, stillAt } from "../../src/sandbox/executor/anchored.js";
import { EDIT_MAX_BYTES, opEdit, opList, opRead, opStat, opWrite } from "../../src/sandbox/executor/files.js";
import { grepWork } from "../../src/sandbox/executor/grep.js";
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

  it("are refused by every file op, whichever road led there: a link, .., /dev/fd, /proc itself", async () => {
    symlinkSync(`/proc/${process.pid}/environ`, join(root, "env-link"));
    symlinkSync(`/proc/${process.pid}`, join(root, "pid-link"));
    const roads = [
      `${root}/env-link`,
      `${root}/pid-link/environ`,
      `${root}/../../proc/self/environ`,
      "/dev/fd/../environ",
      "/proc",
      `/proc/${process.pid}`,
    ];
    for (const road of roads) {
      const judged = realpathOf(road);
      expect(judged.startsWith("/proc"), road).toBe(true);
      const a = { path: judged, expect: judged };
      await expect(opRead(a), road).rejects.toMatchObject({ code: "permission_denied" });
      await expect(opList(a), road).rejects.toMatchObject({ code: "permission_denied" });
      await expect(opStat(a), road).rejects.toMatchObject({ code: "permission_denied" });
      await expect(opWrite({ ...a, content: "x" }), road).rejects.toMatchObject({
        code: "permission_denied",
      });
      expect(
        code(() => grepWork({ pattern: "PROXY", ...a, maxMatches: 10 })),
        road,
      ).toBe("permission_denied");
    }
  });

  it("a walk never enters a folder of the proc file system", () => {
    // /proc/self/task/<tid>/status says "Name:": a walk that entered proc folders finds it.
    const found = grepWork({
      pattern: "^Name:",
      path: `/proc/${process.pid}/task`,
      glob: "*/status",
      maxMatches: 5,
    });
    expect(found).toEqual([]);
  });
});

describe("reads that must not block or leak", () => {
  it("refuses a fifo at once, anchored or not, and grep skips it", async () => {
    mkdirSync(join(root, "fifos"));
    execFileSync("mkfifo", [join(root, "fifos/f")]);
    writeFileSync(join(root, "fifos/plain.txt"), "needle\n");
    const f = `${root}/fifos/f`;
    const started = Date.now();
    await expect(opRead({ path: f, expect: f })).rejects.toThrow(/is a fifo; only regular files can be read/);
    await expect(opRead({ path: f })).rejects.toThrow(/is a fifo/);
    await expect(opEdit({ path: f, expect: f, oldString: "a", newString: "b" })).rejects.toThrow(/is a fifo/);
    const hits = grepWork({
      pattern: "needle",
      path: `${root}/fifos`,
      maxMatches: 10,
      expect: `${root}/fifos`,
    });
    expect(hits.map((h) => h.path)).toEqual([`${root}/fifos/plain.txt`]);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("tells whether an open folder is still where it was judged", () => {
    mkdirSync(join(root, "mv/a"), { recursive: true });
    const fd = anchorDir({ path: `${root}/mv/a`, expect: `${root}/mv/a` });
    try {
      expect(stillAt(fd, `${root}/mv/a`)).toBe(true);
      renameSync(join(root, "mv/a"), join(root, "mv/b"));
      expect(stillAt(fd, `${root}/mv/a`)).toBe(false);
      rmSync(join(root, "mv/b"), { recursive: true });
      expect(stillAt(fd, `${root}/mv/b`)).toBe(false); // "(deleted)"
    } finally {
      closeSync(fd);
    }
  });

  it("refuses to edit a file over 8 MiB, naming the limit, and leaves it untouched", async () => {
    const big = `${root}/big.txt`;
    writeFileSync(big, "x");
    truncateSync(big, EDIT_MAX_BYTES + 1);
    await expect(opEdit({ path: big, expect: big, oldString: "x", newString: "y" })).rejects.toThrow(
      /is 8388609 bytes; file_edit edits files of at most 8388608 bytes \(8 MiB\)/,
    );
    const ok = `${root}/ok.txt`;
    writeFileSync(ok, "x".repeat(EDIT_MAX_BYTES - 1) + "y");
    expect(await opEdit({ path: ok, expect: ok, oldString: "xy", newString: "z" })).toEqual({
      replacements: 1,
    });
  });
});
