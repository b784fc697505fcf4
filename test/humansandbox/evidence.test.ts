// The project's evidence store (.aido: every sandbox's records, events.log, run streams)
// never reaches a sandbox through its inputs: a wildcard never matches it, an input at or
// under it is refused, and an input holding it has it covered by an empty read-only mount
// the task can neither write, move nor undo. Unit checks of each spelling, then a task that
// attacks the store from inside a real container.

import { execFileSync } from "node:child_process";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { containerNameOf } from "../../src/humansandbox/container.js";
import { resolveInputs } from "../../src/humansandbox/paths.js";
import { makeProject, type Project } from "./fixture.js";

/** A runtime home no input here comes near: these tests are about the project's store. */
const ELSEWHERE = {
  home: "/nonexistent-aido-home",
  keysDir: "/nonexistent-aido-home/keys",
  dbPath: "/nonexistent-aido-home/aido.db",
  auditHeadPath: "/nonexistent-aido-home/audit.head",
};

function project(): string {
  const dir = mkdtempSync(join(tmpdir(), "aido-hs-evidence-"));
  mkdirSync(join(dir, "data"));
  writeFileSync(join(dir, "data", "a.csv"), "a");
  mkdirSync(join(dir, ".aido", "sandboxes", "0123456789ab"), { recursive: true });
  return dir;
}

describe("inputs and the evidence store", () => {
  const made: string[] = [];
  const fresh = () => {
    const d = project();
    made.push(d);
    return d;
  };
  afterAll(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });

  it("never lets a wildcard match .aido: `*` and `**` mount the rest of the project", () => {
    const dir = fresh();
    for (const pattern of ["*", "**", "*/**", ".*"]) {
      const targets = (() => {
        try {
          return resolveInputs(dir, [pattern], ELSEWHERE).map((m) => m.target);
        } catch (e) {
          return [(e as Error).message];
        }
      })();
      expect(targets.join(), pattern).not.toMatch(/\/inputs\/\.aido/);
    }
    expect(resolveInputs(dir, ["*"], ELSEWHERE).map((m) => m.target)).toEqual(["/inputs/data"]);
    expect(() => resolveInputs(dir, [".*"], ELSEWHERE)).toThrow(
      /matches nothing .*never matches the evidence store/,
    );
  });

  it("refuses an input that names .aido or lies under it, naming the input", () => {
    const dir = fresh();
    for (const pattern of [
      ".aido",
      ".aido/**",
      ".aido/sandboxes",
      `${dir}/.aido`,
      `${dir}/.aido/sandboxes/*`,
    ])
      expect(() => resolveInputs(dir, [pattern], ELSEWHERE), pattern).toThrow(
        new RegExp(`input "${pattern.replace(/[*.]/g, "\\$&")}" mounts .* the project's evidence store`),
      );
  });

  it.runIf(process.getuid?.() === 0)(
    "knows the store by its folder, not its name: the project reached through a second mount",
    () => {
      // The guard compared paths: the same folder under another name (a second mount of it
      // here; a name of another case on a filesystem that ignores case, as a project on
      // /mnt/c under WSL) was neither refused nor covered: every sandbox's records mounted.
      const dir = fresh();
      const alias = mkdtempSync(join(tmpdir(), "aido-hs-alias-"));
      execFileSync("mount", ["--bind", dir, alias]);
      try {
        for (const pattern of [`${alias}/.aido`, `${alias}/.aido/sandboxes`])
          expect(() => resolveInputs(dir, [pattern], ELSEWHERE), pattern).toThrow(/evidence store/);
        const target = `/inputs/${basename(alias)}`;
        expect(resolveInputs(dir, [alias], ELSEWHERE)).toEqual([
          { pattern: alias, source: alias, target, hidden: [`${target}/.aido`] },
        ]);
      } finally {
        execFileSync("umount", [alias]);
        rmSync(alias, { recursive: true, force: true });
      }
    },
  );

  it("refuses a link to .aido or into it, matched by name or by a wildcard", () => {
    const dir = fresh();
    symlinkSync(".aido", join(dir, "ev"));
    symlinkSync(join(dir, ".aido", "sandboxes"), join(dir, "data", "runs"));
    expect(() => resolveInputs(dir, ["ev"], ELSEWHERE)).toThrow(/input "ev" mounts .*evidence store/);
    expect(() => resolveInputs(dir, ["*"], ELSEWHERE)).toThrow(/input "\*" mounts .*evidence store/);
    expect(() => resolveInputs(dir, ["data/*"], ELSEWHERE)).toThrow(
      /input "data\/\*" mounts .*evidence store/,
    );
  });

  it("covers .aido inside an input that holds it: the project by its path, or a link to it", () => {
    const dir = fresh();
    symlinkSync(".", join(dir, "self"));
    const [abs] = resolveInputs(dir, [dir], ELSEWHERE);
    expect(abs?.hidden).toEqual([`/inputs/${basename(dir)}/.aido`]);
    const [self] = resolveInputs(dir, ["self"], ELSEWHERE);
    expect(self).toMatchObject({ target: "/inputs/self", hidden: ["/inputs/self/.aido"] });
    // Read-write, one folder down: the input's root and .aido are both mount points.
    expect(resolveInputs(dir, [dir], ELSEWHERE, true)[0]?.hidden).toEqual([`/inputs/${basename(dir)}/.aido`]);
  });

  it("refuses a writable input with .aido deeper than its child: the task could move what is between", () => {
    const dir = fresh();
    const parent = join(dir, "..");
    const [ro] = resolveInputs(dir, [parent], ELSEWHERE);
    expect(ro?.hidden).toEqual([`/inputs/${basename(parent)}/${basename(dir)}/.aido`]);
    expect(() => resolveInputs(dir, [parent], ELSEWHERE, true)).toThrow(
      /read-write .* more than one folder below it/,
    );
  });

  it("keeps out the real folder of a .aido that is a link, and refuses the link itself writable", () => {
    const dir = fresh();
    const store = mkdtempSync(join(tmpdir(), "aido-hs-store-"));
    made.push(store);
    rmSync(join(dir, ".aido"), { recursive: true });
    mkdirSync(join(store, "sandboxes"));
    symlinkSync(store, join(dir, ".aido"));
    expect(() => resolveInputs(dir, [".aido"], ELSEWHERE)).toThrow(
      /input "\.aido" .*(evidence store|outside the project)/,
    );
    expect(() => resolveInputs(dir, [store], ELSEWHERE)).toThrow(
      new RegExp(`input "${store}" mounts .*evidence store`),
    );
    const [holder] = resolveInputs(dir, [join(store, "..")], ELSEWHERE);
    expect(holder?.hidden).toEqual([`/inputs/${basename(join(store, ".."))}/${basename(store)}`]);
    expect(resolveInputs(dir, [dir], ELSEWHERE)[0]?.hidden).toBeUndefined(); // the link dangles in there
    expect(() => resolveInputs(dir, [dir], ELSEWHERE, true)).toThrow(/holds the link .*\.aido .*re-point it/);
  });
});

describe("a task attacking the evidence store from inside the sandbox", () => {
  let p: Project;
  const docker = new Docker();
  beforeAll(async () => {
    p = await makeProject();
  }, 120_000);
  afterAll(async () => {
    await p?.cleanup();
  });

  const attack = [
    "for d in /inputs/.aido /inputs/*/.aido; do",
    '  [ -e "$d" ] || continue',
    '  echo "seen $d: $(ls -A "$d" | tr "\\n" " ")"',
    '  cat "$d"/sandboxes/*/sandbox.json 2>/dev/null && echo READ',
    '  echo forged > "$d/sandboxes/forged" 2>/dev/null && echo WROTE',
    '  mv "$d" "$d.moved" 2>/dev/null && echo MOVED',
    '  rm -rf "$d"/* 2>/dev/null; umount "$d" 2>/dev/null && echo UNMOUNTED',
    "done; echo done",
  ].join("\n");

  for (const [what, inputs] of [
    ['`inputs: ["*"]`', '["*"]'],
    ["the project by its absolute path", "ABS"],
  ] as const) {
    it(`reads, writes, moves and unmounts nothing of it with ${what}, inputs read-write`, async () => {
      p.write("data/users.csv", "id\n1\n");
      mkdirSync(join(p.dir, ".aido", "sandboxes"), { recursive: true }); // as after any earlier sandbox
      p.write("sb.yaml", `runtime: python:3.11\ninputs: ${inputs === "ABS" ? `["${p.dir}"]` : inputs}\n`);
      const up = await p.aido("sandbox", "up", "-f", "sb.yaml", "--dangerous-allow-mutations", "--yes");
      expect(up.code, up.err.join("\n")).toBe(0);
      const id = up.out[0] as string;
      const record = join(p.dir, ".aido", "sandboxes", id, "sandbox.json");
      // As for a person who is not root, whose task runs as the store's owner: all of it writable.
      for (const d of [p.dir, join(p.dir, ".aido"), join(p.dir, ".aido", "sandboxes"), join(record, "..")])
        chmodSync(d, 0o777);
      chmodSync(record, 0o666);
      const before = readFileSync(record, "utf8");
      const run = await p.aido("run", "--sandbox", id, "sh", "-c", attack);
      expect(run.code, run.err.join("\n")).toBe(0);
      const out = run.out.join("\n");
      expect(out).toContain("done");
      expect(out).not.toMatch(/READ|WROTE|MOVED|UNMOUNTED|sandboxes/);
      if (inputs === "ABS") expect(out).toMatch(/^seen \/inputs\/[^/]+\/\.aido:\s*$/m);
      expect(readFileSync(record, "utf8")).toBe(before);
      const info = await docker.getContainer(containerNameOf(id)).inspect();
      const hidden = (info.HostConfig.Mounts ?? []).filter((m) => m.Target.endsWith("/.aido"));
      expect(hidden.map((m) => [m.Type, m.ReadOnly])).toEqual(inputs === "ABS" ? [["tmpfs", true]] : []);
      expect((await p.aido("sandbox", "destroy", id)).code).toBe(0);
    }, 120_000);
  }

  it("never mounts the store at a restart through an input folder a task replaced by a link", async () => {
    // A mount's source is bound by its path at each start: a task holding the project
    // read-write (the project by its path) and also given data/ replaced data/ with a link
    // to .aido; when the container was started again (a reboot, a stopped container that
    // `aido run` starts), /inputs/data was every sandbox's records and streams, read-write.
    p.write("data/users.csv", "id\n1\n");
    mkdirSync(join(p.dir, ".aido", "sandboxes"), { recursive: true });
    p.write("swap.yaml", `runtime: python:3.11\ninputs: ["${p.dir}", data]\n`);
    const up = await p.aido("sandbox", "up", "-f", "swap.yaml", "--dangerous-allow-mutations", "--yes");
    expect(up.code, up.err.join("\n")).toBe(0);
    const id = up.out[0] as string;
    chmodSync(p.dir, 0o777); // the task runs as the project's owner (a person not root)
    const whole = `/inputs/${basename(p.dir)}`;
    const swap = await p.aido(
      "run",
      "sh",
      "-c",
      `mv ${whole}/data ${whole}/data.old && ln -s .aido ${whole}/data`,
    );
    expect(swap.code, swap.err.join("\n")).toBe(0);
    await docker.getContainer(containerNameOf(id)).stop({ t: 1 });
    const look = await p.aido(
      "run",
      "sh",
      "-c",
      "ls -A /inputs/data; cat /inputs/data/sandboxes/*/sandbox.json && echo READ",
    );
    expect(look.out.join("\n")).not.toMatch(/sandboxes|READ/);
    expect(look.code).not.toBe(0);
    expect(look.err.join("\n")).toMatch(/input "data" .*is now a link to .*\.aido/);
    rmSync(join(p.dir, "data"));
    renameSync(join(p.dir, "data.old"), join(p.dir, "data"));
    expect((await p.aido("sandbox", "destroy", id)).code).toBe(0);
  }, 120_000);

  it("never lets an output replace the evidence: a task's /output/.aido is not collected", async () => {
    // Outputs are copied to their paths in the project: with `outputs: ["*"]` a task that
    // wrote /output/.aido/sandboxes/<id>/events.log replaced its own sandbox's events.log.
    p.write("out.yaml", 'runtime: python:3.11\noutputs: ["*"]\n');
    const up = await p.aido("sandbox", "up", "-f", "out.yaml");
    expect(up.code, up.err.join("\n")).toBe(0);
    const id = up.out[0] as string;
    const forged = `.aido/sandboxes/${id}/events.log`;
    const run = await p.aido(
      "run",
      "--json",
      "sh",
      "-c",
      `mkdir -p /output/.aido/sandboxes/${id} && echo forged > /output/${forged} && echo ok > /output/fine.txt`,
    );
    expect(run.code, run.err.join("\n")).toBe(0);
    const s = run.json<{
      outputs: { collected: string[]; skipped: Array<{ path: string; reason: string }> };
    }>();
    expect(s.outputs.collected).toEqual(["fine.txt"]);
    expect(s.outputs.skipped).toEqual([
      { path: forged, reason: expect.stringMatching(/evidence store .* never written by outputs/) },
    ]);
    expect(p.read(forged).split("\n")).not.toContain("forged");
    expect(p.read(forged)).toContain('"event":"created"');
    expect((await p.aido("sandbox", "destroy", id)).code).toBe(0);
  }, 120_000);

  it("refuses `up` with an input under .aido, naming it, and makes no sandbox", async () => {
    p.write("bad.yaml", 'runtime: python:3.11\ninputs: [".aido/**"]\n');
    const up = await p.aido("sandbox", "up", "-f", "bad.yaml");
    expect(up.code).not.toBe(0);
    expect(up.err.join("\n")).toMatch(/input "\.aido\/\*\*" mounts .*evidence store/);
  }, 60_000);

  it("never lets an output reach the evidence by its real folder, when .aido is a link into the project", async () => {
    // Root's own project, only root can write (the tests above made it 0777 as a person's):
    // its .aido may be a link, root's own store elsewhere. In a folder others can write it
    // is refused as one (project.ts followStore), anyone could have put it there.
    chmodSync(p.dir, 0o755);
    mkdirSync(join(p.dir, ".aido", "sandboxes"), { recursive: true });
    renameSync(join(p.dir, ".aido"), join(p.dir, "store"));
    symlinkSync("store", join(p.dir, ".aido"));
    try {
      p.write("real.yaml", "runtime: python:3.11\noutputs: [store/]\n");
      const up = await p.aido("sandbox", "up", "-f", "real.yaml");
      expect(up.code, up.err.join("\n")).toBe(0);
      const id = up.out[0] as string;
      const forged = `store/sandboxes/${id}/events.log`;
      const run = await p.aido(
        "run",
        "--json",
        "sh",
        "-c",
        `mkdir -p /output/store/sandboxes/${id} && echo forged > /output/${forged}`,
      );
      expect(run.code, run.err.join("\n")).toBe(0);
      const s = run.json<{
        outputs: { collected: string[]; skipped: Array<{ path: string; reason: string }> };
      }>();
      expect(s.outputs.collected).toEqual([]);
      expect(s.outputs.skipped).toEqual([{ path: forged, reason: expect.stringMatching(/evidence store/) }]);
      expect(p.read(forged).split("\n")).not.toContain("forged");
      expect((await p.aido("sandbox", "destroy", id)).code).toBe(0);
    } finally {
      rmSync(join(p.dir, ".aido"));
      renameSync(join(p.dir, "store"), join(p.dir, ".aido"));
    }
  }, 120_000);
});
