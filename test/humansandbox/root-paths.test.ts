// `sudo aido sandbox …` in a project a person owns: the evidence store is theirs, so any of
// its folders can be a link they planted, or swapped in between root's look and root's use.
// Root must never act through one (make, give, remove, read, link), and never trust the
// fields of sandbox.json (theirs to edit) to read a file, give files to a uid, or start a
// container with inputs it was not made with. Run as root (as the tests are) against the
// real engine, the project owned by uid 4242; each attack is what the person can do.

import {
  chmodSync,
  chownSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { destroySandbox } from "../../src/humansandbox/lifecycle.js";
import { withProject } from "../../src/humansandbox/project.js";
import { runTask } from "../../src/humansandbox/run.js";
import { pointLatest } from "../../src/humansandbox/run-evidence.js";
import { ownEvidence, readRecord, sandboxPaths, storePaths } from "../../src/humansandbox/state.js";
import { connectDocker } from "../../src/sandbox/engine.js";
import { engineProxy } from "../support/engine-proxy.js";
import { makeProject, PERSON, type Project, usePersonProject } from "./fixture.js";

const asRoot = process.getuid?.() === 0;
const SECRET = "root-only-secret-0451";
let p: Project;
let box: string;
// Root's secret, outside the project: what the person must never reach through root.
usePersonProject(
  {
    spec: "runtime: python:3.11\ninputs: [data/]\n",
    files: { "data/a.txt": "a\n" },
    boxPrefix: "aido-hs-rootpaths-",
    secret: `${SECRET}: 1\n`,
  },
  (person) => ({ p, box } = person),
);

async function up(): Promise<string> {
  const r = await p.aido("sandbox", "up", "-f", "sb.yaml");
  expect(r.code, r.err.join("\n")).toBe(0);
  return r.out[0] as string;
}

/** A root folder with the working folders' names in it, each holding a file of root's. */
function victim(): string {
  const v = mkdtempSync(join(box, "victim-"));
  for (const d of ["work", "output", "stream", "egress"]) {
    mkdirSync(join(v, d));
    writeFileSync(join(v, d, "keep.txt"), "root's\n");
  }
  return v;
}

function editRecord(id: string, change: (r: Record<string, unknown>) => void): void {
  const file = storePaths(p.dir, id).record;
  const r = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  change(r);
  writeFileSync(file, JSON.stringify(r));
}

describe.runIf(asRoot)("root never acts through a link in the person's evidence store", () => {
  it("up makes nothing and gives nothing through a .aido/sandboxes the person made a link", async () => {
    const v = mkdtempSync(join(box, "victim-"));
    mkdirSync(join(p.dir, ".aido"));
    chownSync(join(p.dir, ".aido"), PERSON, PERSON);
    symlinkSync(v, join(p.dir, ".aido", "sandboxes"));
    try {
      const r = await p.aido("sandbox", "up", "-f", "sb.yaml");
      expect(r.code).not.toBe(0);
      expect(r.err.join("\n")).toMatch(/\.aido\/sandboxes is not a folder of the evidence store/);
      // Before: root made <id>/{runs,work,output,stream} there and gave work/ to uid 1000.
      expect(readdirSync(v)).toEqual([]);
    } finally {
      unlinkSync(join(p.dir, ".aido", "sandboxes"));
    }
  }, 120_000);

  it("destroy removes nothing through a sandbox folder swapped for a link while it asks the engine", async () => {
    const id = await up();
    const paths = storePaths(p.dir, id);
    const v = victim();
    let swapped = false;
    // The person swaps the folder as soon as destroy has read the record and asks the engine.
    const engine = await engineProxy((line) => {
      if (!swapped && line.includes(`/containers/`)) {
        swapped = true;
        renameSync(paths.root, `${paths.root}-moved`);
        symlinkSync(v, paths.root);
      }
      return undefined;
    });
    let failure: unknown;
    try {
      failure = await destroySandbox(p.dir, id, { docker: engine.docker }).catch((e: unknown) => e);
    } finally {
      await engine.close();
    }
    expect(swapped).toBe(true);
    // Before: root removed the work, output and stream folders of the folder linked to.
    for (const d of ["work", "output", "stream", "egress"])
      expect(existsSync(join(v, d, "keep.txt")), d).toBe(true);
    expect(String(failure)).toMatch(/is not a folder of the evidence store/);
    unlinkSync(paths.root);
    renameSync(`${paths.root}-moved`, paths.root);
    const again = await p.aido("sandbox", "destroy", id);
    expect(again.code, again.err.join("\n")).toBe(0);
  }, 180_000);

  it("pointLatest puts no link in the folder a link at the sandbox folder's name points at", async () => {
    const id = await up();
    const paths = storePaths(p.dir, id);
    const v = mkdtempSync(join(box, "victim-"));
    renameSync(paths.root, `${paths.root}-moved`);
    symlinkSync(v, paths.root);
    try {
      expect(() =>
        withProject(p.dir, (project) => pointLatest(sandboxPaths(project, id), "run-001", "stdout.log")),
      ).toThrow(/is not a folder of the evidence store/);
      expect(readdirSync(v)).toEqual([]);
    } finally {
      unlinkSync(paths.root);
      renameSync(`${paths.root}-moved`, paths.root);
    }
  }, 120_000);

  it("logs prints no file a run's log was made a link (or a hard link) to", async () => {
    const id = await up();
    const run = await p.aido("run", "--sandbox", id, "echo", "hi");
    expect(run.code, run.err.join("\n")).toBe(0);
    const dir = join(storePaths(p.dir, id).runs, "run-001");
    const secret = join(box, "secret");
    for (const plant of [symlinkSync, linkSync]) {
      rmSync(join(dir, "stdout.log"));
      plant(secret, join(dir, "stdout.log"));
      for (const argv of [["logs"], ["logs", "--follow"], ["logs", "--json"]]) {
        const r = await p.aido(...argv, "--sandbox", id);
        expect(r.out.join("\n"), argv.join(" ")).not.toContain(SECRET);
        expect(r.code, argv.join(" ")).not.toBe(0);
        expect(r.err.join("\n")).toMatch(/stdout\.log is not a plain file of its own \(a (hard )?link\)/);
      }
    }
    // A file of another user's (0600), moved in from a folder the person can write: one name, not theirs.
    rmSync(join(dir, "stdout.log"));
    writeFileSync(join(dir, "stdout.log"), `${SECRET}\n`, { mode: 0o600 });
    chownSync(join(dir, "stdout.log"), 4343, 4343);
    for (const argv of [["logs"], ["logs", "--follow"], ["logs", "--json"]]) {
      const r = await p.aido(...argv, "--sandbox", id);
      // Before: a regular file of one name was printed, whoever's it was.
      expect(r.out.join("\n"), argv.join(" ")).not.toContain(SECRET);
      expect(r.code, argv.join(" ")).not.toBe(0);
      expect(r.err.join("\n")).toMatch(
        /stdout\.log is not a plain file of its own \(another user's, uid 4343\)/,
      );
    }
    // runs/ itself swapped for a link to a folder with a run's name and a log in it.
    const fake = mkdtempSync(join(box, "runs-"));
    mkdirSync(join(fake, "run-001"));
    writeFileSync(join(fake, "run-001", "stdout.log"), `${SECRET}\n`);
    const runs = storePaths(p.dir, id).runs;
    renameSync(runs, `${runs}-moved`);
    symlinkSync(fake, runs);
    const r = await p.aido("logs", "--sandbox", id);
    expect(r.out.join("\n")).not.toContain(SECRET);
    expect(r.err.join("\n")).toMatch(/runs is not a folder of the evidence store/);
    // Each refusal audited in the sandbox's events.log (it was said to the terminal only).
    const refused = readFileSync(storePaths(p.dir, id).events, "utf8")
      .split("\n")
      .filter((l) => l.includes('"logs_refused"'));
    expect(
      refused.filter((l) => /stdout\.log is not a plain file of its own \(a link\)/.test(l)),
    ).toHaveLength(3);
    expect(refused.filter((l) => /\(a hard link\)/.test(l))).toHaveLength(3);
    expect(refused.filter((l) => /another user's, uid 4343/.test(l))).toHaveLength(3);
    expect(refused.filter((l) => /runs is not a folder of the evidence store/.test(l))).toHaveLength(1);
  }, 180_000);
  it("run stages no script through a work folder swapped for a link", async () => {
    const id = await up();
    const work = storePaths(p.dir, id).work;
    const v = mkdtempSync(join(box, "victim-"));
    p.write("crontab.sh", "echo staged\n");
    chownSync(join(p.dir, "crontab.sh"), PERSON, PERSON);
    renameSync(work, `${work}-moved`);
    symlinkSync(v, work);
    const r = await p.aido("run", "--sandbox", id, "crontab.sh");
    expect(r.code).not.toBe(0);
    // Before: root put the task's file in the folder linked to, by the task's name.
    expect(readdirSync(v)).toEqual([]);
    expect(r.err.join("\n")).toMatch(/cannot stage crontab\.sh into the sandbox's work folder/);
  }, 180_000);

  it("run stages no task file but the project owner's own (a link to a root file, a root file)", async () => {
    const id = await up();
    const work = storePaths(p.dir, id).work;
    symlinkSync(join(box, "secret"), join(p.dir, "steal.sh"));
    writeFileSync(join(p.dir, "roots.sh"), `${SECRET}\n`, { mode: 0o600 });
    for (const [task, why] of [
      ["steal.sh", /cannot stage steal\.sh: it is a link/],
      ["roots.sh", /cannot stage roots\.sh: it is not the project owner's \(uid 0\)/],
    ] as const) {
      const r = await p.aido("run", "--sandbox", id, task);
      // Before: root copied the file into work/ (the container user's, world-readable) and ran it.
      expect(existsSync(join(work, task)), task).toBe(false);
      expect([...r.out, ...r.err].join("\n"), task).not.toContain(SECRET);
      expect(r.code, task).not.toBe(0);
      expect(r.err.join("\n"), task).toMatch(why);
    }
    // The person's own script goes.
    p.write("own.sh", "echo own-script\n");
    chownSync(join(p.dir, "own.sh"), PERSON, PERSON);
    const ok = await p.aido("run", "--sandbox", id, "own.sh");
    expect(ok.code, ok.err.join("\n")).toBe(0);
    expect(ok.out.join("\n")).toContain("own-script");
  }, 180_000);

  it("run starts no stopped container with a working folder swapped for a link bound in its place", async () => {
    const id = await up();
    const paths = storePaths(p.dir, id);
    const record = withProject(p.dir, (project) => readRecord(sandboxPaths(project, id)));
    // Stopped (a reboot, say): the engine binds the working folders by their paths at the next start.
    await connectDocker()
      .getContainer(record?.container as string)
      .stop({ t: 0 });
    // Another user's folder, the container user's (uid 1000) to write.
    const v = mkdtempSync(join(box, "victim-"));
    chownSync(v, 1000, 1000);
    writeFileSync(join(v, "keep.txt"), "theirs\n");
    renameSync(paths.output, `${paths.output}-moved`);
    symlinkSync(v, paths.output);
    try {
      const r = await p.aido(
        "run",
        "--sandbox",
        id,
        "sh",
        "-c",
        "echo task > /output/planted; cat /output/keep.txt",
      );
      // Before: the container started with the folder linked to bound read-write at /output.
      expect(existsSync(join(v, "planted"))).toBe(false);
      expect(r.out.join("\n")).not.toContain("theirs");
      expect(r.code).not.toBe(0);
      expect(r.err.join("\n")).toMatch(/sandboxes\/\w+\/output is not a folder of the evidence store/);
    } finally {
      unlinkSync(paths.output);
      renameSync(`${paths.output}-moved`, paths.output);
    }
    // Put back, the container starts again.
    const ok = await p.aido("run", "--sandbox", id, "true");
    expect(ok.code, ok.err.join("\n")).toBe(0);
  }, 180_000);

  it("run serves no egress proxy through a share folder swapped for a link or a folder of the person's", async () => {
    p.write(
      "net.yaml",
      "runtime: python:3.11\ninputs: [data/]\npermissions:\n  network: [plain.test:8080]\n",
    );
    chownSync(join(p.dir, "net.yaml"), PERSON, PERSON);
    const made = await p.aido("sandbox", "up", "-f", "net.yaml");
    expect(made.code, made.err.join("\n")).toBe(0);
    const id = made.out[0] as string;
    const egress = storePaths(p.dir, id).egress;
    // Kept out of the sandbox's folder meanwhile: what root finds there of its own it gives the person.
    const kept = `${storePaths(p.dir, id).root}-egress`;
    // Root's file named like the proxy's socket, in a folder of root's.
    const v = mkdtempSync(join(box, "victim-"));
    writeFileSync(join(v, "proxy.sock"), "root's\n");
    const own = mkdtempSync(join(box, "own-"));
    chownSync(own, PERSON, PERSON);
    chmodSync(own, 0o700);
    renameSync(egress, kept);
    try {
      for (const [plant, why] of [
        [() => symlinkSync(v, egress), /egress is not a folder \(a link\?\)/],
        // A folder of theirs: they could swap the socket for a link before root's chmod of it.
        [() => renameSync(own, egress), /egress is not the share folder aido made \(uid 4242/],
      ] as const) {
        plant();
        const r = await p.aido("run", "--sandbox", id, "true");
        // Before: root removed the folder's proxy.sock (any folder's) and listened there.
        expect(readFileSync(join(v, "proxy.sock"), "utf8")).toBe("root's\n");
        expect(r.code).not.toBe(0);
        expect(r.err.join("\n")).toMatch(why);
        rmSync(egress, { recursive: true });
      }
    } finally {
      rmSync(egress, { recursive: true, force: true });
      renameSync(kept, egress);
    }
    const ok = await p.aido("run", "--sandbox", id, "true");
    expect(ok.code, ok.err.join("\n")).toBe(0);
    const gone = await p.aido("sandbox", "destroy", id);
    expect(gone.code, gone.err.join("\n")).toBe(0);
  }, 180_000);

  it("run collects no output into the folder a link put in the project folder's place during the run", async () => {
    p.write("out.yaml", "runtime: python:3.11\noutputs: [out.txt]\n");
    chownSync(join(p.dir, "out.yaml"), PERSON, PERSON);
    const made = await p.aido("sandbox", "up", "-f", "out.yaml");
    expect(made.code, made.err.join("\n")).toBe(0);
    const id = made.out[0] as string;
    // Root's folder, where a file of the task's must never land (/etc/profile.d, say).
    const v = mkdtempSync(join(box, "victim-"));
    const moved = `${p.dir}-moved`;
    let swapped = false;
    try {
      const result = await runTask({
        cwd: p.dir,
        config: p.home.config,
        sandboxId: id,
        task: ["sh", "-c", "echo planted > /output/out.txt; echo ready; sleep 1"],
        // The person (the project folder is theirs, /tmp sticky) swaps it for a link mid-run.
        onStdout: (line) => {
          if (swapped || line !== "ready") return;
          swapped = true;
          renameSync(p.dir, moved);
          symlinkSync(v, p.dir);
        },
      }).catch((e: unknown) => e);
      expect(swapped, String(result)).toBe(true);
      // Before: the collection opened the project by its path and wrote out.txt there.
      expect(readdirSync(v)).toEqual([]);
      // Collected into the project folder the run began in, wherever it is now.
      expect(readFileSync(join(moved, "out.txt"), "utf8")).toBe("planted\n");
    } finally {
      if (swapped) {
        unlinkSync(p.dir);
        renameSync(moved, p.dir);
      }
    }
  }, 180_000);

  it("run writes no file of its folder through a link put there once another command gave the folder away", async () => {
    p.write("out.yaml", "runtime: python:3.11\noutputs: [out.txt]\n");
    chownSync(join(p.dir, "out.yaml"), PERSON, PERSON);
    const made = await p.aido("sandbox", "up", "-f", "out.yaml");
    expect(made.code, made.err.join("\n")).toBe(0);
    const id = made.out[0] as string;
    const paths = storePaths(p.dir, id);
    // Root's files, each of which a name in the run's folder is made a link to.
    const names = [".summary.json.tmp", "summary.json", "outputs.diff"];
    for (const n of names) writeFileSync(join(box, `victim${n}`), "root's\n");
    let planted = false;
    const result = await runTask({
      cwd: p.dir,
      config: p.home.config,
      sandboxId: id,
      task: ["sh", "-c", "echo x > /output/out.txt; echo ready; sleep 1"],
      onStdout: (line) => {
        if (planted || line !== "ready") return;
        planted = true;
        // Another root command on the sandbox meanwhile (a second `aido run`, a destroy, the
        // TTL sweep) gives the evidence to the person, this run's folder with it.
        withProject(p.dir, (project) => ownEvidence(sandboxPaths(project, id)));
        const run = join(paths.runs, readdirSync(paths.runs).sort().at(-1) as string);
        for (const n of names) symlinkSync(join(box, `victim${n}`), join(run, n));
      },
    }).catch((e: unknown) => e);
    expect(planted, String(result)).toBe(true);
    // Before: root wrote the summary and the diff through the links, over root's files.
    for (const n of names) expect(readFileSync(join(box, `victim${n}`), "utf8"), n).toBe("root's\n");
  }, 180_000);
});

describe.runIf(asRoot)("root trusts no field of sandbox.json the person edited", () => {
  it("run reads no sandbox file but the project owner's own, in the project, not a link", async () => {
    const id = await up();
    const secret = join(box, "secret");
    symlinkSync(secret, join(p.dir, "link.yaml"));
    const ownedByRoot = join(p.dir, "root.yaml");
    writeFileSync(ownedByRoot, `${SECRET}: 1\n`);
    for (const [file, why] of [
      [secret, /not the project owner's/],
      [join(p.dir, "link.yaml"), /is a link/],
      [ownedByRoot, /not the project owner's/],
    ] as const) {
      editRecord(id, (r) => {
        r.spec_file = file;
      });
      const r = await p.aido("run", "--sandbox", id, "true");
      // Before: read as root, its parse error named its first key.
      expect(r.err.join("\n"), file).not.toContain(SECRET);
      expect(r.code, file).not.toBe(0);
      expect(r.err.join("\n"), file).toMatch(why);
      const events = readFileSync(storePaths(p.dir, id).events, "utf8");
      expect(events).toMatch(/"run_refused".*a root aido reads only the project's own sandbox file/);
    }
    // The project owner's own file, in the project: the run goes.
    editRecord(id, (r) => {
      r.spec_file = join(p.dir, "sb.yaml");
    });
    const ok = await p.aido("run", "--sandbox", id, "true");
    expect(ok.code, ok.err.join("\n")).toBe(0);
  }, 180_000);

  it("run gives no run's files to a user edited into the record", async () => {
    const id = await up();
    editRecord(id, (r) => {
      r.user = `${PERSON}:${PERSON}`;
    });
    const r = await p.aido("run", "--sandbox", id, "true");
    expect(r.code).not.toBe(0);
    expect(r.err.join("\n")).toMatch(/names user "4242:4242"; sandboxes made as root run as 1000:1000/);
    // The project owner's own uid: what a sandbox they made without sudo names too. The
    // refusal said only that sandbox.json was changed on the host, to one who changed nothing.
    expect(r.err.join("\n")).toContain(
      "made by the project's owner (uid 4242) with `aido sandbox up` without sudo: run it without sudo too",
    );
    editRecord(id, (r) => {
      r.user = "77:77";
    });
    const other = await p.aido("run", "--sandbox", id, "true");
    expect(other.err.join("\n")).toMatch(/names user "77:77"; .*\(sandbox\.json was changed on the host\)/);
    expect(existsSync(join(storePaths(p.dir, id).runs, "run-001"))).toBe(false);
  }, 180_000);

  it("run uses no container whose inputs the record no longer lists as they were made", async () => {
    const id = await up();
    editRecord(id, (r) => {
      r.inputs = [];
    });
    const r = await p.aido("run", "--sandbox", id, "true");
    expect(r.code).not.toBe(0);
    expect(r.err.join("\n")).toMatch(/lists inputs its container was not made with/);
  }, 180_000);
});

describe.runIf(asRoot)("root in a folder of root's that others can write", () => {
  it("stages no task file and reads no sandbox file anyone put a link to there", async () => {
    const shared = await makeProject();
    try {
      // A shared folder (root's, 0777): anyone could have put these there.
      chmodSync(shared.dir, 0o777);
      shared.write("sb.yaml", "runtime: python:3.11\n");
      symlinkSync(join(box, "secret"), join(shared.dir, "steal.sh"));
      const up = await shared.aido("sandbox", "up", "-f", "sb.yaml");
      expect(up.code, up.err.join("\n")).toBe(0);
      const id = up.out[0] as string;
      const run = await shared.aido("run", "steal.sh");
      // Before: taken for root's own project, steal.sh was staged (the secret in work/) and run.
      expect(existsSync(join(storePaths(shared.dir, id).work, "steal.sh"))).toBe(false);
      expect([...run.out, ...run.err].join("\n")).not.toContain(SECRET);
      expect(run.code).not.toBe(0);
      expect(run.err.join("\n")).toMatch(/cannot stage steal\.sh: it is a link/);
      // A sandbox file a record names: root's own, in the folder, not a link.
      const file = storePaths(shared.dir, id).record;
      const r = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
      writeFileSync(file, JSON.stringify({ ...r, spec_file: join(shared.dir, "steal.sh") }));
      const again = await shared.aido("run", "true");
      expect([...again.out, ...again.err].join("\n")).not.toContain(SECRET);
      expect(again.err.join("\n")).toMatch(/cannot read sandbox file .*steal\.sh: it is a link/);
      // Root's own script there goes.
      shared.write("own.sh", "echo own-script\n");
      writeFileSync(file, JSON.stringify(r));
      const ok = await shared.aido("run", "own.sh");
      expect(ok.code, ok.err.join("\n")).toBe(0);
    } finally {
      await shared.cleanup();
    }
  }, 180_000);
});
