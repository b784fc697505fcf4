// `sudo aido …` in a project a person owns: the evidence store is given to them (state.ts
// ownEvidence), so root then works in folders the person can rename in. What the person puts
// there (a hard link to a root file, a link swapped in at the collection's journal, a journal
// of their own) must not make root give them a file, write through a link, or remove a file
// outside the project. And a refused input leaves no runtime home made for it. Unit checks
// on real files, as root (the tests run as root), the project owned by uid 4242.

import { spawnSync } from "node:child_process";
import {
  chownSync,
  closeSync,
  existsSync,
  fstatSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  copyPlainFile,
  endPlacement,
  newPlacement,
  removeLeftovers,
} from "../../src/humansandbox/output-place.js";
import { resolveInputs } from "../../src/humansandbox/paths.js";
import { closeProject, openProject, type Project } from "../../src/humansandbox/project.js";
import { newRunDir } from "../../src/humansandbox/run-evidence.js";
import { RunStreams } from "../../src/humansandbox/run-streams.js";
import { Scrubber } from "../../src/humansandbox/scrub.js";
import {
  appendEvent,
  ensureDirs,
  ownEvidence,
  type SandboxRecord,
  sandboxPaths,
  storePaths,
  writeRecord,
} from "../../src/humansandbox/state.js";

const asRoot = process.getuid?.() === 0;
const PERSON = 4242;
const ID = "0123456789ab";
const made: string[] = [];

const held: Project[] = [];

afterAll(() => {
  for (const h of held) closeProject(h);
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** The project at `dir` held open as a command holds it (closed after the tests). */
function hold(dir: string): Project {
  const project = openProject(dir);
  held.push(project);
  return project;
}

/** box/project (the person's, with its sandbox's evidence folder) and box/secret (root's). */
function layout() {
  const box = mkdtempSync(join(tmpdir(), "aido-hs-rootstore-"));
  made.push(box);
  const project = join(box, "project");
  mkdirSync(storePaths(project, ID).runs, { recursive: true });
  chownSync(project, PERSON, PERSON);
  const paths = sandboxPaths(hold(project), ID);
  const secret = join(box, "secret");
  writeFileSync(secret, "root's own\n", { mode: 0o600 });
  return { box, project, paths, secret };
}

const ownerOf = (p: string) => {
  const st = statSync(p);
  return `${st.uid}:${st.gid}`;
};

describe.runIf(asRoot)("root in a person's evidence store", () => {
  it("gives the person what aido made there, never a hard link to a root file", () => {
    const { paths, secret } = layout();
    writeFileSync(paths.events, "{}\n");
    mkdirSync(join(paths.runs, "r1"));
    writeFileSync(join(paths.runs, "r1", "stdout"), "out");
    // Where hard links are not restricted (fs.protected_hardlinks=0), the person links any root file.
    linkSync(secret, join(paths.runs, "r1", "stderr"));
    linkSync(secret, join(paths.root, "sandbox.json"));
    ownEvidence(paths);
    expect(ownerOf(secret)).toBe("0:0");
    for (const p of [
      paths.root,
      paths.events,
      paths.runs,
      join(paths.runs, "r1"),
      join(paths.runs, "r1", "stdout"),
    ])
      expect(ownerOf(p), p).toBe(`${PERSON}:${PERSON}`);
  });

  it("makes and gives nothing of a store that is a link out of the project", () => {
    const box = mkdtempSync(join(tmpdir(), "aido-hs-rootstore-"));
    made.push(box);
    const project = join(box, "project");
    mkdirSync(join(box, "elsewhere"));
    mkdirSync(project);
    chownSync(project, PERSON, PERSON);
    // The person's .aido points into a root folder (/etc, say): root made the store there.
    symlinkSync(join(box, "elsewhere"), join(project, ".aido"));
    const paths = sandboxPaths(hold(project), ID);
    expect(() => ensureDirs(paths)).toThrow(/\.aido is not a folder of the evidence store/);
    expect(readdirSync(join(box, "elsewhere"))).toEqual([]);
    // One root made there before: still nothing of it is given.
    mkdirSync(join(box, "elsewhere", "sandboxes", ID, "runs"), { recursive: true });
    writeFileSync(join(box, "elsewhere", "sandboxes", ID, "events.log"), "{}\n");
    ownEvidence(paths);
    for (const p of ["sandboxes", `sandboxes/${ID}`, `sandboxes/${ID}/runs`, `sandboxes/${ID}/events.log`])
      expect(ownerOf(join(box, "elsewhere", p)), p).toBe("0:0");
  });

  it("never writes the journal through a link swapped in at its name", () => {
    const { project, paths, secret } = layout();
    mkdirSync(join(project, "a"));
    mkdirSync(join(project, "b"));
    const src = join(paths.root, "src.txt");
    writeFileSync(src, "output\n");
    const fd = openSync(src, "r");
    const st = fstatSync(fd);
    const out = { fd, mode: st.mode, size: st.size, blocks: st.blocks };
    const at = newPlacement(ID, paths.root, { uid: PERSON, gid: PERSON }, new Set());
    const copy = (folder: string) => {
      const dir = openSync(join(project, folder), "r");
      try {
        copyPlainFile(
          { ...out, fd: openSync(src, "r") },
          dir,
          [Buffer.from(folder)],
          Buffer.from("x.txt"),
          at,
        );
      } finally {
        closeSync(dir);
      }
    };
    try {
      copy("a");
      // The person (the folder is theirs) replaces the journal with a link to a root file.
      unlinkSync(at.journal);
      symlinkSync(secret, at.journal);
      copy("b");
    } finally {
      closeSync(fd);
      endPlacement(at);
    }
    expect(readFileSync(secret, "utf8")).toBe("root's own\n");
    expect(readFileSync(join(project, "b", "x.txt"), "utf8")).toBe("output\n");
  });
});

describe.runIf(asRoot)("root writing the sandbox's record and events in a person's folder", () => {
  it("never creates or truncates a file through a link put at the record's temp", () => {
    const { box, paths, secret } = layout();
    const record = { id: ID, name: "x" } as unknown as SandboxRecord;
    writeRecord(paths, record);
    // The person guesses the next aido's pid: a link at its temp, to a file root makes.
    symlinkSync(join(box, "made-by-root"), `${paths.record}.tmp-${process.pid}`);
    writeRecord(paths, record);
    symlinkSync(secret, `${paths.record}.tmp-${process.pid}`);
    writeRecord(paths, record);
    expect(existsSync(join(box, "made-by-root"))).toBe(false);
    expect(readFileSync(secret, "utf8")).toBe("root's own\n");
    expect(JSON.parse(readFileSync(paths.record, "utf8")).id).toBe(ID);
  });

  it("never writes them in the folder a link put in the sandbox folder's place points at", () => {
    const { box, paths } = layout();
    const outside = join(box, "cron.d");
    mkdirSync(outside);
    // .aido/sandboxes is the person's: the sandbox's folder renamed away, a link in its place.
    renameSync(paths.root, join(box, "moved"));
    symlinkSync(outside, paths.root);
    const record = { id: ID, name: "x" } as unknown as SandboxRecord;
    expect(() => writeRecord(paths, record)).toThrow(/is not a folder of the evidence store/);
    expect(() => appendEvent(paths, { event: "destroyed", reason: "x" })).toThrow(
      /is not a folder of the evidence store/,
    );
    expect(readdirSync(outside)).toEqual([]);
  });

  it("never appends to a file through a link (or a hard link) put at events.log", () => {
    const { paths, secret } = layout();
    appendEvent(paths, { event: "destroyed", reason: "first" });
    rmSync(paths.events);
    symlinkSync(secret, paths.events);
    expect(() => appendEvent(paths, { event: "destroyed", reason: "x" })).toThrow(
      /events\.log is not a plain file/,
    );
    rmSync(paths.events);
    linkSync(secret, paths.events);
    expect(() => appendEvent(paths, { event: "destroyed", reason: "x" })).toThrow(/a hard link/);
    expect(readFileSync(secret, "utf8")).toBe("root's own\n");
  });
});

describe("a run's folder", () => {
  it("is written through the folder made, never through a link the person swapped in at its name", () => {
    const { box, paths } = layout();
    const outside = join(box, "logrotate.d");
    mkdirSync(outside);
    const run = newRunDir(paths);
    try {
      // runs/ is the person's when root runs: the folder made renamed away, a link in its place.
      renameSync(join(paths.runs, run.runId), join(paths.runs, "moved"));
      symlinkSync(outside, join(paths.runs, run.runId));
      writeFileSync(join(run.dir, "stdout.log"), "/tmp/x { postrotate ... }\n");
    } finally {
      if (typeof run.fd === "number") closeSync(run.fd);
    }
    expect(readdirSync(outside)).toEqual([]);
    expect(readFileSync(join(paths.runs, "moved", "stdout.log"), "utf8")).toContain("postrotate");
  });
});

describe("a run's stream files", () => {
  it("are never made through a link put at the stream folder's name", () => {
    const { box, paths } = layout();
    const outside = join(box, "apt.conf.d");
    mkdirSync(outside);
    // The sandbox's folder is the person's when root runs: stream/ renamed away, a link in its place.
    symlinkSync(outside, paths.stream);
    const run = newRunDir(paths);
    const warnings: string[] = [];
    try {
      expect(() =>
        RunStreams.open(paths, run.dir, run.runId, {
          user: "1000:1000",
          scrubber: new Scrubber({}),
          warn: (m) => warnings.push(m),
        }),
      ).toThrow(/is not the sandbox's stream folder \((ELOOP|ENOTDIR)/);
    } finally {
      if (typeof run.fd === "number") closeSync(run.fd);
    }
    expect(readdirSync(outside)).toEqual([]);
  });
});

describe("a journal the collection did not write", () => {
  it("never leads the removal of temps out of the project", () => {
    const { box, project, paths } = layout();
    const dead = spawnSync("true").pid as number;
    const temp = `.aido-output-${ID}-aaaaaaaa-bbbbbbbb`;
    writeFileSync(join(box, temp), "outside the project");
    mkdirSync(join(project, "results"));
    writeFileSync(join(project, "results", temp), "a leftover temp");
    const hex = (s: string) => Buffer.from(s).toString("hex");
    writeFileSync(
      join(paths.root, `collecting-aaaaaaaa-${dead}`),
      `${JSON.stringify([hex("..")])}\n${JSON.stringify([hex("results/..")])}\n${JSON.stringify([hex("results")])}\n`,
    );
    expect(removeLeftovers(project, paths.root, ID)).toBe(1);
    expect(existsSync(join(box, temp))).toBe(true);
    expect(readdirSync(join(project, "results"))).toEqual([]);
  });
});

describe("an input refused", () => {
  it("leaves no runtime home made for it", () => {
    const { project } = layout();
    mkdirSync(join(project, "data"));
    mkdirSync(join(project, ".aido"), { recursive: true });
    const home = join(project, "data", "aido-home");
    const runtime = {
      home,
      keysDir: join(home, "keys"),
      dbPath: join(home, "aido.db"),
      auditHeadPath: join(home, "audit.head"),
    };
    // data holds the home (it would be made, to be covered); .aido is refused after it.
    expect(() => resolveInputs(project, ["data", ".aido"], runtime)).toThrow(/evidence store/);
    expect(existsSync(home)).toBe(false);
    expect(resolveInputs(project, ["data"], runtime)[0]?.hidden).toEqual(["/inputs/data/aido-home"]);
    expect(existsSync(home)).toBe(true);
  });
});
