// A person who is not root: `aido` runs as their uid, and so does the sandbox's task, so the
// task owns the folders it shares with the host and can take their permissions from their
// owner. Each `aido` command runs as its own process with that uid (a test run as root
// switches to uid 1000, in the group of the engine's socket), against the real engine.

import { spawn } from "node:child_process";
import { chmodSync, chownSync, lstatSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeProject, type Project } from "./fixture.js";

let p: Project;
const asRoot = process.getuid?.() === 0;
/** Who `aido` runs as: a plain user who may use the engine's socket. */
const user = asRoot
  ? { uid: 1000, gid: statSync("/var/run/docker.sock").gid }
  : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

function chownTree(path: string): void {
  const st = lstatSync(path);
  chownSync(path, user.uid, user.gid);
  if (st.isDirectory()) for (const n of readdirSync(path)) chownTree(join(path, n));
}

beforeAll(async () => {
  p = await makeProject();
  if (asRoot) for (const d of [p.dir, p.home.dir]) chownTree(d);
}, 120_000);
afterAll(async () => {
  await p?.cleanup();
});

/** `aido ARGV` as its own process, as the plain user. */
function aido(...argv: string[]): Promise<{ code: number | null; out: string[]; err: string[] }> {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
  const child = spawn(process.execPath, ["--import", tsx, join(process.cwd(), "src/cli/main.ts"), ...argv], {
    cwd: p.dir,
    env: { PATH: process.env.PATH, HOME: p.home.dir, ...p.home.env },
    stdio: ["ignore", "pipe", "pipe"],
    ...(asRoot ? { uid: user.uid, gid: user.gid } : {}),
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => {
    out += d;
  });
  child.stderr.on("data", (d) => {
    err += d;
  });
  const lines = (t: string) => t.split("\n").filter(Boolean);
  return new Promise((resolve) =>
    child.on("close", (code) => resolve({ code, out: lines(out), err: lines(err) })),
  );
}

describe("a task that takes the stream folder's permissions from its owner", () => {
  it("never blocks the next run: the folder's owner access is given back, and said", async () => {
    // `chmod 555 /aido/stream` (or 000) by a task made every later `aido run` in the
    // sandbox fail: the host, as the same plain user, could no longer make the run's
    // stream files there.
    p.write("sandbox.yaml", "runtime: python:3.11\n");
    if (asRoot) chownTree(join(p.dir, "sandbox.yaml"));
    const up = await aido("sandbox", "up");
    expect(up.code, up.err.join("\n")).toBe(0);
    const id = up.out[0] as string;
    const stream = join(p.dir, ".aido", "sandboxes", id, "stream");
    expect(statSync(stream).uid).toBe(user.uid);
    for (const mode of ["555", "000"]) {
      const take = await aido("run", "sh", "-c", `chmod ${mode} /aido/stream`);
      expect(take.code, take.err.join("\n")).toBe(0);
      expect((statSync(stream).mode & 0o777).toString(8).padStart(3, "0")).toBe(mode);
      const next = await aido("run", "sh", "-c", "echo after");
      expect(next.err.join("\n")).toContain(
        `the stream folder had its owner's access taken (mode ${mode}, by a task); it was given back (u+rwx)`,
      );
      expect(next.code, next.err.join("\n")).toBe(0);
      expect(next.out).toEqual(["after"]);
    }
    const destroy = await aido("sandbox", "destroy", id);
    expect(destroy.code, destroy.err.join("\n")).toBe(0);
  }, 180_000);
});

describe("a task that takes the work folder's permissions from its owner", () => {
  it("never blocks staging the next script: the folder's owner access is given back, and said", async () => {
    // `chmod 555 /workspace` by a task made the next `aido run SCRIPT` fail: the host, as
    // the same plain user, could no longer copy the script into the work folder.
    p.write("work.yaml", "runtime: python:3.11\n");
    p.write("hello.py", "print('staged')\n");
    if (asRoot) for (const f of ["work.yaml", "hello.py"]) chownTree(join(p.dir, f));
    const up = await aido("sandbox", "up", "-f", "work.yaml");
    expect(up.code, up.err.join("\n")).toBe(0);
    const id = up.out[0] as string;
    const work = join(p.dir, ".aido", "sandboxes", id, "work");
    const take = await aido("run", "--sandbox", id, "sh", "-c", "chmod 555 /workspace");
    expect(take.code, take.err.join("\n")).toBe(0);
    expect(statSync(work).mode & 0o777).toBe(0o555);
    const next = await aido("run", "--sandbox", id, "hello.py");
    expect(next.err.join("\n")).toContain(
      "the work folder had its owner's access taken (mode 555, by a task); it was given back (u+rwx)",
    );
    expect(next.code, next.err.join("\n")).toBe(0);
    expect(next.out).toEqual(["staged"]);
    if (asRoot) {
      // A folder not the user's to give back (here root's): a clear error naming it.
      chownSync(work, 0, 0);
      const refused = await aido("run", "--sandbox", id, "hello.py");
      expect(refused.code).not.toBe(0);
      expect(refused.err.join("\n")).toMatch(
        /cannot stage hello\.py into the sandbox's work folder \S+\/work \(EACCES.*destroy the sandbox and start a new one/,
      );
      chownSync(work, user.uid, user.gid);
    }
    expect((await aido("sandbox", "destroy", id)).code).toBe(0);
  }, 180_000);
});

describe("a task that takes an output folder's permissions from its owner", () => {
  it("has the rest of the run's outputs collected, and the folder reported", async () => {
    // `chmod 644` on a folder of /output (or 311) by a task of the person's own uid made
    // the host's walk throw (EACCES looking at its entries): none of the run's outputs was
    // collected, and the run failed.
    p.write("taken.yaml", "runtime: python:3.11\noutputs: [res/]\n");
    if (asRoot) chownTree(join(p.dir, "taken.yaml"));
    const up = await aido("sandbox", "up", "-f", "taken.yaml");
    expect(up.code, up.err.join("\n")).toBe(0);
    const id = up.out[0] as string;
    const make = [
      "mkdir -p /output/res/a /output/res/b",
      "echo ok > /output/res/ok.txt",
      "echo a > /output/res/a/f && echo b > /output/res/b/f",
      "chmod 644 /output/res/a && chmod 311 /output/res/b",
    ].join(" && ");
    const run = await aido("run", "--sandbox", id, "--json", "sh", "-c", make);
    expect(run.code, run.err.join("\n")).toBe(0);
    const s = JSON.parse(run.out.join("\n")) as {
      outputs: { collected: string[]; skipped: Array<{ path: string; reason: string }> };
    };
    expect(s.outputs.collected).toEqual(["res/ok.txt"]);
    expect(s.outputs.skipped.map((k) => k.path).sort()).toEqual(["res/a", "res/b"]);
    for (const k of s.outputs.skipped) expect(k.reason).toMatch(/^a folder whose entries could not be read/);
    expect((await aido("sandbox", "destroy", id)).code).toBe(0);
  }, 180_000);
});

describe("a project folder the host cannot write an output in", () => {
  it("has the rest of the run's outputs collected and recorded, and that one reported", async () => {
    // The copy threw (EACCES creating the file in a folder not the person's to write: left by
    // a run as root, or made read-only by a task holding it read-write): the run failed with
    // "outputs were not collected", its summary listing none, while the outputs copied before
    // it were already in the project, in no record and not in outputs.diff.
    p.write("blocked.yaml", "runtime: python:3.11\noutputs: [first.txt, ro/]\n");
    p.write("ro/keep.txt", "kept\n");
    if (asRoot) chownTree(join(p.dir, "blocked.yaml"));
    chmodSync(join(p.dir, "ro"), 0o555); // root's when the test is root, else its own read-only
    const up = await aido("sandbox", "up", "-f", "blocked.yaml");
    expect(up.code, up.err.join("\n")).toBe(0);
    const id = up.out[0] as string;
    const make = "echo a > /output/first.txt && echo b > /output/ro/b.txt";
    const run = await aido("run", "--sandbox", id, "--json", "sh", "-c", make);
    chmodSync(join(p.dir, "ro"), 0o755);
    expect(run.code, run.err.join("\n")).toBe(0);
    const s = JSON.parse(run.out.join("\n")) as {
      outputs: { collected: string[]; skipped: Array<{ path: string; reason: string }> };
    };
    expect(s.outputs.collected).toEqual(["first.txt"]);
    expect(s.outputs.skipped).toEqual([
      { path: "ro/b.txt", reason: "could not be written in the project (EACCES)" },
    ]);
    expect(readFileSync(join(p.dir, "first.txt"), "utf8")).toBe("a\n");
    expect(readdirSync(join(p.dir, "ro"))).toEqual(["keep.txt"]);
    expect((await aido("sandbox", "destroy", id)).code).toBe(0);
  }, 180_000);
});

describe("a task that leaves many unreadable folders down a chain of long names", () => {
  it("has them counted, not listed, past PATH_MAX: the report stays within its bounds", async () => {
    // The unreadable folders were each listed by their whole path, whatever its length: a
    // thousand of them below 40 folders of 255-byte names put 10 MB of paths in summary.json
    // and events.log, past the 8 Mi characters and the PATH_MAX the report keeps to.
    p.write("deep.yaml", "runtime: python:3.11\noutputs: [res/]\n");
    if (asRoot) chownTree(join(p.dir, "deep.yaml"));
    const up = await aido("sandbox", "up", "-f", "deep.yaml");
    expect(up.code, up.err.join("\n")).toBe(0);
    const id = up.out[0] as string;
    const make = [
      "import os",
      "os.makedirs('/output/res', exist_ok=True)",
      "open('/output/res/ok.txt', 'w').write('ok\\n')",
      "os.chdir('/output/res')",
      "for i in range(40): os.mkdir('d' * 255); os.chdir('d' * 255)",
      "for i in range(1000): os.mkdir('u%d' % i, 0)",
    ].join("\n");
    const run = await aido("run", "--sandbox", id, "--json", "python3", "-c", make);
    expect(run.code, run.err.join("\n")).toBe(0);
    const s = JSON.parse(run.out.join("\n")) as {
      outputs: { collected: string[]; skipped: Array<{ path: string; reason: string }> };
    };
    expect(s.outputs.collected).toEqual(["res/ok.txt"]);
    for (const k of s.outputs.skipped) expect(Buffer.byteLength(k.path)).toBeLessThanOrEqual(4095);
    expect(s.outputs.skipped).toContainEqual({
      path: ".",
      reason: expect.stringMatching(
        /^1000 paths longer than 4095 bytes \(PATH_MAX\) not collected, not listed/,
      ),
    });
    const events = statSync(join(p.dir, ".aido", "sandboxes", id, "events.log")).size;
    expect(events).toBeLessThan(1 << 20);
    expect((await aido("sandbox", "destroy", id)).code).toBe(0);
  }, 180_000);
});
