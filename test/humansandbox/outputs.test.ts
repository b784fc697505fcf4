// Declared outputs in a human sandbox, end to end against the real engine: the PRD's own
// example (a read-only working folder, `outputs: [results/, migration.log]`), read from
// docs/sandbox-cli.md and run exactly; and a script that plants a symlink where the next
// task is staged, aimed at a host file.

import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeProject, type Project, startRun } from "./fixture.js";

let p: Project;

beforeAll(async () => {
  p = await makeProject();
  p.write("data/users.csv", "id,name\n1,ada\n2,linus\n");
  execFileSync("git", ["-C", p.dir, "add", "."]);
  execFileSync("git", ["-C", p.dir, "commit", "-qm", "start"]);
});
afterAll(async () => {
  await p?.cleanup();
});

/** The fenced blocks of one docs/sandbox-cli.md section, by language. */
function docBlocks(heading: string): Record<string, string> {
  const doc = readFileSync(join(import.meta.dirname, "..", "..", "docs", "sandbox-cli.md"), "utf8");
  const start = doc.indexOf(`## ${heading}`);
  expect(start, `docs/sandbox-cli.md has no section "${heading}"`).toBeGreaterThan(0);
  const end = doc.indexOf("\n## ", start + 3);
  const section = doc.slice(start, end < 0 ? undefined : end);
  const blocks: Record<string, string> = {};
  for (const m of section.matchAll(/```(\w+)\n([\s\S]*?)```/g)) blocks[m[1]!] ??= m[2]!;
  return blocks;
}

describe("the PRD's example: a read-only working folder with declared outputs", () => {
  it("runs exactly as docs/sandbox-cli.md shows: outputs written at their paths, collected, the rest read-only", async () => {
    const doc = docBlocks(
      "Walkthrough: a read-only working folder with declared outputs (the PRD's example)",
    );
    expect(doc.yaml).toContain("outputs: [results/, migration.log]");
    expect(doc.yaml).toContain("filesystem: readonly");
    p.write("sandbox.yaml", doc.yaml!);
    p.write("migration.py", doc.python!);

    const up = await p.aido("sandbox", "up", "--json");
    expect(up.code, up.err.join("\n")).toBe(0);
    const box = up.json<{ id: string }>();
    const folder = join(p.dir, ".aido", "sandboxes", box.id);
    const record = JSON.parse(readFileSync(join(folder, "sandbox.json"), "utf8"));
    expect(record).toMatchObject({
      permissions: { filesystem: "readonly" },
      output_links: ["results", "migration.log"],
    });

    const run = await p.aido("run", "migration.py");
    expect(run.code, run.err.join("\n")).toBe(0);
    expect(run.out).toEqual(["migrated 2 rows"]);
    expect(p.read("results/users.sql")).toBe(
      "INSERT INTO users VALUES (1, 'ada');\nINSERT INTO users VALUES (2, 'linus');\n",
    );
    expect(p.read("migration.log")).toBe("migrated 2 rows\n");
    const summary = JSON.parse(readFileSync(join(folder, "summary.json"), "utf8"));
    expect(summary.outputs.collected).toEqual(["migration.log", "results/users.sql"]);
    expect(readFileSync(join(folder, "outputs.diff"), "utf8")).toContain("+migrated 2 rows");

    // A second run appends to the log through the same link, and it is collected again.
    expect((await p.aido("run", "migration.py")).code).toBe(0);
    expect(p.read("migration.log")).toBe("migrated 2 rows\nmigrated 2 rows\n");

    // Everything else of the working folder stays read-only; the declared folder does not.
    const ro = await p.aido("run", "sh", "-c", "echo x > notes.txt");
    expect(ro.code).not.toBe(0);
    expect(ro.err.join("\n")).toContain("Read-only file system");
    const script = await p.aido("run", "sh", "-c", "echo x > migration.py");
    expect(script.code).not.toBe(0);
    expect((await p.aido("run", "sh", "-c", "echo more > results/extra.txt")).code).toBe(0);
    expect(p.read("results/extra.txt")).toBe("more\n");
    expect(existsSync(join(p.dir, "notes.txt"))).toBe(false);

    const destroy = await p.aido("sandbox", "destroy", "--json");
    expect(destroy.code).toBe(0);
  });
});

describe("staging a task into a writable working folder", () => {
  it("never writes through a symlink a script left where the next task goes", async () => {
    const victim = join(p.dir, "victim.txt");
    writeFileSync(victim, "host file\n");
    p.write("sandbox.yaml", "permissions: { filesystem: readwrite }\noutputs: ['*.log']\n");
    const up = await p.aido("sandbox", "up", "--json");
    expect(up.code, up.err.join("\n")).toBe(0);
    const folder = join(p.dir, ".aido", "sandboxes", up.json<{ id: string }>().id);
    // A glob in the first segment gets no link, and the evidence says so.
    expect(readFileSync(join(folder, "events.log"), "utf8")).toContain(
      "output *.log has no link in /workspace",
    );
    const plant = await p.aido("run", "sh", "-c", `ln -s ${victim} /workspace/task.sh`);
    expect(plant.code, plant.err.join("\n")).toBe(0);
    p.write("task.sh", "echo staged and ran\n");
    const run = await p.aido("run", "task.sh");
    expect(run.code, run.err.join("\n")).toBe(0);
    expect(run.out).toEqual(["staged and ran"]);
    expect(readFileSync(victim, "utf8")).toBe("host file\n");
    expect((await p.aido("sandbox", "destroy")).code).toBe(0);
  });
});

describe("collecting outputs a task names and moves as it likes", () => {
  it("reports an output whose name is not UTF-8 by its bytes, and why it stays", async () => {
    // The walk read names as strings: a name that is not UTF-8 no longer reached its file,
    // which was skipped as "changed while it was collected" under a name that was not its own.
    p.write("bytes.yaml", "runtime: python:3.11\noutputs: [res/]\n");
    const up = await p.aido("sandbox", "up", "-f", "bytes.yaml");
    expect(up.code, up.err.join("\n")).toBe(0);
    const make = [
      "import os",
      "os.makedirs('/output/res', exist_ok=True)",
      "open(b'/output/res/r\\xe9sum\\xe9.csv', 'w').write('latin-1\\n')",
      "open('/output/res/ok.csv', 'w').write('ok\\n')",
    ].join("\n");
    p.write("bytes.py", make);
    const r = await p.aido("run", "--json", "bytes.py");
    expect(r.code, r.err.join("\n")).toBe(0);
    const s = r.json<{
      outputs: { collected: string[]; skipped: Array<{ path: string; reason: string }> };
    }>();
    expect(s.outputs.collected).toEqual(["res/ok.csv"]);
    expect(s.outputs.skipped).toEqual([
      {
        path: "res/r\\xe9sum\\xe9.csv",
        reason: expect.stringMatching(/^its name is not UTF-8 .*until the sandbox is destroyed/),
      },
    ]);
    expect((await p.aido("sandbox", "destroy")).code).toBe(0);
  }, 120_000);

  it("never writes git's own folder from a wildcard: its config and hooks are commands", async () => {
    // With outputs: ["**"], a task's /output/.git/config (core.fsmonitor) or a hook was copied
    // over the project's: a command the person's next git, or their editor's git status, ran
    // on the host. A .git file (any case) could point git at the sandbox's own /output.
    p.write("git.yaml", "runtime: python:3.11\noutputs: ['**', 'vendor/.git/info/']\n");
    const up = await p.aido("sandbox", "up", "-f", "git.yaml");
    expect(up.code, up.err.join("\n")).toBe(0);
    const make = [
      "import os",
      "for d in ['/output/.git/hooks', '/output/res']: os.makedirs(d, exist_ok=True)",
      "open('/output/.git/config', 'w').write('[core]\\n\\tbare = false\\n[aido]\\n\\ttask = wrote-this\\n')",
      "open('/output/.git/hooks/post-checkout', 'w').write('#!/bin/sh\\ntrue\\n')",
      "os.chmod('/output/.git/hooks/post-checkout', 0o755)",
      "open('/output/res/.GIT', 'w').write('gitdir: /elsewhere\\n')",
      "open('/output/res/ok.txt', 'w').write('ok\\n')",
      "os.makedirs('/output/vendor/.git/info', exist_ok=True)",
      "open('/output/vendor/.git/info/exclude', 'w').write('named\\n')",
    ].join("\n");
    p.write("git.py", make);
    const r = await p.aido("run", "--json", "git.py");
    expect(r.code, r.err.join("\n")).toBe(0);
    const s = r.json<{
      outputs: { collected: string[]; skipped: Array<{ path: string; reason: string }> };
    }>();
    // A pattern naming .git collects what it matches, and only that.
    expect(s.outputs.collected).toEqual(["res/ok.txt", "vendor/.git/info/exclude"]);
    expect(s.outputs.skipped.map((k) => k.path).sort()).toEqual([
      ".git/config",
      ".git/hooks/post-checkout",
      "res/.GIT",
    ]);
    for (const k of s.outputs.skipped) expect(k.reason).toMatch(/^in git's own folder/);
    expect(readFileSync(join(p.dir, ".git", "config"), "utf8")).not.toContain("wrote-this");
    expect(existsSync(join(p.dir, ".git", "hooks", "post-checkout"))).toBe(false);
    expect(existsSync(join(p.dir, "res", ".GIT"))).toBe(false);
    expect((await p.aido("sandbox", "destroy")).code).toBe(0);
  }, 120_000);

  it("never reports a host file's name when a running task swaps a folder for a link mid-walk", async () => {
    // The walk went by path: a task still running (a second run) that swapped out/d for a
    // link to a host folder between the walk's lstat and its readdir had the host folder's
    // names listed, and then reported as skipped outputs; one that moved it between two
    // steps made the collection throw (the run's outputs not collected, exit 1).
    p.write("swap.yaml", "runtime: python:3.11\noutputs: [out/]\n");
    const up = await p.aido("sandbox", "up", "-f", "swap.yaml");
    expect(up.code, up.err.join("\n")).toBe(0);
    const mine = Array.from({ length: 50 }, (_, i) => `f${i}`);
    p.write(
      "swap.py",
      [
        "import os, time",
        "os.makedirs('/output/out/d', exist_ok=True)",
        `for n in ${JSON.stringify(mine)}: open('/output/out/d/' + n, 'w').close()`,
        "end = time.time() + 25",
        "print('swapping', flush=True)",
        "while time.time() < end:",
        "    os.rename('/output/out/d', '/output/out/real')",
        "    os.symlink('/etc', '/output/out/d')",
        "    os.unlink('/output/out/d')",
        "    os.rename('/output/out/real', '/output/out/d')",
      ].join("\n"),
    );
    const swapper = startRun(p, ["swap.py"]);
    let seen = "";
    swapper.child.stdout?.on("data", (b: Buffer) => {
      seen += b.toString();
    });
    try {
      for (let i = 0; i < 200 && !seen.includes("swapping"); i++) await new Promise((r) => setTimeout(r, 50));
      const allowed = new Set(["out/d", ...mine.map((n) => `out/d/${n}`), "out/real"]);
      for (let i = 0; i < 15; i++) {
        const r = await p.aido("run", "--json", "true");
        // By path, the walk also threw when the folder went between two of its steps.
        expect(r.code, r.err.join("\n")).toBe(0);
        const s = r.json<{ outputs: { collected: string[]; skipped: Array<{ path: string }> } }>();
        for (const path of [...s.outputs.collected, ...s.outputs.skipped.map((x) => x.path)])
          expect(allowed.has(path.replace(/^out\/real\//, "out/d/")), path).toBe(true);
      }
    } finally {
      swapper.child.kill("SIGKILL");
      await swapper.exited;
    }
    expect((await p.aido("sandbox", "destroy")).code).toBe(0);
  }, 180_000);

  it("never copies an output through a link a running task puts on its way in the project", async () => {
    // The copy checked the project side for links, then made the folders (following links)
    // and created the file by path: a task with a read-write input holding an output's
    // folder (--dangerous-allow-mutations) that put a link there between the check and the
    // copy had its outputs written where the link pointed: here its own sandbox's evidence.
    p.write("link.yaml", "runtime: python:3.11\ninputs: [res/]\noutputs: [res/]\n");
    p.write("res/keep.txt", "kept\n");
    chmodSync(join(p.dir, "res"), 0o777); // the task runs as the folder's owner (a person not root)
    const up = await p.aido("sandbox", "up", "-f", "link.yaml", "--dangerous-allow-mutations", "--yes");
    expect(up.code, up.err.join("\n")).toBe(0);
    const id = up.out[0] as string;
    const evidence = join(p.dir, ".aido", "sandboxes", id);
    p.write(
      "link.py",
      [
        "import ctypes, os, time",
        "os.makedirs('/output/res/sub', exist_ok=True)",
        "for i in range(3000): open('/output/res/sub/f%d' % i, 'w').write('task\\n')",
        "libc = ctypes.CDLL(None, use_errno=True)",
        "os.makedirs('/inputs/res/sub', exist_ok=True)",
        "os.symlink('../.aido/sandboxes/" + id + "', '/inputs/res/lnk')",
        "end = time.time() + 40",
        "print('swapping', flush=True)",
        "while time.time() < end:",
        "    libc.renameat2(-100, b'/inputs/res/sub', -100, b'/inputs/res/lnk', 2)  # RENAME_EXCHANGE",
      ].join("\n"),
    );
    const swapper = startRun(p, ["link.py"]);
    let seen = "";
    swapper.child.stdout?.on("data", (b: Buffer) => {
      seen += b.toString();
    });
    try {
      for (let i = 0; i < 400 && !seen.includes("swapping"); i++) await new Promise((r) => setTimeout(r, 50));
      expect(seen).toContain("swapping");
      let collected = 0;
      for (let i = 0; i < 4; i++) {
        const r = await p.aido("run", "--json", "true");
        const landed = readdirSync(evidence).filter((n) => /^f\d+$/.test(n));
        expect(landed, "outputs written into the sandbox's evidence").toEqual([]);
        // By path, the copy also threw when the folder went between two of its steps.
        expect(r.code, r.err.join("\n")).toBe(0);
        const s = r.json<{
          outputs: { collected: string[]; skipped: Array<{ path: string; reason: string }> };
        }>();
        for (const k of s.outputs.skipped)
          expect(k.reason, k.path).toMatch(
            /symlink in the project|changed while it was collected|more paths not collected, not listed/,
          );
        collected += s.outputs.collected.length;
      }
      // What met a folder was still collected, into the folder.
      expect(collected).toBeGreaterThan(0);
    } finally {
      swapper.child.kill("SIGKILL");
      await swapper.exited;
    }
    expect((await p.aido("sandbox", "destroy", id)).code).toBe(0);
  }, 300_000);

  it("reports what it leaves within bounds: thousands of links down a chain of long names", async () => {
    // Each skipped path was a warning event and a line of summary.json, unbounded: 3,000
    // links 100 folders of 250 bytes down wrote 75 MB of warnings into events.log (20,000
    // 250 down: a gigabyte, and a summary too long to be written at all).
    p.write("many.yaml", "runtime: python:3.11\noutputs: [deep/]\n");
    const up = await p.aido("sandbox", "up", "-f", "many.yaml");
    expect(up.code, up.err.join("\n")).toBe(0);
    const id = up.out[0] as string;
    const make = [
      "import os",
      "os.makedirs('/output/deep', exist_ok=True)",
      "os.chdir('/output/deep')",
      "open('ok.txt', 'w').write('ok\\n')",
      "for _ in range(100): os.mkdir('d' * 250); os.chdir('d' * 250)",
      "for i in range(3000): os.symlink('/etc', 'l%d' % i)",
    ].join("\n");
    p.write("many.py", make);
    const r = await p.aido("run", "--json", "many.py");
    expect(r.code, r.err.join("\n")).toBe(0);
    const s = r.json<{
      outputs: { collected: string[]; skipped: Array<{ path: string; reason: string }> };
    }>();
    expect(s.outputs.collected).toEqual(["deep/ok.txt"]);
    expect(s.outputs.skipped).toEqual([
      {
        path: ".",
        reason: expect.stringMatching(/^3000 paths longer than 4095 bytes \(PATH_MAX\) not collected/),
      },
    ]);
    const events = () => readFileSync(join(p.dir, ".aido", "sandboxes", id, "events.log"), "utf8");
    expect(events().length).toBeLessThan(1_000_000);
    // Short paths: the first thousand listed, the rest counted.
    const wide = await p.aido(
      "run",
      "--json",
      "sh",
      "-c",
      "cd /output/deep && for i in $(seq 1500); do ln -s /etc w$i; done",
    );
    expect(wide.code, wide.err.join("\n")).toBe(0);
    const w = wide.json<{ outputs: { skipped: Array<{ path: string; reason: string }> } }>();
    expect(w.outputs.skipped).toHaveLength(1002);
    expect(w.outputs.skipped.slice(-2).map((k) => k.reason)).toEqual([
      expect.stringMatching(/^3000 paths longer/),
      "500 more paths not collected, not listed",
    ]);
    expect(
      events()
        .split("\n")
        .filter((l) => l.includes("not collected")).length,
    ).toBe(1 + 1002);
    expect((await p.aido("sandbox", "destroy", id)).code).toBe(0);
  }, 180_000);
});
