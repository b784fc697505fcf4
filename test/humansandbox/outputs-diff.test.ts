// outputs.diff against a real git repository: what the run collected and nothing else, made
// without running anything the project's repository configures (a task can write its
// .git/config and .gitattributes: through a read-write input holding the project, or as an
// output collected there), and whole however many or large the outputs are.

import { execFileSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
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
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { diffOfPaths } from "../../src/humansandbox/outputs-diff.js";

let dir: string;
const git = (...args: string[]) => execFileSync("git", ["-C", dir, ...args], { encoding: "utf8" });
const write = (rel: string, text: string) => {
  mkdirSync(join(dir, rel, ".."), { recursive: true });
  writeFileSync(join(dir, rel), text);
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "aido-diff-test-"));
  git("init", "-q");
  git("config", "user.email", "t@example.com");
  git("config", "user.name", "t");
  write("out/a.txt", "old\n");
  write("notes.txt", "mine\n");
  git("add", ".");
  git("commit", "-qm", "start");
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("outputs.diff", () => {
  it("runs nothing a task wrote into the project's git config or attributes", () => {
    // git diff in the project ran diff.external, core.fsmonitor, a textconv and a clean
    // filter named by .gitattributes: each a command of the task's run on the host.
    const marker = (n: string) => join(dir, `ran-${n}`);
    for (const [key, n] of [
      ["diff.external", "external"],
      ["core.fsmonitor", "fsmonitor"],
      ["diff.x.textconv", "textconv"],
      ["diff.x.command", "command"],
      ["filter.y.clean", "clean"],
      ["filter.y.process", "process"],
    ] as const)
      git("config", key, `touch ${marker(n)}; cat`);
    write(".gitattributes", "out/* diff=x filter=y\n");
    write("out/a.txt", "new\n");
    write("out/b.txt", "added\n");
    const diff = diffOfPaths(dir, ["out/a.txt", "out/b.txt"]);
    const ran = ["external", "fsmonitor", "textconv", "command", "clean", "process"].filter((n) =>
      existsSync(marker(n)),
    );
    expect(ran, "commands of the repository's config the host ran").toEqual([]);
    expect(diff).toContain("-old\n+new");
    expect(diff).toContain("+++ b/out/b.txt\n@@ -0,0 +1 @@\n+added");
  });

  it("shows a file named * or :(top) as that file, never the person's other changes", () => {
    // As pathspecs, an output named `*` matched every file of the project: outputs.diff held
    // the person's uncommitted work and every untracked file (ignored ones too), not the run's.
    write("notes.txt", "my uncommitted work\n");
    write("secret.env", "TOKEN=mine\n");
    write("*", "star\n");
    write(":(top)", "top\n");
    const diff = diffOfPaths(dir, ["*", ":(top)"]);
    expect(diff).toContain("+star");
    expect(diff).toContain("+top");
    expect(diff).not.toContain("my uncommitted work");
    expect(diff).not.toContain("TOKEN=mine");
  });

  it("diffs a project reached through a link (git names its real top-level)", () => {
    const link = join(mkdtempSync(join(tmpdir(), "aido-diff-link-")), "project");
    symlinkSync(dir, link);
    onTestFinished(() => rmSync(dirname(link), { recursive: true, force: true }));
    write("out/a.txt", "new\n");
    expect(diffOfPaths(link, ["out/a.txt"])).toContain("-old\n+new");
  });

  it("keeps a diff past a mebibyte", () => {
    // execFileSync's default 1 MiB buffer: a larger diff was dropped, outputs.diff left empty.
    write("out/a.txt", "x".repeat(100).concat("\n").repeat(20_000));
    const diff = diffOfPaths(dir, ["out/a.txt"]);
    expect(diff.length).toBeGreaterThan(2_000_000);
  });

  it("diffs more paths than one command line holds", () => {
    // All paths were arguments of one git command: past the argument limit (E2BIG) outputs.diff
    // was empty.
    const deep = Array.from({ length: 15 }, (_, i) => `${i}`.padEnd(250, "d")).join("/");
    const paths = Array.from({ length: 600 }, (_, i) => `${deep}/f${i}`);
    for (const p of paths) write(p, "old\n");
    git("add", ".");
    git("commit", "-qm", "many");
    for (const p of paths) write(p, "new\n");
    const diff = diffOfPaths(dir, paths);
    expect(diff.match(/^\+new$/gm)?.length).toBe(600);
  });

  it("leaves out what a task put at a collected path since, and diffs the rest", () => {
    // A folder or FIFO there (a task holding the project read-write, after the collection)
    // stopped update-index, and with it the whole diff.
    write("out/a.txt", "new\n");
    mkdirSync(join(dir, "out", "now-a-folder"));
    execFileSync("mkfifo", [join(dir, "out", "now-a-fifo")]);
    const diff = diffOfPaths(dir, ["out/now-a-folder", "out/now-a-fifo", "out/a.txt"]);
    expect(diff).toContain("-old\n+new");
    expect(diff).not.toContain("now-a");
  });

  it("says why when it cannot be made, never throws (the run's summary is written after it)", () => {
    write("out/a.txt", "new\n");
    // A path git refuses (under root TMPDIR is not used: see the root cases below).
    expect(diffOfPaths(dir, ["out/a.txt", "../outside"])).toMatch(
      /^\[aido: outputs.diff could not be made: .*\.\.\/outside/,
    );
  });
});

describe.runIf(process.getuid?.() === 0)("outputs.diff under root in someone else's project", () => {
  // git goes to the project by its path, and the person can rename their folder and put a
  // link to one of root's at its name after run.ts checked it: git then read root's files at
  // the collected names. With the person's rights it reads only what they can read: here a
  // file of root's (0600) at a collected name stands for what such a swap leads to.
  const PERSON = { uid: 1000, gid: 1000 };
  const give = () => execFileSync("chown", ["-R", "1000:1000", dir]);

  it("reads no file the person could not read, and diffs theirs", () => {
    // As `sudo aido run` runs (git as root trusts a repository of SUDO_UID's).
    const sudoUid = process.env.SUDO_UID;
    process.env.SUDO_UID = "1000";
    onTestFinished(() => {
      if (sudoUid === undefined) delete process.env.SUDO_UID;
      else process.env.SUDO_UID = sudoUid;
    });
    execFileSync("chmod", ["755", dir]);
    give();
    write("out/secret.txt", "ROOT ONLY\n");
    execFileSync("chmod", ["600", join(dir, "out/secret.txt")]);
    const refused = diffOfPaths(dir, ["out/secret.txt"], PERSON);
    expect(refused).not.toContain("ROOT ONLY");
    expect(refused).toMatch(/^\[aido: outputs\.diff could not be made: .*Permission denied/);

    rmSync(join(dir, "out/secret.txt"));
    write("out/a.txt", "new\n");
    give();
    const diff = diffOfPaths(dir, ["out/a.txt"], PERSON);
    expect(diff).toContain("-old\n+new");
    expect(readdirSync(tmpdir()).filter((n) => /^aido-diff-(?!test-)/.test(n))).toEqual([]);
  });

  it("runs nothing the person writes into its git folder meanwhile, and gives git none of root's environment", () => {
    // The temporary git folder was made the person's whole: while read-tree ran, a process of
    // theirs could add a clean filter to its config (the project's .gitattributes names it),
    // and update-index ran that command with root's environment (and the project folder's
    // group). The `git` below stands for that process: run by aido as git is, with the
    // person's rights, it writes the config of the git folder it is given before the real git.
    const bin = mkdtempSync(join(tmpdir(), "aido-diff-test-bin-"));
    onTestFinished(() => rmSync(bin, { recursive: true, force: true }));
    const seen = join(dir, "seen-env");
    const ran = join(dir, "ran-clean");
    const modes = join(dir, "modes");
    writeFileSync(
      join(bin, "git"),
      [
        "#!/bin/sh",
        `env >> ${seen}`,
        'if [ "$1" = read-tree ]; then',
        `  stat -c '%a %n' "$GIT_DIR" "$GIT_DIR/HEAD" "$GIT_DIR/config" "$GIT_DIR/objects/info/alternates" > ${modes}`,
        `  printf '[filter "y"]\\n\\tclean = "touch ${ran}; cat"\\n' >> "$GIT_DIR/config" 2>/dev/null`,
        "fi",
        'exec /usr/bin/git "$@"',
        "",
      ].join("\n"),
    );
    chmodSync(bin, 0o755);
    chmodSync(join(bin, "git"), 0o755);
    const saved = { PATH: process.env.PATH, ROOT_ONLY: process.env.AIDO_TEST_ROOT_ONLY };
    process.env.PATH = `${bin}:${process.env.PATH}`;
    process.env.AIDO_TEST_ROOT_ONLY = "root-env-value";
    onTestFinished(() => {
      process.env.PATH = saved.PATH;
      if (saved.ROOT_ONLY === undefined) delete process.env.AIDO_TEST_ROOT_ONLY;
      else process.env.AIDO_TEST_ROOT_ONLY = saved.ROOT_ONLY;
    });
    execFileSync("chmod", ["755", dir]);
    write(".gitattributes", "out/* filter=y\n");
    write("out/a.txt", "new\n");
    give();
    const diff = diffOfPaths(dir, ["out/a.txt"], PERSON);
    expect(readFileSync(seen, "utf8"), "git ran as the person").toContain("GIT_DIR=");
    expect(existsSync(ran), "a command the person put in the git folder's config ran").toBe(false);
    expect(readFileSync(seen, "utf8")).not.toContain("AIDO_TEST_ROOT_ONLY");
    // Nothing of it for a third user to read (the project's HEAD, its path).
    const open = readFileSync(modes, "utf8")
      .trim()
      .split("\n")
      .filter((l) => !/^\d*[0-7][0-7]0 /.test(l));
    expect(open).toEqual([]);
    expect(diff).toContain("-old\n+new");
    expect(readdirSync(tmpdir()).filter((n) => /^aido-diff-(?!test-)/.test(n))).toEqual([]);
  });

  /** A `git` first on PATH that runs `script` (as git runs: as the person) before the real git. */
  const wrapGit = (script: string[]) => {
    const bin = mkdtempSync(join(tmpdir(), "aido-diff-test-bin-"));
    writeFileSync(join(bin, "git"), ["#!/bin/sh", ...script, 'exec /usr/bin/git "$@"', ""].join("\n"));
    chmodSync(bin, 0o755);
    chmodSync(join(bin, "git"), 0o755);
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    onTestFinished(() => {
      process.env.PATH = path;
      rmSync(bin, { recursive: true, force: true });
    });
  };

  it("makes its temporary git folder where only root can write, not in a TMPDIR the person can write", () => {
    // Root's TMPDIR (kept by sudo -E or env_keep) naming a folder the person can write: they
    // could swap the folder root made there for a link before root's chowns, root then giving
    // them the file it led to.
    const theirs = mkdtempSync(join(tmpdir(), "aido-diff-test-tmp-"));
    onTestFinished(() => rmSync(theirs, { recursive: true, force: true }));
    execFileSync("chown", ["1000:1000", theirs]);
    chmodSync(theirs, 0o777);
    const gitDirs = join(dir, "git-dirs");
    wrapGit([`[ -n "$GIT_DIR" ] && echo "$GIT_DIR" >> ${gitDirs}`]);
    const before = process.env.TMPDIR;
    process.env.TMPDIR = theirs;
    onTestFinished(() => {
      if (before === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = before;
    });
    execFileSync("chmod", ["755", dir]);
    write("out/a.txt", "new\n");
    give();
    const diff = diffOfPaths(dir, ["out/a.txt"], PERSON);
    expect(diff).toContain("-old\n+new");
    const used = readFileSync(gitDirs, "utf8").trim().split("\n");
    expect(used.length).toBeGreaterThan(0);
    for (const g of used) {
      expect(g.startsWith(theirs)).toBe(false);
      // Its folder (…/aido-diff-XXXXXX) is in one only root can write.
      const parent = statSync(dirname(dirname(g)));
      expect(parent.uid).toBe(0);
      expect(parent.mode & 0o022).toBe(0);
      expect(existsSync(dirname(g))).toBe(false); // removed
    }
    expect(readdirSync(theirs)).toEqual([]);
  });

  /** For 4 s: new folders with a file each, in the folder it runs in, as fast as it can. */
  const WRITER = `const fs = require("fs"); const end = Date.now() + 4000; for (let i = 0; Date.now() < end; i++) { try { fs.mkdirSync("zz" + i); fs.writeFileSync("zz" + i + "/f", "x"); } catch {} }`;

  it("removes its temporary git folder while a process of the person's keeps writing in it", async () => {
    // A process of theirs (one git left, or one they started in it) writing new folders into
    // the objects folder given to them: the removal failed (a folder not empty), the folder
    // stayed (with the project's HEAD and path), and the diff was reported as not made.
    const gitDirs = join(dir, "git-dirs");
    const writer = join(dir, "writer-done");
    wrapGit([
      `[ -n "$GIT_DIR" ] && echo "$GIT_DIR" >> ${gitDirs}`,
      'if [ "$1" = read-tree ]; then',
      `  ( cd "$GIT_DIR/objects" && ${process.execPath} -e ${JSON.stringify(WRITER)}; touch ${writer} ) >/dev/null 2>&1 &`,
      '  while [ ! -d "$GIT_DIR/objects/zz0" ]; do sleep 0.05; done',
      "fi",
    ]);
    execFileSync("chmod", ["755", dir]);
    write("out/a.txt", "new\n");
    give();
    const diff = diffOfPaths(dir, ["out/a.txt"], PERSON);
    const base = dirname(readFileSync(gitDirs, "utf8").trim().split("\n")[0] ?? "");
    const left = existsSync(base);
    for (let i = 0; i < 100 && !existsSync(writer); i++) await new Promise((r) => setTimeout(r, 100));
    rmSync(base, { recursive: true, force: true });
    expect(diff).toContain("-old\n+new");
    expect(diff).not.toContain("could not");
    expect(left).toBe(false);
  });

  it("reads no file of root's group where the project folder's group is root's", () => {
    // A project folder root made and gave to the person alone (`chown 1000`) keeps group
    // root: git ran with that group and read root's group-readable files (/etc/sudoers,
    // 0440) where a swap led it. Here such a file at a collected name stands for that.
    execFileSync("chmod", ["755", dir]);
    give();
    execFileSync("chgrp", ["0", dir]);
    write("out/sudoers", "ROOT GROUP ONLY\n");
    execFileSync("chmod", ["440", join(dir, "out/sudoers")]);
    const diff = diffOfPaths(dir, ["out/sudoers"], { uid: 1000, gid: 0 });
    expect(diff).not.toContain("ROOT GROUP ONLY");
    expect(diff).toMatch(/^\[aido: outputs\.diff could not be made: .*Permission denied/);
  });
});
