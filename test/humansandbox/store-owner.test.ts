// The evidence store's top folders (.aido, .aido/sandboxes) are the store keeper's own: in a
// project folder others can write (a shared /tmp/x, a 0777 folder), another user could put
// their own .aido there, a folder or a link to one of the person's folders, and aido kept the
// person's evidence in it for them to read and change. Real files; the tests run as root,
// and the person who is not root is uid 1000 in a process of their own (`aido sandbox list`
// and the store opened by a script), the other user uid 5555.

import { spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  lchownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { closeProject, openProject } from "../../src/humansandbox/project.js";
import { newRunDir } from "../../src/humansandbox/run-evidence.js";
import { ensureDirs, expiredRecords, listRecords, sandboxPaths } from "../../src/humansandbox/state.js";
import { openSandboxes } from "../../src/humansandbox/store-dirs.js";

const asRoot = process.getuid?.() === 0;
const PERSON = 1000;
const OTHER = 5555;
const made: string[] = [];
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** box/shared (0777: anyone may make names in it) and box/other (the other user's folder). */
function layout(sharedOwner: number) {
  const box = mkdtempSync(join(tmpdir(), "aido-hs-storeowner-"));
  made.push(box);
  chmodSync(box, 0o755);
  const shared = join(box, "shared");
  mkdirSync(shared);
  chownSync(shared, sharedOwner, sharedOwner);
  chmodSync(shared, 0o777);
  const other = join(box, "other");
  mkdirSync(other);
  chownSync(other, OTHER, OTHER);
  chmodSync(other, 0o777);
  return { shared, other };
}

/**
 * openSandboxes(make) on `dir` as the user `uid`, in a process of its own (openSandboxDir of
 * `id` when given): its error message, or "" when it opened.
 */
function openAs(uid: number, dir: string, id?: string): string {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
  const mod = (name: string) => pathToFileURL(join(process.cwd(), "src/humansandbox", name)).href;
  const script = `
    const { openProject, closeProject } = await import(${JSON.stringify(mod("project.ts"))});
    const { openSandboxes, openSandboxDir } = await import(${JSON.stringify(mod("store-dirs.ts"))});
    const p = openProject(${JSON.stringify(dir)});
    const id = ${JSON.stringify(id ?? null)};
    try { if (id === null) openSandboxes(p, true); else openSandboxDir(p, id, true); } catch (e) { process.stdout.write(e.message); } finally { closeProject(p); }`;
  const r = spawnSync(process.execPath, ["--import", tsx, "--input-type=module", "-e", script], {
    uid,
    gid: uid,
    encoding: "utf8",
  });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

/** readRunLogs of the run as the user `uid`, in a process of its own: its stdout.log, or its error message. */
function logsAs(uid: number, dir: string, id: string, runId: string): string {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
  const mod = (name: string) => pathToFileURL(join(process.cwd(), "src/humansandbox", name)).href;
  const script = `
    const { openProject, closeProject } = await import(${JSON.stringify(mod("project.ts"))});
    const { readRunLogs } = await import(${JSON.stringify(mod("logs.ts"))});
    const p = openProject(${JSON.stringify(dir)});
    try { process.stdout.write(readRunLogs(p, ${JSON.stringify(id)}, ${JSON.stringify(runId)}).stdout); } catch (e) { process.stdout.write(e.message); } finally { closeProject(p); }`;
  const r = spawnSync(process.execPath, ["--import", tsx, "--input-type=module", "-e", script], {
    uid,
    gid: uid,
    encoding: "utf8",
  });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

/** What `dir` holds, by name. */
const names = (dir: string) => readdirSync(dir).sort();

describe.runIf(asRoot)("a person who is not root, in a folder others can write", () => {
  it("keeps no evidence in a .aido another user made there, as a folder or as a link", () => {
    const { shared, other } = layout(PERSON);
    mkdirSync(join(shared, ".aido"));
    chownSync(join(shared, ".aido"), OTHER, OTHER);
    chmodSync(join(shared, ".aido"), 0o777);
    expect(openAs(PERSON, shared)).toMatch(
      /\.aido is a folder of uid 5555, not yours \(uid 1000\): aido keeps its evidence only in a store of its own/,
    );
    expect(names(join(shared, ".aido"))).toEqual([]);

    rmSync(join(shared, ".aido"), { recursive: true });
    symlinkSync(other, join(shared, ".aido"));
    lchownSync(join(shared, ".aido"), OTHER, OTHER);
    expect(openAs(PERSON, shared)).toMatch(/\.aido is a folder of uid 5555, not yours/);
    expect(names(other)).toEqual([]);
  });

  it("says so at every sandbox command: `aido sandbox list` names the folder and its owner", () => {
    const { shared, other } = layout(PERSON);
    symlinkSync(other, join(shared, ".aido"));
    lchownSync(join(shared, ".aido"), OTHER, OTHER);
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
    const r = spawnSync(
      process.execPath,
      ["--import", tsx, join(process.cwd(), "src/cli/main.ts"), "sandbox", "list"],
      {
        cwd: shared,
        uid: PERSON,
        gid: PERSON,
        env: { PATH: process.env.PATH, HOME: shared, AIDO_HOME: join(shared, "home") },
        encoding: "utf8",
      },
    );
    expect(r.stderr).toMatch(/aido sandbox list: .*\.aido is a folder of uid 5555, not yours \(uid 1000\)/);
    expect(r.status).toBe(1);
    expect(names(other)).toEqual([]);
  });

  it("follows no link another user made to a folder of the person's own", () => {
    // The link leads to the person's own folder (their home's, say): the folder passes as
    // theirs, the link does not.
    const { shared } = layout(PERSON);
    const theirs = mkdtempSync(join(tmpdir(), "aido-hs-storeowner-theirs-"));
    made.push(theirs);
    chownSync(theirs, PERSON, PERSON);
    symlinkSync(theirs, join(shared, ".aido"));
    lchownSync(join(shared, ".aido"), OTHER, OTHER);
    expect(openAs(PERSON, shared)).toMatch(/\.aido is a link made by uid 5555, not yours \(uid 1000\)/);
    expect(names(theirs)).toEqual([]);
  });

  it("keeps no evidence in a .aido/sandboxes another user made in the person's .aido", () => {
    const { shared } = layout(PERSON);
    mkdirSync(join(shared, ".aido"));
    chownSync(join(shared, ".aido"), PERSON, PERSON);
    chmodSync(join(shared, ".aido"), 0o777);
    mkdirSync(join(shared, ".aido", "sandboxes"));
    chownSync(join(shared, ".aido", "sandboxes"), OTHER, OTHER);
    expect(openAs(PERSON, shared)).toMatch(/\.aido\/sandboxes is a folder of uid 5555, not yours/);
  });

  it("keeps no evidence in a sandbox folder another user made in the person's sandboxes folder", () => {
    // The person left .aido/sandboxes writable to others (0777); another user made the
    // folder of a sandbox the person is about to make (or one they destroyed), 0777 too.
    const { shared } = layout(PERSON);
    const sandboxes = join(shared, ".aido", "sandboxes");
    mkdirSync(sandboxes, { recursive: true });
    chownSync(join(shared, ".aido"), PERSON, PERSON);
    chownSync(sandboxes, PERSON, PERSON);
    chmodSync(sandboxes, 0o777);
    mkdirSync(join(sandboxes, "sbx-1"));
    chownSync(join(sandboxes, "sbx-1"), OTHER, OTHER);
    chmodSync(join(sandboxes, "sbx-1"), 0o777);
    expect(openAs(PERSON, shared, "sbx-1")).toMatch(
      /\.aido\/sandboxes\/sbx-1 is a folder of uid 5555, not yours \(uid 1000\)/,
    );
    expect(names(join(sandboxes, "sbx-1"))).toEqual([]);
    // The person's own sandbox folder opens, made or found.
    expect(openAs(PERSON, shared, "sbx-2")).toBe("");
    expect(openAs(PERSON, shared, "sbx-2")).toBe("");
  });

  it("still makes and opens the person's own store, and follows their own link to one elsewhere", () => {
    const { shared } = layout(PERSON);
    expect(openAs(PERSON, shared)).toBe("");
    expect(existsSync(join(shared, ".aido", "sandboxes"))).toBe(true);

    const { shared: second } = layout(PERSON);
    const elsewhere = mkdtempSync(join(tmpdir(), "aido-hs-storeowner-disk-"));
    made.push(elsewhere);
    chownSync(elsewhere, PERSON, PERSON);
    symlinkSync(elsewhere, join(second, ".aido"));
    lchownSync(join(second, ".aido"), PERSON, PERSON);
    expect(openAs(PERSON, second)).toBe("");
    expect(names(elsewhere)).toEqual(["sandboxes"]);
  });
});

describe.runIf(asRoot)(
  "`aido logs` of a person who is not root, in a runs folder they left writable to others",
  () => {
    it("shows no run folder or log another user put there as theirs", () => {
      const { shared } = layout(PERSON);
      const id = "dddddddddddd";
      const sandbox = join(shared, ".aido", "sandboxes", id);
      const runs = join(sandbox, "runs");
      mkdirSync(runs, { recursive: true });
      writeFileSync(join(sandbox, "sandbox.json"), `${JSON.stringify({ id })}\n`);
      /** A run folder of `owner`'s, 0777, whose stdout.log is `logOwner`'s. */
      const run = (name: string, owner: number, logOwner: number, text: string) => {
        mkdirSync(join(runs, name));
        writeFileSync(join(runs, name, "stdout.log"), text);
        chownSync(join(runs, name, "stdout.log"), logOwner, logOwner);
        chownSync(join(runs, name), owner, owner);
        chmodSync(join(runs, name), 0o777);
      };
      execChown(shared, PERSON);
      chmodSync(runs, 0o777);
      run("run-001", PERSON, PERSON, "mine\n");
      run("run-002", PERSON, OTHER, "FORGED LOG\n");
      run("run-003", OTHER, OTHER, "FORGED RUN\n");
      expect(logsAs(PERSON, shared, id, "run-001")).toBe("mine\n");
      expect(logsAs(PERSON, shared, id, "run-002")).toMatch(
        /runs\/run-002\/stdout\.log is not a plain file of its own \(another user's, uid 5555\)/,
      );
      expect(logsAs(PERSON, shared, id, "run-003")).toMatch(
        /runs\/run-003 is a folder of uid 5555, not yours \(uid 1000\)/,
      );
    });
  },
);

/** `dir`'s tree given to `uid` (chown -R). */
function execChown(dir: string, uid: number): void {
  spawnSync("chown", ["-R", `${uid}:${uid}`, dir]);
}

describe.runIf(asRoot)("root", () => {
  it("keeps no evidence in a .aido a third user made in someone else's project", () => {
    // Root in the person's project (`sudo aido`) takes the person's store as the store; a
    // third user's .aido in it (the project folder left writable to all) is neither's.
    const { shared } = layout(PERSON);
    mkdirSync(join(shared, ".aido"));
    chownSync(join(shared, ".aido"), OTHER, OTHER);
    const project = openProject(shared);
    try {
      expect(() => openSandboxes(project, true)).toThrow(
        /\.aido is a folder of uid 5555, not yours \(uid 0 or 1000\)/,
      );
    } finally {
      closeProject(project);
    }
    expect(names(join(shared, ".aido"))).toEqual([]);
  });

  it("keeps no evidence in a .aido another user made in a folder of root's that others can write", () => {
    const { shared } = layout(0);
    mkdirSync(join(shared, ".aido"));
    chownSync(join(shared, ".aido"), OTHER, OTHER);
    const project = openProject(shared);
    try {
      expect(() => openSandboxes(project, true)).toThrow(
        /\.aido is a folder of uid 5555, not yours \(uid 0\)/,
      );
    } finally {
      closeProject(project);
    }
  });
  it("still sweeps the person's expired sandboxes past a sandbox folder another user made", () => {
    // Root in the person's project; their sandboxes folder left writable to all, and a third
    // user's folder in it under a sandbox's name. Refused (not the store keeper's), it failed
    // the listing the TTL sweep starts from: no expired sandbox of the person's was swept
    // again, their containers kept running past their TTL.
    const { shared } = layout(PERSON);
    const sandboxes = join(shared, ".aido", "sandboxes");
    mkdirSync(sandboxes, { recursive: true });
    for (const d of [join(shared, ".aido"), sandboxes]) chownSync(d, PERSON, PERSON);
    chmodSync(sandboxes, 0o777);
    const record = (id: string, uid: number) => {
      mkdirSync(join(sandboxes, id));
      const at = join(sandboxes, id, "sandbox.json");
      const expired = new Date(Date.now() - 60_000).toISOString();
      writeFileSync(at, JSON.stringify({ id, state: "running", created_at: expired, expires_at: expired }));
      for (const p of [join(sandboxes, id), at]) chownSync(p, uid, uid);
    };
    record("aaaaaaaaaaaa", PERSON);
    record("bbbbbbbbbbbb", OTHER);
    expect(expiredRecords(shared).map((r) => r.id)).toEqual(["aaaaaaaaaaaa"]);
    // Listed, it is named (what to do with it in the message).
    expect(() => listRecords(shared)).toThrow(/sandboxes\/bbbbbbbbbbbb is a folder of uid 5555, not yours/);
  });

  it("records no run in a runs folder another user made in the person's sandbox folder", () => {
    // The person left their sandbox's folder writable to others; another user's runs/ in it
    // (made before the first run) was taken as the store's: every run's evidence went where
    // that user could change or remove it.
    const { shared } = layout(PERSON);
    const id = "cccccccccccc";
    const sandbox = join(shared, ".aido", "sandboxes", id);
    mkdirSync(join(sandbox, "runs"), { recursive: true });
    for (const d of [join(shared, ".aido"), join(shared, ".aido", "sandboxes"), sandbox])
      chownSync(d, PERSON, PERSON);
    chmodSync(sandbox, 0o777);
    chownSync(join(sandbox, "runs"), OTHER, OTHER);
    const project = openProject(shared);
    try {
      const paths = sandboxPaths(project, id);
      const refused = /sandboxes\/cccccccccccc\/runs is a folder of uid 5555, not yours/;
      expect(() => closeSync(ensureDirs(paths))).toThrow(refused);
      expect(() => newRunDir(paths)).toThrow(refused);
    } finally {
      closeProject(project);
    }
    expect(names(join(sandbox, "runs"))).toEqual([]);
  });
});
