// Red team: the image's developer and packaging tools the write table did not list, the files
// ld reads named through gcc, and ld's one-dash long options that begin with "o". The agent
// may read /workspace/pub/** and write /workspace/pub/out/** only; each attack writes into
// /workspace/pub (or reads /workspace/secret) from a form the gate judged as a read:
//   - tempfile -n, savelog, pod2man IN OUT, pod2html --outfile, xsubpp -output, h2ph -d,
//     pygettext3 -o, py3compile, gcov, gprof -s, dpkg-deb -b and -x, dpkg-split -s,
//     lesskey -o, setterm --dump, link F1 F2, tree -o, rename.ul, ptar -c, zic -d, bzexe
//     and ptx -G IN OUT (and --tr, --traditional abbreviated), tree -R -L N DIR (00Tree.html
//     in every folder under DIR);
//   - `gcc -Wl,--version-script=../F`, `-Wl,-T,../F`: ld reads F, the word was judged as the
//     path "l,--version-script=../F" under the cwd;
//   - `ld -orphan-handling=place` is no `-o`: ld writes a.out in the cwd, while the gate judged
//     the file "rphan-handling=place" (here a link into the writable folder).
// On main each passed the gate (Landlock stopped it). Each is now refused before anything
// runs, naming the file, audited as tool.denied; the same programs into the writable folder run.

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

const PROGRAMS = ["tempfile", "savelog", "pod2man", "pod2html", "xsubpp", "h2ph", "pygettext3"];
PROGRAMS.push("py3compile", "gcov", "gprof", "dpkg-deb", "dpkg-split", "lesskey", "setterm", "gcc", "ld");
PROGRAMS.push("cat", "ls", "cp", "link", "tree", "rename.ul", "ptar", "zic", "bzexe", "ptx");

const PROFILES = readPubWriteOut(PROGRAMS);

beforeAll(async () => {
  b = await openSharedBench({
    profiles: PROFILES,
    files: {
      "/workspace/pub/log": "l\n",
      "/workspace/pub/a.pod": "=head1 NAME\n\na - b\n",
      "/workspace/pub/a.xs": "MODULE = A PACKAGE = A\n",
      "/workspace/pub/a.h": "#define A 1\n",
      "/workspace/pub/a.py": "print(_('hi'))\n",
      "/workspace/pub/a.c": "int main(void) { return 0; }\n",
      "/workspace/pub/a.s": ".text\n",
      "/workspace/pub/keys": "#command\n\\t forw-line\n",
      "/workspace/pub/d/DEBIAN/control":
        "Package: x\nVersion: 1\nArchitecture: all\nMaintainer: a <a@b.c>\nDescription: x\n",
      "/workspace/pub/out/.keep": "",
      "/workspace/pub/out/q/r/.keep": "",
      "/workspace/pub/v.map": "{ global: main; local: *; };\n",
      "/workspace/pub/s.sh": "#!/bin/sh\necho hi\n",
      "/workspace/pub/tz": "Zone X 0 - XT\n",
      "/workspace/secret/k": "{ global: *; };\n",
    },
    setup: [
      "cd /workspace/pub",
      "as -o out/a.o a.s && as -o a.o a.s",
      "dpkg-deb -b d x.deb > /dev/null && cp x.deb out/",
      "touch out/o1 && ln -s out/o1 'rphan-handling=place'",
      "chmod -R a+rwX /workspace && chmod 700 /workspace/secret && chmod 755 d/DEBIAN",
    ].join(" && "),
  });
}, 240_000);

afterAll(async () => {
  await b?.close();
});

const P = "/workspace/pub";

describe("the image's developer and packaging tools are judged as writes", () => {
  it.each([
    ["tempfile -n FILE", `tempfile -n ${P}/t`, `${P}/t`],
    ["savelog FILE (rotated beside it)", `savelog -l ${P}/log`, `${P}/log`],
    ["pod2man IN OUT", `pod2man ${P}/a.pod ${P}/a.1`, `${P}/a.1`],
    ["pod2man -center V IN OUT", `pod2man -center x ${P}/a.pod ${P}/a.1`, `${P}/a.1`],
    [
      "pod2html --outfile=F",
      `cd ${P}/out && pod2html --infile=../a.pod --outfile=${P}/a.html`,
      `${P}/a.html`,
    ],
    ["pod2html (its cache in the cwd)", `cd ${P} && pod2html --infile=a.pod --outfile=out/a.html`, P],
    ["xsubpp -output F", `xsubpp -output ${P}/a.c2 ${P}/a.xs`, `${P}/a.c2`],
    ["h2ph -d DIR", `cd ${P} && h2ph -d ${P} a.h`, P],
    ["pygettext3 -o F", `pygettext3 -o ${P}/m.pot ${P}/a.py`, `${P}/m.pot`],
    ["pygettext3 (messages.pot in the cwd)", `cd ${P} && pygettext3 a.py`, `${P}/messages.pot`],
    ["py3compile F (__pycache__ beside it)", `py3compile ${P}/a.py`, P],
    ["gcov (NAME.gcov in the cwd)", `cd ${P} && gcov -o out a.c`, P],
    ["gprof -s (gmon.sum in the cwd)", `cd ${P} && gprof -s out/a.o out/gmon.out`, `${P}/gmon.sum`],
    ["dpkg-deb -b DIR OUT", `dpkg-deb -b ${P}/d ${P}/y.deb`, `${P}/y.deb`],
    ["dpkg-deb -x DEB DIR", `dpkg-deb -x ${P}/out/x.deb ${P}/m`, `${P}/m`],
    ["dpkg-split -s FULL (its parts beside it)", `dpkg-split -s -S 1 ${P}/x.deb`, P],
    ["lesskey -o F", `lesskey -o ${P}/k ${P}/keys`, `${P}/k`],
    ["setterm --dump (screen.dump in the cwd)", `cd ${P} && setterm --dump 1`, `${P}/screen.dump`],
    ["link F1 F2", `link ${P}/log ${P}/l2`, `${P}/l2`],
    ["tree -o F", `tree -o ${P}/t2 ${P}/d`, `${P}/t2`],
    ["rename.ul EXPR REPL F (F and its new name)", `rename.ul log log3 ${P}/log`, `${P}/log3`],
    ["ptar -c -f F", `cd ${P}/out && ptar -c -f ${P}/a.tar a.o`, `${P}/a.tar`],
    ["zic -d DIR", `zic -d ${P}/z ${P}/tz`, `${P}/z`],
    ["bzexe F", `bzexe ${P}/s.sh`, `${P}/s.sh`],
    ["ptx -G IN OUT", `ptx -G ${P}/log ${P}/p`, `${P}/p`],
    ["ptx --tr IN OUT (--traditional abbreviated)", `ptx --tr ${P}/log ${P}/p`, `${P}/p`],
    ["tree -R -L N DIR (00Tree.html in its folders)", `tree -R -L 1 -H . ${P}/out/.. >/dev/null`, P],
    ["ld -orphan-handling=place (a.out in the cwd)", `cd ${P} && ld -orphan-handling=place -e 0 out/a.o`, P],
  ])(
    "refuses %s, a program the write table lacked",
    async (_how, command, file) => {
      const r = await b.exec("worker", command);
      expectWriteRefused(b, "worker", r, file);
      for (const f of [
        "t",
        "a.1",
        "a.html",
        "a.c2",
        "m.pot",
        "messages.pot",
        "y.deb",
        "k",
        "a.out",
        "l2",
        "t2",
      ])
        expect(b.exists(`${P}/${f}`), f).toBe(false);
      for (const f of ["log.0", "log3", "a.tar", "z", "s.sh~", "p", "d/00Tree.html"])
        expect(b.exists(`${P}/${f}`), f).toBe(false);
      expect(b.exists(`${P}/__pycache__`)).toBe(false);
    },
    60_000,
  );

  it.each([
    ["gcc -Wl,--version-script=../F", `cd ${P} && gcc a.c -o out/x1 -Wl,--version-script=../secret/k`],
    ["gcc -Wl,-T,../F", `cd ${P} && gcc a.c -o out/x2 -Wl,-T,../secret/k`],
    ["gcc -Xlinker -T -Xlinker ../F", `cd ${P} && gcc a.c -o out/x5 -Xlinker -T -Xlinker ../secret/k`],
    [
      "gcc --for-linker=--dynamic-list=../F",
      `cd ${P} && gcc a.c -o out/x3 --for-linker=--dynamic-list=../secret/k`,
    ],
  ])(
    "refuses %s: ld reads F, judged where ld opens it",
    async (_how, command) => {
      const r = await b.exec("worker", command);
      expectRefused(b, "worker", r, "capability", /on \/workspace\/secret\/k \(/);
    },
    60_000,
  );

  it.each([
    ["tempfile -n into the writable folder", `tempfile -n ${P}/out/t1 && ls ${P}/out`, "t1"],
    [
      "py3compile in the writable folder",
      `cp ${P}/a.py ${P}/out/ && py3compile ${P}/out && ls ${P}/out/__pycache__`,
      "a.cpython",
    ],
    ["pod2man into the writable folder", `pod2man ${P}/a.pod ${P}/out/a.1 && ls ${P}/out`, "a.1"],
    ["pod2man (printed)", `pod2man ${P}/a.pod`, "NAME"],
    ["pygettext3 -p the writable folder", `pygettext3 -p ${P}/out ${P}/a.py && ls ${P}/out`, "messages.pot"],
    ["lesskey -o into the writable folder", `lesskey -o ${P}/out/k ${P}/keys && ls ${P}/out`, "k"],
    ["dpkg-deb -b into the writable folder", `dpkg-deb -b ${P}/d ${P}/out/z.deb && ls ${P}/out`, "z.deb"],
    ["dpkg-deb --info (a read)", `dpkg-deb --info ${P}/x.deb`, "Package: x"],
    [
      "gcc -Wl,--version-script=F of the readable folder",
      `cd ${P} && gcc a.c -o out/x4 -Wl,--version-script=./v.map && ls out`,
      "x4",
    ],
    ["tree -o into the writable folder", `tree -o ${P}/out/t ${P}/d && cat ${P}/out/t`, "DEBIAN"],
    [
      "tree -R -L N in the writable folder",
      `tree -R -L 1 -H . ${P}/out/q >/dev/null && ls ${P}/out/q/r`,
      "00Tree.html",
    ],
    ["link into the writable folder", `link ${P}/out/a.o ${P}/out/l && ls ${P}/out`, "l"],
    ["ptar -c into the writable folder", `cd ${P} && ptar -c -f out/a.tar log && ls out`, "a.tar"],
    ["ld -orph=place in the writable folder", `cd ${P}/out && ld -orph=place -e 0 a.o && ls`, "a.out"],
  ])(
    "still runs %s",
    async (_how, command, out) => {
      const r = expectOk(await b.exec("worker", command));
      expect(r.output).toContain(out);
    },
    60_000,
  );
});
