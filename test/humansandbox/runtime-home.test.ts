// The runtime's own home (AIDO_HOME: its private key, database, audit head, tokens) never
// reaches a sandbox through its inputs, as the project's evidence store does not: an input
// at or under it is refused, one holding it has it covered, and a key folder kept elsewhere
// by a link is kept out by its real path. Read, the key forges capability tokens and audit
// checkpoints. Unit checks of each spelling, then tasks that look for the key's bytes from
// inside a real container.

import { randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { containerNameOf, LABEL, projectLabelOf } from "../../src/humansandbox/container.js";
import { collectOutputs } from "../../src/humansandbox/outputs.js";
import { resolveInputs } from "../../src/humansandbox/paths.js";
import { KEY_FILE } from "../../src/security/keys.js";
import { makeProject, type Project } from "./fixture.js";

/** A runtime home at `home`, laid out as config.ts lays it out. */
function runtimeAt(home: string) {
  return {
    home,
    keysDir: join(home, "keys"),
    dbPath: join(home, "aido.db"),
    auditHeadPath: join(home, "audit.head"),
  };
}

const MARKER = `KEY-${randomBytes(8).toString("hex")}`;
const made: string[] = [];

/** box/home (the runtime's home, with its key), and a project elsewhere with a data folder. */
function layout() {
  const box = mkdtempSync(join(tmpdir(), "aido-hs-rthome-"));
  const project = mkdtempSync(join(tmpdir(), "aido-hs-rtproject-"));
  made.push(box, project);
  const home = join(box, "home");
  mkdirSync(join(home, "keys"), { recursive: true, mode: 0o700 });
  writeFileSync(join(home, "keys", KEY_FILE), `${MARKER}\n`, { mode: 0o600 });
  mkdirSync(join(project, "data"), { recursive: true });
  writeFileSync(join(project, "data", "a.csv"), "a");
  return { box, home, project };
}

afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

describe("inputs and the runtime's home", () => {
  it("refuses an input at or under AIDO_HOME, by its path, a link, or a wildcard, naming the input", () => {
    const { project } = layout();
    // The project holds the home (a person's home folder as the project, AIDO_HOME in it).
    const home = join(project, "state", "aido");
    mkdirSync(join(home, "keys"), { recursive: true });
    symlinkSync("../state/aido/keys", join(project, "data", "k"));
    symlinkSync("state/aido", join(project, "h"));
    const rt = runtimeAt(home);
    for (const pattern of [home, join(home, "keys"), `${home}/*`, "h", "data/k", "data/*", "state/*"])
      expect(() => resolveInputs(project, [pattern], rt), pattern).toThrow(
        new RegExp(`input "${pattern.replace(/[*.]/g, "\\$&")}" mounts .*the runtime's home \\(AIDO_HOME`),
      );
  });

  it("refuses a '..' segment, whatever it would reach", () => {
    const { box, home, project } = layout();
    const rt = runtimeAt(home);
    for (const pattern of [`${home}/keys/..`, `${box}/project/../home`, "data/../../home", "/tmp/.."])
      expect(() => resolveInputs(project, [pattern], rt), pattern).toThrow(/has a "\.\." segment/);
  });

  it("covers AIDO_HOME in an input that holds it; read-write, only one folder down", () => {
    const { box, home, project } = layout();
    const rt = runtimeAt(home);
    const [ro] = resolveInputs(project, [box], rt);
    expect(ro?.hidden).toEqual([`/inputs/${basename(box)}/home`]);
    expect(resolveInputs(project, [box], rt, true)[0]?.hidden).toEqual([`/inputs/${basename(box)}/home`]);
    const deeper = runtimeAt(join(home, "inner"));
    mkdirSync(deeper.home);
    expect(() => resolveInputs(project, [box], deeper, true)).toThrow(
      /read-write .*the runtime's home .* more than one folder below it/,
    );
  });

  it("keeps out a key folder that is a link out of the home, by its real path", () => {
    const { box, home, project } = layout();
    const keys = join(box, "vault");
    mkdirSync(keys);
    writeFileSync(join(keys, KEY_FILE), MARKER);
    rmSync(join(home, "keys"), { recursive: true });
    symlinkSync(keys, join(home, "keys"));
    const rt = runtimeAt(home);
    expect(() => resolveInputs(project, [keys], rt)).toThrow(/which is the runtime's key folder/);
    expect(() => resolveInputs(project, [join(home, "keys")], rt)).toThrow(/the runtime's key folder/);
    expect(resolveInputs(project, [box], rt)[0]?.hidden?.sort()).toEqual(
      [`/inputs/${basename(box)}/home`, `/inputs/${basename(box)}/vault`].sort(),
    );
  });

  it("refuses a writable input holding a link on the home's way: a task could re-point it", () => {
    const { box, home, project } = layout();
    symlinkSync(home, join(box, "via"));
    const rt = runtimeAt(join(box, "via"));
    expect(resolveInputs(project, [box], rt)[0]?.hidden).toEqual([`/inputs/${basename(box)}/home`]);
    expect(() => resolveInputs(project, [box], rt, true)).toThrow(
      /holds the link .*via to the runtime's home/,
    );
  });

  it("refuses every input of a project that lies in AIDO_HOME", () => {
    const { home } = layout();
    const inside = join(home, "goals", "g1");
    mkdirSync(join(inside, "data"), { recursive: true });
    expect(() => resolveInputs(inside, ["data"], runtimeAt(home))).toThrow(
      /input "data" mounts .*the runtime's home/,
    );
  });

  it("refuses the host's /proc, by its path, a path in it, or a link to it: /proc/<pid>/root is around every cover", () => {
    const { box, home, project } = layout();
    symlinkSync("/proc/self", join(box, "me"));
    const rt = runtimeAt(home);
    for (const pattern of [
      "/proc",
      "/proc/self",
      `/proc/${process.pid}/environ`,
      "/proc/sys",
      join(box, "me"),
    ])
      expect(() => resolveInputs(project, [pattern], rt), pattern).toThrow(
        /mounts \/proc.*, which is the host's processes \(procfs/,
      );
    // /proc/<pid>/root is "/": mounted with /proc (and the home) covered, as the store is.
    const [root] = resolveInputs(project, [`/proc/${process.pid}/root`], rt);
    expect(root?.source).toBe("/");
    expect(root?.hidden).toContain("/inputs/root/proc");
    expect(root?.hidden).toContain(`/inputs/root${home}`);
  });

  it("never lets an output replace its database or audit head, a link from the home puts in the project", () => {
    const { box, home, project } = layout();
    mkdirSync(join(project, "state"));
    for (const f of ["aido.db", "aido.db-wal", "audit.head"]) {
      writeFileSync(join(project, "state", f), `the runtime's ${f}`);
      symlinkSync(join(project, "state", f), join(home, f));
    }
    const output = join(box, "output");
    mkdirSync(join(output, "state"), { recursive: true });
    for (const f of ["aido.db", "aido.db-wal", "audit.head", "fine.txt"])
      writeFileSync(join(output, "state", f), "forged by the task");
    const root = join(box, "evidence");
    mkdirSync(root);
    const r = collectOutputs(output, project, ["state/**"], {
      id: "0123456789ab",
      root,
      runtime: runtimeAt(home),
      owner: undefined,
    });
    expect(r.collected).toEqual(["state/fine.txt"]);
    expect(r.skipped.map((s) => [s.path, s.reason])).toEqual(
      ["aido.db", "aido.db-wal", "audit.head"].map((f) => [
        `state/${f}`,
        expect.stringMatching(/runtime's database or audit head .* never replaced/),
      ]),
    );
    for (const f of ["aido.db", "aido.db-wal", "audit.head"])
      expect(readFileSync(join(home, f), "utf8")).toBe(`the runtime's ${f}`);
  });

  it("makes a home not made yet when an input holds where it goes, to cover it", () => {
    const { box, project } = layout();
    const rt = runtimeAt(join(box, "later"));
    expect(resolveInputs(project, [box], rt)[0]?.hidden).toEqual([`/inputs/${basename(box)}/later`]);
  });
});

describe("a task looking for the runtime's key from inside the sandbox", () => {
  // The project holds the runtime's home (state/aido, as ~/.aido in a home-folder project),
  // given as AIDO_HOME by a relative path with `..` (resolved from the project, as aido does).
  let p: Project;
  let env: Record<string, string>;
  let home: string;
  const docker = new Docker();
  beforeAll(async () => {
    p = await makeProject();
    home = join(p.dir, "state", "aido");
    mkdirSync(join(home, "keys"), { recursive: true, mode: 0o700 });
    mkdirSync(join(p.dir, "state", "elsewhere"));
    writeFileSync(join(home, "keys", KEY_FILE), `${MARKER}\n`, { mode: 0o644 });
    // As for a person who is not root, whose task runs as the home's owner: all of it readable.
    chmodSync(p.dir, 0o755);
    if (process.getuid?.() === 0)
      for (const f of [join(home, ".."), home, join(home, "keys"), join(home, "keys", KEY_FILE)])
        chownSync(f, 1000, 1000);
    env = { AIDO_HOME: "state/elsewhere/../aido" };
    p.write("data/users.csv", "id\n1\n");
    symlinkSync("state/aido/keys", join(p.dir, "k"));
  }, 120_000);
  afterAll(async () => {
    await p?.cleanup();
  });

  const look = `grep -rs ${MARKER.slice(0, 4)}- /inputs && echo FOUND; cat /inputs/state/aido/keys/* /inputs/*/state/aido/keys/* 2>/dev/null; echo done`;

  for (const [what, input, flags] of [
    ["the folder holding AIDO_HOME", "state", []],
    ["the project by its absolute path", "PROJECT", []],
    ["the folder holding AIDO_HOME, read-write", "state", ["--dangerous-allow-mutations", "--yes"]],
  ] as const) {
    it(`reads none of its bytes through ${what}`, async () => {
      p.write("sb.yaml", `runtime: python:3.11\ninputs: ["${input === "PROJECT" ? p.dir : input}"]\n`);
      const up = await p.aidoWith(env, "sandbox", "up", "-f", "sb.yaml", ...flags);
      expect(up.code, up.err.join("\n")).toBe(0);
      const id = up.out[0] as string;
      const run = await p.aidoWith(env, "run", "--sandbox", id, "sh", "-c", look);
      expect(run.code, run.err.join("\n")).toBe(0);
      const out = run.out.join("\n");
      expect(out).toContain("done");
      expect(out).not.toContain(MARKER);
      expect(out).not.toContain("FOUND");
      const info = await docker.getContainer(containerNameOf(id)).inspect();
      const covers = (info.HostConfig.Mounts ?? []).filter((m) => m.Target.endsWith("/aido"));
      expect(covers.map((m) => [m.Type, m.ReadOnly])).toEqual([["tmpfs", true]]);
      expect((await p.aidoWith(env, "sandbox", "destroy", id)).code).toBe(0);
    }, 120_000);
  }

  for (const [what, pattern] of [
    ["its absolute path", "HOME"],
    ["its key folder's path", "KEYS"],
    ["a link to its key folder in the project", "k"],
    ["a wildcard over the project (the link in it)", "*"],
    ["a path through it", "state/aido/keys"],
  ] as const) {
    it(`refuses \`up\` with an input of ${what}, and makes no container`, async () => {
      const input = { HOME: home, KEYS: join(home, "keys") }[pattern as string] ?? pattern;
      p.write("bad.yaml", `runtime: python:3.11\ninputs: ["${input}"]\n`);
      const up = await p.aidoWith(env, "sandbox", "up", "-f", "bad.yaml");
      expect(up.code).not.toBe(0);
      expect(up.err.join("\n")).toMatch(/input ".*" mounts .*the runtime's home \(AIDO_HOME/);
      const left = await docker.listContainers({
        all: true,
        filters: { label: [`${LABEL.project}=${projectLabelOf(p.dir)}`] },
      });
      expect(left).toEqual([]);
    }, 60_000);
  }

  it("refuses `up` with the project read-write: AIDO_HOME is two folders below it", async () => {
    p.write("rw.yaml", `runtime: python:3.11\ninputs: ["${p.dir}"]\n`);
    const up = await p.aidoWith(
      env,
      "sandbox",
      "up",
      "-f",
      "rw.yaml",
      "--dangerous-allow-mutations",
      "--yes",
    );
    expect(up.code).not.toBe(0);
    expect(up.err.join("\n")).toMatch(/read-write .*the runtime's home .* more than one folder below it/);
  }, 60_000);

  it("refuses `up` with a `..` path to it (a guard: the sandbox file refuses `..`)", async () => {
    p.write("dots.yaml", `runtime: python:3.11\ninputs: ["${p.dir}/state/elsewhere/../aido"]\n`);
    const up = await p.aidoWith(env, "sandbox", "up", "-f", "dots.yaml");
    expect(up.code).not.toBe(0);
    expect(up.err.join("\n")).toMatch(/must not contain "\.\."/);
  }, 60_000);

  it("never writes an output into it: a task's state/aido/keys is not collected", async () => {
    p.write("out.yaml", 'runtime: python:3.11\noutputs: ["state/**"]\n');
    const up = await p.aidoWith(env, "sandbox", "up", "-f", "out.yaml");
    expect(up.code, up.err.join("\n")).toBe(0);
    const id = up.out[0] as string;
    const run = await p.aidoWith(
      env,
      "run",
      "--json",
      "sh",
      "-c",
      `mkdir -p /output/state/aido/keys && echo forged > /output/state/aido/keys/${KEY_FILE} && echo ok > /output/state/fine.txt`,
    );
    expect(run.code, run.err.join("\n")).toBe(0);
    const s = run.json<{
      outputs: { collected: string[]; skipped: Array<{ path: string; reason: string }> };
    }>();
    expect(s.outputs.collected).toEqual(["state/fine.txt"]);
    expect(s.outputs.skipped).toEqual([
      {
        path: `state/aido/keys/${KEY_FILE}`,
        reason: expect.stringMatching(/runtime's home is never written/),
      },
    ]);
    expect(p.read(`state/aido/keys/${KEY_FILE}`)).toBe(`${MARKER}\n`);
    expect((await p.aidoWith(env, "sandbox", "destroy", id)).code).toBe(0);
  }, 120_000);
});
