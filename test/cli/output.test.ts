// `aido output`: a goal's deliverables reach the user's folder as plain files and folders
// only. The goal's output folder holds what a hostile goal could leave there (a setuid
// copy of a program, a link to a host secret, a fifo, nested folders); the user's folder
// holds links a trap could have planted earlier. Run through runCli against a real agentd
// over its socket, as a user (or run-aido.sh) runs it.

import { execFileSync, spawn } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { turn } from "../support/provider-server.js";
import { captureIo } from "./io.js";

const dirs: string[] = [];

const suite = useDaemonPerTest({
  afterEach: () => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  },
});

const scratch = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};

async function cli(argv: string[]) {
  const c = captureIo();
  const code = await runCli(argv, c.io, suite.fx.home.env);
  return { code, ...c };
}

const mode = (p: string | Buffer) => (lstatSync(p).mode & 0o7777).toString(8);

/** A finished goal whose output folder holds what a hostile goal could leave behind. */
async function hostileOutput(outside: string): Promise<string> {
  suite.server.script('manifest "done"', [turn.text("delivered")]);
  const fx = await suite.start();
  const c = await fx.client();
  const { goal_id } = await c.call("goal.submit", { goal: "deliver", manifest: manifest("done") });
  const end = await c.call("goal.wait", { goal_id, timeout_ms: 30_000 });
  expect(end.state).toBe("succeeded");
  const out = end.output_dir;
  writeFileSync(join(out, "report.md"), "# report\n");
  mkdirSync(join(out, "data", "deep"), { recursive: true });
  writeFileSync(join(out, "data", "deep", "rows.csv"), "a,b\n");
  copyFileSync("/bin/true", join(out, "tool"));
  chmodSync(join(out, "tool"), 0o6755);
  chmodSync(join(out, "data"), 0o2755);
  writeFileSync(join(outside, "secret"), "host secret\n");
  symlinkSync(join(outside, "secret"), join(out, "secret-link"));
  execFileSync("mkfifo", [join(out, "pipe")]);
  return goal_id;
}

describe("aido output", () => {
  it("copies files and folders with plain modes, and no link, fifo or setuid bit", async () => {
    const outside = scratch("aido-outside-");
    const goalId = await hostileOutput(outside);
    const dest = join(scratch("aido-user-"), "output");
    const r = await cli(["output", goalId, "--to", dest]);
    expect(r.code, r.err.join("\n")).toBe(0);
    expect(r.text()).toMatch(/^copied 3 files \(\d+ bytes\) to /);
    expect(readFileSync(join(dest, "report.md"), "utf8")).toBe("# report\n");
    expect(readFileSync(join(dest, "data", "deep", "rows.csv"), "utf8")).toBe("a,b\n");
    expect(mode(join(dest, "tool"))).toBe("755");
    expect(mode(join(dest, "data"))).toBe("755");
    expect(mode(join(dest, "report.md"))).toBe("644");
    expect(() => lstatSync(join(dest, "secret-link"))).toThrow(/ENOENT/);
    expect(() => lstatSync(join(dest, "pipe"))).toThrow(/ENOENT/);
    expect(r.err).toEqual([
      "skipped pipe: a fifo: only regular files and folders are copied",
      "skipped secret-link: a symbolic link: only regular files and folders are copied",
    ]);
  });

  it("never writes a sparse deliverable's holes into the user's folder", async () => {
    // One ftruncate in /output makes a file of any size that costs the goal nothing; the
    // copy wrote its holes out in full (a terabyte would fill the user's disk). 1 GiB here.
    const goalId = await hostileOutput(scratch("aido-outside-"));
    const st = await suite.fx.client().then((c) => c.call("goal.status", { goal_id: goalId }));
    const huge = join(st.output_dir, "huge.img");
    writeFileSync(huge, "");
    truncateSync(huge, 1 << 30);
    const dest = join(scratch("aido-user-"), "output");
    const r = await cli(["output", goalId, "--to", dest]);
    expect(r.code, r.err.join("\n")).toBe(0);
    expect(r.err).toContainEqual(
      expect.stringMatching(/^skipped huge\.img: sparse: 1073741824 bytes of which \d+ were never written/),
    );
    expect(() => lstatSync(join(dest, "huge.img"))).toThrow(/ENOENT/);
    expect(readFileSync(join(dest, "report.md"), "utf8")).toBe("# report\n");
  });

  it("never copies a host file when the goal swaps an output folder for a link while aido output copies", async () => {
    // A goal still running keeps swapping a folder of its output with a link to a host
    // folder holding the same names (renameat2 RENAME_EXCHANGE: the name is never missing);
    // here a process beside the test plays the goal's container. A copy by path read the
    // host's files into the user's folder.
    const outside = scratch("aido-outside-");
    const goalId = await hostileOutput(outside);
    const st = await suite.fx.client().then((c) => c.call("goal.status", { goal_id: goalId }));
    const out: string = st.output_dir;
    const count = 300;
    mkdirSync(join(out, "sub"));
    for (let i = 0; i < count; i++) {
      writeFileSync(join(out, "sub", `f${i}`), "mine\n");
      writeFileSync(join(outside, `f${i}`), "host secret\n");
    }
    symlinkSync(outside, join(out, "alt"));
    const racer = spawn("python3", [
      "-c",
      [
        "import ctypes, os, sys, time",
        "rename2 = ctypes.CDLL(None, use_errno=True).renameat2",
        "a, b = sys.argv[1].encode(), sys.argv[2].encode()",
        "end = time.time() + 20",
        "while time.time() < end and not os.path.exists(sys.argv[3]):",
        "    assert rename2(-100, a, -100, b, 2) == 0",
        "    time.sleep(0.001)",
        "    assert rename2(-100, a, -100, b, 2) == 0",
        "    time.sleep(0.002)",
      ].join("\n"),
      join(out, "sub"),
      join(out, "alt"),
      join(outside, "stop"),
    ]);
    const ended = new Promise<number | null>((r) => racer.on("exit", r));
    const leaked: string[] = [];
    let copied = 0;
    try {
      for (let n = 0; n < 6 && leaked.length === 0; n++) {
        const dest = join(scratch("aido-user-"), "output");
        const r = await cli(["output", goalId, "--to", dest]);
        expect(r.code, r.err.join("\n")).toBe(0);
        for (let i = 0; i < count; i++) {
          let text: string;
          try {
            text = readFileSync(join(dest, "sub", `f${i}`), "utf8");
          } catch {
            continue;
          }
          copied++;
          if (text !== "mine\n") leaked.push(`f${i}`);
        }
      }
    } finally {
      writeFileSync(join(outside, "stop"), "");
      expect(await ended).toBe(0);
    }
    expect(leaked).toEqual([]);
    expect(copied).toBeGreaterThan(0);
  }, 60_000);

  it("never writes through a link already in the user's folder", async () => {
    const outside = scratch("aido-outside-");
    const goalId = await hostileOutput(outside);
    const user = scratch("aido-user-");
    const dest = join(user, "output");
    mkdirSync(dest);
    // Traps: a file link to a file of the user's, a folder link to a folder of the user's.
    const target = join(outside, "bashrc");
    writeFileSync(target, "the user's own file\n");
    symlinkSync(target, join(dest, "report.md"));
    mkdirSync(join(outside, "elsewhere"));
    symlinkSync(join(outside, "elsewhere"), join(dest, "data"));
    const r = await cli(["output", goalId, "--to", dest]);
    expect(r.code).toBe(0);
    expect(readFileSync(target, "utf8")).toBe("the user's own file\n");
    expect(lstatSync(join(dest, "report.md")).isFile()).toBe(true);
    expect(readFileSync(join(dest, "report.md"), "utf8")).toBe("# report\n");
    expect(lstatSync(join(dest, "data")).isSymbolicLink()).toBe(true);
    expect(() => statSync(join(outside, "elsewhere", "deep"))).toThrow(/ENOENT/);
    expect(r.err).toContain(
      "skipped data: a symbolic link in the destination where a folder would go; left alone",
    );
  });

  it("hands a staging copy to another user (--owner), then merges it with --from, as run-aido.sh does", async () => {
    const outside = scratch("aido-outside-");
    const goalId = await hostileOutput(outside);
    const stage = join(scratch("aido-stage-"), "output.1");
    const staged = await cli(["output", goalId, "--to", stage, "--owner", "4242:4343", "--json"]);
    expect(staged.code).toBe(0);
    expect(JSON.parse(staged.text())).toMatchObject({ to: stage, files: 3 });
    for (const p of [stage, join(stage, "data"), join(stage, "tool")]) {
      expect([lstatSync(p).uid, lstatSync(p).gid]).toEqual([4242, 4343]);
    }
    const dest = join(scratch("aido-user-"), "output");
    const merged = await cli(["output", "--from", stage, "--to", dest]);
    expect(merged.code).toBe(0);
    expect(merged.err).toEqual([]);
    expect(mode(join(dest, "tool"))).toBe("755");
    expect(readFileSync(join(dest, "data", "deep", "rows.csv"), "utf8")).toBe("a,b\n");
    // Nothing to copy: nothing is created.
    const none = await cli(["output", "--from", join(stage, "missing"), "--to", join(stage, "never")]);
    expect(none.text()).toBe("no deliverables to copy");
    expect(() => lstatSync(join(stage, "never"))).toThrow(/ENOENT/);
  });

  it("copies files and folders whose names are not UTF-8, as named, and names what it skips with \\xNN", async () => {
    // Names were read as strings: a byte that is not UTF-8 became U+FFFD, the name reached
    // nothing, and the file (or the folder and all in it) was not copied.
    await suite.start();
    const src = scratch("aido-goal-output-");
    const at = (dir: string, ...names: Buffer[]) =>
      Buffer.concat([Buffer.from(dir), ...names.flatMap((n) => [Buffer.from("/"), n])]);
    const bad = Buffer.from("bad\xff.txt", "latin1");
    const folder = Buffer.from("d\xfe", "latin1");
    writeFileSync(at(src, bad), "one\n");
    mkdirSync(at(src, folder));
    writeFileSync(at(src, folder, bad), "two\n");
    symlinkSync("/etc/hostname", at(src, folder, Buffer.from("ln\xfd\x1b[2K", "latin1")));
    const dest = join(scratch("aido-user-"), "output");
    const r = await cli(["output", "--from", src, "--to", dest]);
    expect(r.code, r.err.join("\n")).toBe(0);
    expect(r.text()).toMatch(/^copied 2 files \(8 bytes\) to /);
    expect(readFileSync(at(dest, bad), "utf8")).toBe("one\n");
    expect(readFileSync(at(dest, folder, bad), "utf8")).toBe("two\n");
    expect(mode(at(dest, folder))).toBe("755");
    expect(r.err).toEqual([
      "skipped d\\xfe/ln\\xfd\\x1b[2K: a symbolic link: only regular files and folders are copied",
    ]);
  });
});
