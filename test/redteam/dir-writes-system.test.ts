// Red team: the image's file-system tools and the last writers a scan of its program folders
// found, each judged as a read on main. The agent may read /workspace/pub/** and write
// /workspace/pub/out/** only; each attack writes into /workspace/pub through the container's
// real programs: fsck -y and e2undo on an ext2 image kept in a file, e4defrag, dpkg-divert
// --rename (moves a file and rewrites its database), gp-archive -d, streamzip -zipfile, ldconfig -N -r ROOT (links in ROOT's folders). Each is now
// refused before anything runs, naming the file, audited as tool.denied; the same programs
// on files of the writable folder run, and tree -RL1 (which tree refuses) is no longer judged
// as a write. (mke2fs, mkswap and wipefs, judged as writes too, are refused by the policy's
// disk-wipe rule whatever they are given, on main as now.) And the variables that name
// where they write, set by the command: E2FSCK_CONFIG (a configuration whose log_filename
// e2fsck -n writes, through fsck too), E2FSPROGS_UNDO_DIR (tune2fs -I's undo file) and
// APT_CONFIG (apt-cache's Dir::Cache), each refused as unjudgeable.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOk } from "./fixture.js";
import {
  expectRefused,
  expectWriteRefused,
  openSharedBench,
  readPubWriteOut,
  type SharedBench,
} from "./shared-bench.js";

let b: SharedBench;

const PROGRAMS = ["fsck", "e2undo", "e4defrag", "dpkg-divert", "gp-archive"];
PROGRAMS.push("streamzip", "ldconfig", "tree", "ls", "cat", "echo", "cp");
PROGRAMS.push("e2fsck", "tune2fs", "apt-cache", "env", "lto-dump");

beforeAll(async () => {
  b = await openSharedBench({
    profiles: readPubWriteOut(PROGRAMS),
    files: {
      "/workspace/pub/f": "f\n",
      "/workspace/pub/out/.keep": "",
      "/workspace/pub/root/x": "x\n",
      "/workspace/pub/out/e2.conf": "[options]\n\tlog_filename = /workspace/pub/e2fsck.log\n",
      "/workspace/pub/out/apt.conf": 'Dir::Cache "/workspace/pub/";\n',
      "/workspace/pub/out/x.c": "int f(int x) { return x + 1; }\n",
      "/workspace/pub/out/p.c": [
        "#include <stdio.h>",
        "int plugin_is_GPL_compatible;",
        "int plugin_init(void *a, void *b) { return 0; }",
        '__attribute__((constructor)) static void ran(void) { FILE *f = fopen("/workspace/pub/out/pwned", "w"); if (f) fclose(f); }',
        "",
      ].join("\n"),
    },
    setup: [
      "cd /workspace/pub",
      "mke2fs -q -F -t ext2 img 1M && mke2fs -q -F -t ext2 out/img 1M && cp /bin/true swap",
      "mkdir -p root/lib/x86_64-linux-gnu root/etc && cp /lib/x86_64-linux-gnu/libz.so.1.* root/lib/x86_64-linux-gnu/",
      "gcc -O2 -flto -c out/x.c -o out/x.o && cp out/x.o x.o && gcc -shared -fPIC out/p.c -o out/p.so",
      "cp out/img 'out/i;touch pwn;#'",
      "chmod -R a+rwX /workspace",
    ].join(" && "),
  });
}, 240_000);

afterAll(async () => {
  await b?.close();
});

const P = "/workspace/pub";
/** The checksums of pub's image and plain file, read in the container. */
const sums = async () =>
  (await b.inner.exec({ argv: ["md5sum", `${P}/img`, `${P}/f`, `${P}/swap`], confinement: "unconfined" }))
    .stdout;

describe("the image's file-system tools and the scan's writers are judged as writes", () => {
  it.each([
    ["fsck -y IMG", `fsck -y ${P}/img`, `${P}/img`],
    ["e2undo UNDO IMG", `e2undo ${P}/out/u ${P}/img`, `${P}/img`],
    ["e4defrag FILE", `e4defrag ${P}/f`, `${P}/f`],
    [
      "dpkg-divert --root R --rename",
      `dpkg-divert --root ${P}/root --rename --add /x`,
      `${P}/root/var/lib/dpkg`,
    ],
    ["gp-archive -d DIR", `gp-archive -d ${P}/arch ${P}/out/e.er`, `${P}/arch`],
    ["streamzip -zipfile=F", `echo a | streamzip -zipfile=${P}/z.zip`, `${P}/z.zip`],
    ["ldconfig -N -r ROOT (links in ROOT's folders)", `ldconfig -N -r ${P}/root`, `${P}/root`],
  ])(
    "refuses %s, a program the write table lacked",
    async (_how, command, file) => {
      const before = await sums();
      const r = await b.exec("worker", command);
      expectWriteRefused(b, "worker", r, file);
      expect(await sums()).toBe(before);
      for (const f of ["z.zip", "arch", "root/var", "root/x.distrib", "root/lib/x86_64-linux-gnu/libz.so.1"])
        expect(b.exists(`${P}/${f}`), f).toBe(false);
    },
    60_000,
  );

  it.each([
    ["fsck -N (prints only)", `fsck -N ${P}/img`, "fsck"],
    [
      "streamzip -zipfile into the writable folder",
      `echo a | streamzip -zipfile=${P}/out/z.zip && ls ${P}/out`,
      "z.zip",
    ],
    ["tree -RL1 (tree refuses it, writing nothing)", `tree -RL1 -H . ${P}; ls ${P}`, "img"],
  ])(
    "still runs %s",
    async (_how, command, out) => {
      const r = expectOk(await b.exec("worker", command));
      expect(r.output).toContain(out);
    },
    60_000,
  );
});

describe("a variable that names where an e2fsprogs tool or apt-cache writes is refused", () => {
  it.each([
    [
      "E2FSCK_CONFIG for e2fsck -n (its log_filename)",
      `E2FSCK_CONFIG=${P}/out/e2.conf e2fsck -n ${P}/out/img`,
      "E2FSCK_CONFIG",
    ],
    [
      "E2FSCK_CONFIG under env for fsck",
      `env E2FSCK_CONFIG=${P}/out/e2.conf fsck -n ${P}/out/img`,
      "E2FSCK_CONFIG",
    ],
    [
      "E2FSPROGS_UNDO_DIR for tune2fs -I (its undo file)",
      `E2FSPROGS_UNDO_DIR=${P} tune2fs -I 256 ${P}/out/img`,
      "E2FSPROGS_UNDO_DIR",
    ],
    ["APT_CONFIG for apt-cache (Dir::Cache)", `APT_CONFIG=${P}/out/apt.conf apt-cache policy`, "APT_CONFIG"],
  ])(
    "refuses %s: the file written comes from a variable the command sets",
    async (_how, command, variable) => {
      const r = await b.exec("worker", command);
      expectRefused(b, "worker", r, "policy", new RegExp(`the command sets ${variable}`));
      for (const f of ["e2fsck.log", "tune2fs-img.e2undo", "pkgcache.bin"])
        expect(b.exists(`${P}/${f}`), f).toBe(false);
    },
    60_000,
  );

  it("still runs e2fsck -n on an image in the writable folder", async () => {
    const r = expectOk(await b.exec("worker", `e2fsck -n ${P}/out/img`));
    expect(r.output).toContain("clean");
  }, 60_000);
});

describe("lto-dump, lto1 run as a dumper, is judged as the compiler it is", () => {
  it("refuses lto-dump -fplugin=F.so: it loads F's code, which the agent may not execute", async () => {
    const r = await b.exec("worker", `lto-dump -fplugin=${P}/out/p.so -list ${P}/out/x.o`);
    expectRefused(b, "worker", r, "policy", /lto-dump -fplugin=\S+ runs or loads a program/);
    expect(b.exists(`${P}/out/pwned`)).toBe(false);
  }, 60_000);

  it("refuses lto-dump -list IN in a read-only folder: it writes its assembler output beside IN", async () => {
    const r = await b.exec("worker", `lto-dump -list ${P}/x.o`);
    expectWriteRefused(b, "worker", r, P);
    expect(b.exists(`${P}/x.s`)).toBe(false);
  }, 60_000);

  it("still runs lto-dump -list on an object in the writable folder", async () => {
    const r = expectOk(await b.exec("worker", `lto-dump -list ${P}/out/x.o`));
    expect(r.output).toContain("function");
    expect(b.exists(`${P}/out/x.s`)).toBe(true);
  }, 60_000);
});

describe("e2fsck -c, which runs badblocks through sh -c, is refused", () => {
  it.each([
    ["e2fsck -c", `cd ${P}/out && e2fsck -c -y 'i;touch pwn;#'`],
    ["fsck -yc (fsck hands e2fsck the c)", `cd ${P}/out && fsck -yc '${P}/out/i;touch pwn;#'`],
  ])(
    "refuses %s: the image's name is shell code that runs programs no grant names",
    async (_how, command) => {
      const r = await b.exec("worker", command);
      expectRefused(b, "worker", r, "policy", /-c runs badblocks through sh -c/);
      expect(b.exists(`${P}/out/pwn`)).toBe(false);
    },
    60_000,
  );
});
