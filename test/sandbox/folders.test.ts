// removeTreeNoFollow (sandbox/folders.ts): a tree removed without following a link in it,
// nested folders emptied through their descriptors, and an error that names the tree.

import {
  chmodSync,
  chownSync,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { removeTreeNoFollow } from "../../src/sandbox/folders.js";
import { canMakeUndeletable, makeUndeletable } from "../support/undeletable.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "aido-folders-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("removeTreeNoFollow", () => {
  it("removes nested folders, files and links, and never what a link points at", () => {
    const outside = join(dir, "outside");
    mkdirSync(outside);
    writeFileSync(join(outside, "keep"), "keep\n");
    const tree = join(dir, "tree");
    mkdirSync(join(tree, "a", "b", "c"), { recursive: true });
    writeFileSync(join(tree, "a", "b", "c", "f"), "x");
    writeFileSync(join(tree, "a", "keep"), "x");
    symlinkSync(outside, join(tree, "a", "b", "link"));
    symlinkSync(join(outside, "keep"), join(tree, "file-link"));
    removeTreeNoFollow(tree);
    expect(existsSync(tree)).toBe(false);
    expect(readFileSync(join(outside, "keep"), "utf8")).toBe("keep\n");
  });

  it("removes entries whose names are not UTF-8, as a task can name them", () => {
    // A task's `touch $'\xff'` made a name that read as a string (U+FFFD) no longer reached
    // the file: the removal "kept being written to" and failed, as root too, every time.
    const tree = join(dir, "tree");
    mkdirSync(join(tree, "sub"), { recursive: true });
    const raw = (name: string) => Buffer.concat([Buffer.from(`${name}/`), Buffer.from([0xff, 0xfe])]);
    writeFileSync(raw(join(tree, "sub")), "x");
    mkdirSync(raw(tree));
    writeFileSync(Buffer.concat([raw(tree), Buffer.from("/f")]), "x");
    removeTreeNoFollow(tree);
    expect(existsSync(tree)).toBe(false);
  });

  it("unlinks a link given as the tree itself, and accepts a path that is not there", () => {
    const outside = join(dir, "outside");
    mkdirSync(outside);
    writeFileSync(join(outside, "keep"), "keep\n");
    symlinkSync(outside, join(dir, "link"));
    removeTreeNoFollow(join(dir, "link"));
    removeTreeNoFollow(join(dir, "absent"));
    expect(existsSync(join(dir, "link"))).toBe(false);
    expect(readFileSync(join(outside, "keep"), "utf8")).toBe("keep\n");
  });

  it("removes a chain of folders deeper than the stack, never following a link at its bottom", () => {
    const outside = join(dir, "outside");
    mkdirSync(outside);
    writeFileSync(join(outside, "keep"), "keep\n");
    const tree = join(dir, "tree");
    mkdirSync(tree);
    const before = process.cwd();
    try {
      process.chdir(tree);
      for (let i = 0; i < 6_000; i++) {
        mkdirSync("d");
        process.chdir("d");
      }
      symlinkSync(outside, "link");
      writeFileSync("f", "x");
    } finally {
      process.chdir(before);
    }
    removeTreeNoFollow(tree);
    expect(existsSync(tree)).toBe(false);
    expect(readFileSync(join(outside, "keep"), "utf8")).toBe("keep\n");
  }, 60_000);

  it.skipIf(!canMakeUndeletable)(
    "names an entry it could not remove inertly: a name with a newline or an escape forges no line",
    () => {
      // The error carried the task's name raw (unlink '/proc/self/fd/N/<name>'), and it is
      // printed on the person's terminal (a sweep's warning, `aido run`'s, a destroy's error)
      // and in the daemon's log: "\n\x1b[2K" wiped the line and wrote another in its place.
      const tree = join(dir, "tree");
      mkdirSync(join(tree, "sub"), { recursive: true });
      const release = makeUndeletable(join(tree, "sub", "x\n\x1b[2Kaido: sandbox destroyed\u202e"));
      try {
        let message = "";
        try {
          removeTreeNoFollow(tree);
        } catch (e) {
          message = (e as Error).message;
        }
        expect(message).toMatch(new RegExp(`^cannot remove ${tree}: `));
        expect(message).toContain("x\\x0a\\x1b[2Kaido: sandbox destroyed\\u202e");
        expect(message).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202e]/);
        expect(message).not.toContain("/proc/self/fd/");
      } finally {
        release();
      }
    },
  );

  it("removes folders a task took its own write (or read) permission from, never changing a link's target", () => {
    // The person's sandbox runs the task as the person's own uid, and the removal runs as
    // that uid too: a task's `chmod 555 dir` (or 000) made its sandbox one no destroy and no
    // sweep could remove (EACCES, every `aido` command warning), until the person found and
    // fixed it by hand. Folders of the removing user are made its to empty first, through a
    // descriptor opened without following a link; a link's target keeps its mode.
    const uid = process.getuid?.() === 0 ? 1000 : (process.getuid?.() ?? 0);
    const outside = join(dir, "outside");
    mkdirSync(outside);
    writeFileSync(join(outside, "keep"), "keep\n");
    const tree = join(dir, "tree");
    mkdirSync(join(tree, "ro"), { recursive: true });
    writeFileSync(join(tree, "ro", "f"), "x");
    mkdirSync(join(tree, "none", "sub"), { recursive: true });
    writeFileSync(join(tree, "none", "sub", "g"), "x");
    symlinkSync(outside, join(tree, "ro-link"));
    let deep = join(tree, "deep");
    for (let i = 0; i < 80; i++) deep = join(deep, "d");
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(deep, "f"), "x");
    // One at the depth where the removal moves a folder up (a rename that needs the folder's
    // own write permission), one below.
    const movedUp = join(tree, "deep", ...Array<string>(63).fill("d"));
    const frozen = [join(tree, "ro"), join(tree, "none"), deep, movedUp];
    if (process.getuid?.() === 0) {
      for (const p of [dir, outside, join(outside, "keep")]) chownSync(p, uid, uid);
      const walk = (p: string): void => {
        lchownSync(p, uid, uid);
        if (lstatSync(p).isDirectory() && !lstatSync(p).isSymbolicLink())
          for (const n of readdirSync(p)) walk(join(p, n));
      };
      walk(tree);
    }
    for (const d of frozen.slice().reverse()) chmodSync(d, d.endsWith("none") ? 0o000 : 0o555);
    chmodSync(outside, 0o555);
    // As the user the folders are of: the removal's own process, its effective ids switched.
    const root = process.geteuid?.() === 0;
    let error: unknown;
    if (root) {
      process.setegid?.(uid);
      process.seteuid?.(uid);
    }
    try {
      removeTreeNoFollow(tree);
    } catch (e) {
      error = e;
    } finally {
      if (root) {
        process.seteuid?.(0);
        process.setegid?.(0);
      }
    }
    const outsideMode = statSync(outside).mode & 0o777;
    chmodSync(outside, 0o755);
    expect(error).toBeUndefined();
    expect(existsSync(tree)).toBe(false);
    expect(readFileSync(join(outside, "keep"), "utf8")).toBe("keep\n");
    expect(outsideMode).toBe(0o555);
  }, 60_000);
});
