// Red team: the image's writing programs the write table did not list, and a reading
// that judged a path elsewhere than the program opens it. The agent may read
// /workspace/pub/** and write /workspace/pub/out/** only; each attack writes into (or
// reads outside) /workspace/pub from a form the gate judged as a read:
//   - binutils that rewrite their operand (`strip F`, `objcopy IN`, `ranlib A`, `elfedit F`)
//     or write an option's file (`strip -o F`, `objcopy --dump-section S=F`);
//   - `tic -o DIR` (and tic without -o: a terminfo database the analysis does not know);
//   - the zip utilities: `zipnote -w Z`, `zipsplit -b DIR` (its pieces), `zipcloak Z`;
//   - gzip's scripts `gzexe F` (F rewritten, F~ made), `zforce F` (renamed F.gz), `znew F.Z`
//     (F.gz made), and `bzip2recover F` (rec00001F made in F's folder);
//   - gcc, cc and cpp (`-o F`, `-MF F`, a.out or NAME.o in the cwd, `cpp IN OUT`), `as` and
//     `ld` (`-o F`, a.out), `gencat CATALOG`, `hardlink DIR` and `c_rehash DIR`;
//   - `perl -i[EXT]`: the files after its program edited in place, and their backups;
//   - `patch -d DIR -i P` and `patch -d DIR F P` read P from DIR, not from the cwd.
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

const PROGRAMS = ["strip", "objcopy", "ranlib", "elfedit", "tic", "zipnote", "zipsplit", "zipcloak"];
PROGRAMS.push("gzexe", "zforce", "znew", "bzip2recover", "patch", "cat", "ls", "cp");
PROGRAMS.push("gcc", "cc", "cpp", "as", "ld", "gencat", "hardlink", "c_rehash", "rpcgen", "perl");

const PROFILES = readPubWriteOut(PROGRAMS);

beforeAll(async () => {
  b = await openSharedBench({
    profiles: PROFILES,
    files: {
      "/workspace/pub/notes.txt": "b\na\na\n",
      "/workspace/pub/m/member.txt": "m\n",
      "/workspace/pub/out/.keep": "",
      "/workspace/pub/t.src": "aidot|aido test,\n\tcols#80,\n",
      "/workspace/pub/s.sh": "#!/bin/sh\necho hi\n",
      "/workspace/pub/a.c": "int main(void) { return 0; }\n",
      "/workspace/pub/a.s": ".text\n",
      "/workspace/pub/m.msg": "1 one\n",
      "/workspace/pub/x.diff": "--- a/notes.txt\n+++ b/notes.txt\n@@ -1,3 +1,3 @@\n-b\n+c\n a\n a\n",
      "/workspace/secret/k": "--- a/notes.txt\n+++ b/notes.txt\n@@ -1 +1 @@\n-secret\n+s\n",
    },
    setup: [
      "cd /workspace/pub",
      "cp /usr/bin/true bin && cp bin out/bin",
      "(cd m && zip -q ../a.zip member.txt) && cp a.zip out/a.zip",
      "ar rc l.a notes.txt",
      "gzip -k -c notes.txt > nz && gzip -k -c notes.txt > n.Z",
      "bzip2 -k notes.txt && cp notes.txt.bz2 out/",
      "as -o out/a.o a.s",
      "chmod -R a+rwX /workspace && chmod 700 /workspace/secret",
    ].join(" && "),
  });
}, 240_000);

afterAll(async () => {
  await b?.close();
});

const P = "/workspace/pub";

describe("the image's other writing programs are judged as writes", () => {
  it.each([
    ["strip F (F rewritten)", `strip ${P}/bin`, `${P}/bin`],
    ["strip -o F", `strip -o ${P}/b2 ${P}/out/bin`, `${P}/b2`],
    ["objcopy IN (IN rewritten)", `objcopy -R .comment ${P}/bin`, `${P}/bin`],
    ["objcopy IN OUT", `objcopy -O binary ${P}/out/bin ${P}/b3`, `${P}/b3`],
    [
      "objcopy --dump-section NAME=FILE",
      `objcopy --dump-section .text=${P}/d ${P}/out/bin ${P}/out/b4`,
      `${P}/d`,
    ],
    ["ranlib A", `ranlib ${P}/l.a`, `${P}/l.a`],
    ["elfedit F", `elfedit --output-osabi=none ${P}/bin`, `${P}/bin`],
    ["tic -o DIR", `tic -o ${P}/ti ${P}/t.src`, `${P}/ti`],
    ["zipnote -w ZIP", `zipnote -w ${P}/a.zip < /dev/null`, `${P}/a.zip`],
    ["zipsplit -b DIR", `zipsplit -n 2048 -b ${P} ${P}/out/a.zip`, P],
    ["zipsplit into the cwd", `cd ${P} && zipsplit -n 2048 out/a.zip`, P],
    ["zipcloak ZIP", `zipcloak ${P}/a.zip < /dev/null`, `${P}/a.zip`],
    ["gzexe F", `gzexe ${P}/s.sh`, `${P}/s.sh`],
    ["zforce F (renamed F.gz)", `zforce ${P}/nz`, `${P}/nz`],
    ["znew F.Z (F.gz made)", `znew ${P}/n.Z`, `${P}/n.Z`],
    ["bzip2recover F (recNNNNNF made next to F)", `bzip2recover ${P}/notes.txt.bz2`, P],
    ["patch -o - (its temporary file beside -)", `cd ${P} && patch -o - notes.txt x.diff`, `${P}/-`],
    ["perl -i -pe (F edited in place)", `perl -i -pe s/b/c/ ${P}/notes.txt`, `${P}/notes.txt`],
    ["perl -pi.bak (its backup)", `cd ${P}/out && perl -pi.bak -e 1 ../notes.txt`, `${P}/notes.txt`],
    [
      "perl -ie CODE F (-i takes the e: CODE is a program file)",
      `perl -ie 1 ${P}/notes.txt`,
      `${P}/notes.txt`,
    ],
    [
      "perl -i'DIR/*' (the backup in DIR)",
      `cp ${P}/notes.txt ${P}/out/n && cd ${P}/out && perl -i'../*' -pe 1 n`,
      `${P}/n`,
    ],
    ["gcc -o F", `gcc -o ${P}/x ${P}/a.c`, `${P}/x`],
    ["cc -oF (attached)", `cc -o${P}/x ${P}/a.c`, `${P}/x`],
    ["gcc without -o (a.out in the cwd)", `cd ${P} && gcc a.c`, P],
    ["gcc -c -MD -o (the .d next to the output)", `cd ${P}/out && gcc -c -MD -o ../a.o ../a.c`, `${P}/a.o`],
    ["gcc -M -MF F", `gcc -M -MF ${P}/a.d ${P}/a.c`, `${P}/a.d`],
    ["cpp IN OUT", `cpp ${P}/a.c ${P}/a.i`, `${P}/a.i`],
    ["as -o F", `as -o ${P}/a.o ${P}/a.s`, `${P}/a.o`],
    ["as without -o (a.out in the cwd)", `cd ${P} && as a.s`, P],
    ["ld -o F", `ld -o ${P}/x ${P}/out/a.o`, `${P}/x`],
    ["gcc -MFF (attached)", `cd ${P}/out && gcc -M -MF${P}/a.d ../a.c`, `${P}/a.d`],
    ["gcc -Wl,-Map=F (the linker's map)", `gcc -o ${P}/out/x2 ${P}/a.c -Wl,-Map=${P}/m`, `${P}/m`],
    ["gcc -Wa,-al=F (the listing)", `gcc -c -o ${P}/out/a2.o ${P}/a.c -Wa,-al=${P}/l`, `${P}/l`],
    ["gcc -fdump-tree-X=F", `gcc -c -o ${P}/out/a3.o ${P}/a.c -fdump-tree-original=${P}/t`, `${P}/t`],
    ["ld --outp=F (a prefix of --output)", `ld --outp=${P}/x ${P}/out/a.o`, `${P}/x`],
    ["strip --output-file=F", `strip --output-file=${P}/b2 ${P}/out/bin`, `${P}/b2`],
    ["objcopy --elf-stt-common V IN OUT", `objcopy --elf-stt-common yes ${P}/out/bin ${P}/b3`, `${P}/b3`],
    ["gencat CATALOG MSGFILE", `gencat ${P}/c.cat ${P}/m.msg`, `${P}/c.cat`],
    ["hardlink DIR (files replaced by links)", `hardlink ${P}/m`, `${P}/m`],
    ["c_rehash DIR (links made)", `c_rehash ${P}/m`, `${P}/m`],
  ])(
    "refuses %s, a program the write table lacked",
    async (_how, command, file) => {
      const r = await b.exec("worker", command);
      expectWriteRefused(b, "worker", r, file);
      expect(b.exists(`${P}/b2`)).toBe(false);
      expect(b.exists(`${P}/ti`)).toBe(false);
      expect(b.exists(`${P}/nz.gz`)).toBe(false);
      expect(b.exists(`${P}/rec00001notes.txt.bz2`)).toBe(false);
      expect(b.exists(`${P}/s.sh~`)).toBe(false);
      expect(b.exists(`${P}/x`)).toBe(false);
      expect(b.exists(`${P}/a.out`)).toBe(false);
      expect(b.exists(`${P}/c.cat`)).toBe(false);
    },
    60_000,
  );

  it("refuses tic without -o: its database is a folder the analysis does not know", async () => {
    const r = await b.exec("worker", `tic ${P}/t.src`);
    expectRefused(
      b,
      "worker",
      r,
      "policy",
      /tic \/workspace\/pub\/t\.src writes \/ \(rule system-path-write\)/,
    );
  }, 60_000);

  it.each([
    ["gcc -E", `DEPENDENCIES_OUTPUT=${P}/deps gcc -E ${P}/a.c`, "DEPENDENCIES_OUTPUT"],
    ["cpp", `export SUNPRO_DEPENDENCIES=${P}/deps; cpp ${P}/a.c`, "SUNPRO_DEPENDENCIES"],
  ])(
    "refuses %s under a variable that makes it write a dependency file",
    async (_how, command, variable) => {
      const r = await b.exec("worker", command);
      expectRefused(b, "worker", r, "policy", new RegExp(`the command sets ${variable}`));
      expect(b.exists(`${P}/deps`)).toBe(false);
    },
    60_000,
  );

  it.each([
    ["patch -d DIR -i P", `cd ${P}/out && patch -d /workspace -i secret/k -o pub/out/p1 pub/notes.txt`],
    [
      "patch -d DIR -iP (attached)",
      `cd ${P}/out && patch -d /workspace -isecret/k -o pub/out/p2 pub/notes.txt`,
    ],
    ["patch -d DIR F P", `cd ${P}/out && patch -d /workspace -o pub/out/p3 pub/notes.txt secret/k`],
    [
      "patch --directory=DIR --input=P -o -",
      `cd ${P}/out && patch --directory=/workspace --input=secret/k -o - pub/notes.txt`,
    ],
  ])(
    "refuses %s: the patch is read from DIR",
    async (_how, command) => {
      const r = await b.exec("worker", command);
      expectRefused(b, "worker", r, "capability", /file_read on \/workspace\/secret\/k \(/);
    },
    60_000,
  );

  it.each([
    ["objcopy --add-section S=F", `cd ${P} && objcopy --add-section .x=../secret/k out/bin out/b6`],
    ["objcopy --update-section=S=F", `cd ${P} && objcopy --update-section=.text=../secret/k out/bin out/b7`],
  ])(
    "refuses %s: F is read from the cwd, though the word is no path",
    async (_how, command) => {
      const r = await b.exec("worker", command);
      expectRefused(b, "worker", r, "capability", /file_read on \/workspace\/secret\/k \(/);
    },
    60_000,
  );

  it("runs objcopy --add-section with a file of the readable folder", async () => {
    const r = expectOk(
      await b.exec("worker", `cd ${P} && objcopy --add-section .x=notes.txt out/bin out/b8 && ls out`),
    );
    expect(r.output).toContain("b8");
  });

  it.each([
    ["strip -o into the writable folder", `strip -o ${P}/out/b5 ${P}/bin && ls ${P}/out`, "b5"],
    ["strip F in the writable folder", `cd ${P}/out && strip bin && ls`, "bin"],
    [
      "objcopy IN OUT into the writable folder",
      `objcopy -O binary ${P}/bin ${P}/out/b6 && ls ${P}/out`,
      "b6",
    ],
    ["tic -o the writable folder", `tic -o ${P}/out/ti ${P}/t.src && ls ${P}/out/ti`, "a"],
    ["zipnote (listing)", `zipnote ${P}/a.zip`, "member.txt"],
    ["gcc -o into the writable folder", `gcc -o ${P}/out/x ${P}/a.c && ls ${P}/out`, "x"],
    ["gcc in the writable folder", `cd ${P}/out && gcc ../a.c && ls`, "a.out"],
    [
      "gcc with linker options, in the writable folder",
      `cd ${P}/out && gcc ../a.c -o y -Wl,--as-needed,-Map=y.map -Xlinker -z -Xlinker now && ls`,
      "y.map",
    ],
    ["gcc -E (printed)", `gcc -E ${P}/a.c`, "main"],
    ["gcc --version", "gcc --version", "gcc"],
    [
      "perl -i in the writable folder",
      `cp ${P}/notes.txt ${P}/out/n2 && perl -pi -e s/b/c/ ${P}/out/n2 && cat ${P}/out/n2`,
      "c\na",
    ],
    ["perl -pe (no -i) on a read-only file", `perl -pe s/b/c/ ${P}/notes.txt`, "c\na"],
    ["gencat into the writable folder", `gencat ${P}/out/c.cat ${P}/m.msg && ls ${P}/out`, "c.cat"],
    ["zipsplit -t (a report)", `zipsplit -t -n 2048 ${P}/a.zip`, "zip"],
    ["bzip2recover in the writable folder", `cd ${P}/out && bzip2recover notes.txt.bz2 && ls`, "rec00001"],
    [
      "patch -d DIR -o - (printed through a temporary file in DIR)",
      `patch -d ${P}/out -i ${P}/x.diff -o - ${P}/notes.txt`,
      "c\na",
    ],
    [
      "patch -d DIR -i P with P in DIR",
      `patch -d ${P} -i x.diff -o ${P}/out/p notes.txt && cat ${P}/out/p`,
      "c\na",
    ],
  ])(
    "still runs %s",
    async (_how, command, out) => {
      const r = expectOk(await b.exec("worker", command));
      expect(r.output).toContain(out);
    },
    60_000,
  );
});
