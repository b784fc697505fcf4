// How an agent's globs become Landlock rules (executor/confinement.ts), on the host in a
// temp folder: never wider than granted. A folder prefix is one hierarchy rule; deny
// globs are subtracted by giving rules to the siblings along the path and none to the
// ancestors; a pattern that is not a prefix gets rules for what exists and matches now;
// a write hierarchy rule never spans a folder whose reads are mixed; symlinks get nothing;
// the walk is bounded. Also grep's read view (executor/grep.ts).

import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  confinementArgs,
  expandGlobs,
  grantsCoverMounts,
  type Rule,
  systemRules,
} from "../../src/sandbox/executor/confinement.js";
import { grepWork, mayEnter, mayReadFile } from "../../src/sandbox/executor/grep.js";
import type { Confinement } from "../../src/sandbox/types.js";

let root: string;
let w: string;

const files = [
  "a.txt",
  "notes.md",
  "secrets/k.key",
  "secrets/deep/s.txt",
  "pub/x.txt",
  "pub/doc.md",
  "pub/sub/x.txt",
  "p1/src/main.c",
  "p1/src/x.txt",
  "p1/lib/x.txt",
  "p2/src/y.c",
  "p2/id.key",
];

beforeAll(() => {
  root = realpathSync(mkdtempSync(join(tmpdir(), "aido-confine-")));
  w = join(root, "w");
  for (const f of files) {
    mkdirSync(join(w, f, ".."), { recursive: true });
    writeFileSync(join(w, f), `${f}\n`);
  }
  mkdirSync(join(w, "empty"));
  symlinkSync(join(w, "secrets/k.key"), join(w, "link.md"));
  symlinkSync(w, join(root, "lnk"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const sorted = (rules: Rule[]) => rules.map((r) => `${r.kind} ${r.path.slice(w.length) || "/"}`).sort();

describe("expandGlobs", () => {
  it("gives a folder prefix glob one hierarchy rule", () => {
    expect(sorted(expandGlobs([`${w}/**`], [], "read"))).toEqual(["read /"]);
    expect(sorted(expandGlobs([`${w}/pub/**`], [], "write"))).toEqual(["write /pub"]);
  });

  it("subtracts a deny glob: a rule per sibling along the path, none on the ancestors", () => {
    expect(sorted(expandGlobs([`${w}/**`], [`${w}/secrets/**`], "read"))).toEqual([
      "read /empty",
      "read /p1",
      "read /p2",
      "read /pub",
      "read-file /a.txt",
      "read-file /notes.md",
    ]);
  });

  it("never gives a folder a hierarchy rule when a deny pattern could match below it", () => {
    // Any folder may hold (or later get) a .key file: every other file gets its own rule.
    const rules = sorted(expandGlobs([`${w}/**`], [`${w}/**/*.key`], "read"));
    expect(rules.every((r) => r.startsWith("read-file "))).toBe(true);
    expect(rules).toHaveLength(files.length - 2);
    expect(rules.filter((r) => r.endsWith(".key"))).toEqual([]);
  });

  it("gives an exact folder grant nothing: a rule would open its whole subtree", () => {
    expect(expandGlobs([w, `${w}/pub`], [], "read")).toEqual([]);
    expect(sorted(expandGlobs([`${w}/a.txt`], [], "read"))).toEqual(["read-file /a.txt"]);
  });

  it("gives a file pattern rules for the files that match now, and no folder rule", () => {
    expect(sorted(expandGlobs([`${w}/*.md`], [], "write"))).toEqual(["write-file /notes.md"]);
    expect(sorted(expandGlobs([`${w}/**/x.txt`], [], "read"))).toEqual([
      "read-file /p1/lib/x.txt",
      "read-file /p1/src/x.txt",
      "read-file /pub/sub/x.txt",
      "read-file /pub/x.txt",
    ]);
  });

  it("gives a hierarchy rule to each existing folder a glob covers entirely", () => {
    expect(sorted(expandGlobs([`${w}/*/src/**`], [], "read"))).toEqual(["read /p1/src", "read /p2/src"]);
    // /w/* matches the folder p1 but not what is inside it: no hierarchy rule there.
    expect(sorted(expandGlobs([`${w}/*`], [], "read"))).toEqual(["read-file /a.txt", "read-file /notes.md"]);
  });

  it("gives symlinks nothing, and a glob whose fixed part runs through one nothing at all", () => {
    expect(sorted(expandGlobs([`${w}/*.md`], [], "read"))).not.toContain("read-file /link.md");
    expect(expandGlobs([`${root}/lnk/**`, `${root}/lnk/a.txt`], [], "read")).toEqual([]);
  });

  it("refuses past its bounds with an error that says what to grant instead", () => {
    expect(() =>
      expandGlobs([`${w}/**/*.txt`], [], "read", { maxRules: 2, maxEntries: 1000, maxMs: 5000 }),
    ).toThrow(/expand to more than 2 rules .*grant whole folders \(\/dir\/\*\*\)/);
    expect(() =>
      expandGlobs([`${w}/**/*.txt`], [], "read", { maxRules: 99, maxEntries: 5, maxMs: 5000 }),
    ).toThrow(/more than 5 entries/);
  });
});

describe("write rules against the reads (a write hierarchy only over uniform reads)", () => {
  const write = (reads: string[], denyRead: string[] = []) =>
    sorted(expandGlobs([`${w}/**`], [], "write", undefined, { globs: reads, deny: denyRead }));

  it("keeps one hierarchy rule where the reads are the same for every name below", () => {
    expect(write([`${w}/**`])).toEqual(["write /"]);
    expect(write([])).toEqual(["write /"]);
    expect(write([`/elsewhere/**`])).toEqual(["write /"]);
  });

  it("carves a folder read by a file pattern out of the hierarchy: file rules there, siblings keep theirs", () => {
    expect(write([`${w}/pub/*.md`])).toEqual([
      "write /empty",
      "write /p1",
      "write /p2",
      "write /pub/sub",
      "write /secrets",
      "write-file /a.txt",
      "write-file /notes.md",
      "write-file /pub/doc.md",
      "write-file /pub/x.txt",
    ]);
  });

  it("carves out the ancestors of a folder read grant and of a read deny, not the folders themselves", () => {
    expect(write([`${w}/p1/src/**`])).toContain("write /p1/src");
    expect(write([`${w}/p1/src/**`])).not.toContain("write /p1");
    // Read everything but secrets/: secrets/ (nothing readable) and the rest (all readable) are uniform.
    const denied = write([`${w}/**`], [`${w}/secrets/**`]);
    expect(denied).toContain("write /secrets");
    expect(denied).toContain("write /pub");
    expect(denied).not.toContain("write /");
    expect(denied).toContain("write-file /a.txt");
  });

  it("gives no folder a hierarchy rule when a read deny pattern could match anywhere", () => {
    const rules = write([`${w}/**`], [`${w}/**/*.key`]);
    expect(rules.every((r) => r.startsWith("write-file "))).toBe(true);
    expect(rules).toHaveLength(files.length);
  });

  it("is what confinementArgs passes for writes", () => {
    const c: Confinement = {
      read: [`${w}/pub/*.md`],
      write: [`${w}/pub/**`],
      deny: [],
      denyRead: [],
      denyWrite: [],
      tmp: "/tmp/agent-a1",
      execute: true,
    };
    const args = confinementArgs(c, []);
    expect(args).not.toContain(`${w}/pub`);
    expect(args.join(" ")).toContain(`--write-file ${w}/pub/x.txt`);
    expect(args.join(" ")).toContain(`--write ${w}/pub/sub`);
  });
});

describe("the rest of the domain", () => {
  it("makes every top-level entry but the mounts, /tmp, /proc and /dev readable, and symlinks nothing", () => {
    const fake = join(root, "fakeroot");
    for (const d of ["usr", "etc", "workspace", "output", "inputs", "skills", "tmp", "proc", "dev"])
      mkdirSync(join(fake, d), { recursive: true });
    writeFileSync(join(fake, ".dockerenv"), "");
    symlinkSync("usr/bin", join(fake, "bin"));
    const rules = systemRules(fake).map((r) => `${r.kind} ${r.path.replace(fake, "")}`);
    expect(rules.filter((r) => !r.includes("/dev/") && r !== "read /proc").sort()).toEqual([
      "read /etc",
      "read /usr",
      "read-file /.dockerenv",
    ]);
    expect(rules).toContain("read /proc");
    expect(rules).toContain("write-file /dev/null");
    expect(rules).not.toContain("read /dev/shm");
  });

  it("passes the private temp folder and both directions to the helper", () => {
    const c: Confinement = {
      read: [`${w}/pub/**`],
      write: [`${w}/notes.md`],
      deny: [],
      denyRead: [],
      denyWrite: [],
      tmp: "/tmp/agent-a1",
      execute: true,
    };
    expect(confinementArgs(c, [{ kind: "read", path: "/usr" }])).toEqual([
      "--read",
      "/usr",
      "--read",
      "/tmp/agent-a1",
      "--write",
      "/tmp/agent-a1",
      "--read",
      `${w}/pub`,
      "--write-file",
      `${w}/notes.md`,
    ]);
  });

  it("gives an agent that may run nothing from the goal's folders read rules without execute there, and the system its own", () => {
    const c: Confinement = {
      read: [`${w}/pub/**`, `${w}/p1/src/*.c`],
      write: [`${w}/notes.md`],
      deny: [],
      denyRead: [],
      denyWrite: [],
      tmp: "/tmp/agent-a1",
      execute: false,
    };
    expect(confinementArgs(c, [{ kind: "read", path: "/usr" }])).toEqual([
      "--read",
      "/usr",
      "--read-data",
      "/tmp/agent-a1",
      "--write",
      "/tmp/agent-a1",
      "--read-data",
      `${w}/pub`,
      "--read-data-file",
      `${w}/p1/src/main.c`,
      "--write-file",
      `${w}/notes.md`,
    ]);
    // A grant over the system folders takes nothing from the system rules' execute right.
    const all = confinementArgs({ ...c, read: ["/**"] }, [{ kind: "read", path: "/usr" }]);
    expect(all.slice(0, 2)).toEqual(["--read", "/usr"]);
    expect(all).toContain("--read-data");
  });

  it("lets an agent run without Landlock only when its grants cover every mount, it may run programs there, and nothing is denied", () => {
    const full: Confinement = {
      read: ["/workspace/**", "/output/**", "/inputs/**", "/skills/**"],
      write: ["/workspace/**", "/output/**"],
      deny: [],
      denyRead: [],
      denyWrite: [],
      tmp: "/tmp/agent-a",
      execute: true,
    };
    expect(grantsCoverMounts(full, ["review"])).toBe(true);
    expect(grantsCoverMounts({ ...full, execute: false }, ["review"])).toBe(false);
    expect(grantsCoverMounts({ ...full, read: ["/**"], write: ["/**"] }, [])).toBe(true);
    expect(grantsCoverMounts({ ...full, read: full.read.slice(0, 3) }, ["review"])).toBe(false);
    expect(
      grantsCoverMounts({ ...full, read: [...full.read.slice(0, 3), "/skills/review/**"] }, ["review"]),
    ).toBe(true);
    expect(grantsCoverMounts({ ...full, write: ["/workspace/**"] }, [])).toBe(false);
    expect(grantsCoverMounts({ ...full, deny: ["/workspace/secret/**"] }, [])).toBe(false);
    expect(grantsCoverMounts({ ...full, read: ["/workspace/*", ...full.read.slice(1)] }, [])).toBe(false);
  });
});

describe("grep's read view", () => {
  const view = () => ({ read: [w, `${w}/pub/**`, `${w}/*.md`], deny: [`${w}/pub/sub/**`] });

  it("opens only files a read glob matches and no deny glob names", () => {
    expect(mayReadFile(view(), `${w}/pub/x.txt`)).toBe(true);
    expect(mayReadFile(view(), `${w}/a.txt`)).toBe(false);
    expect(mayReadFile(view(), `${w}/pub/sub/x.txt`)).toBe(false);
    expect(mayEnter(view(), `${w}/secrets`)).toBe(false);
    expect(mayEnter(view(), `${w}/pub/sub`)).toBe(false);
    expect(mayEnter(view(), `${w}/pub`)).toBe(true);
  });

  it("searches a root it may list without reading below it what it may not", () => {
    const hits = grepWork({ pattern: ".", path: w, maxMatches: 100, view: view() });
    expect(hits.map((h) => h.path.slice(w.length)).sort()).toEqual([
      "/notes.md",
      "/pub/doc.md",
      "/pub/x.txt",
    ]);
    const all = grepWork({ pattern: ".", path: w, maxMatches: 100, glob: "**/*.{c,key}" });
    expect(all.map((h) => h.path.slice(w.length)).sort()).toEqual([
      "/p1/src/main.c",
      "/p2/id.key",
      "/p2/src/y.c",
      "/secrets/k.key",
    ]);
  });
});
