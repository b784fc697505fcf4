// Red team: writes that only the program knows the direction of, and bare names after `cd`.
// The agent may read /workspace/pub/** and write /workspace/pub/out/** only. Each attack
// writes into /workspace/pub in a form the gate judged as a read (or not at all):
//   - a file written through an operand or option of a program the write table did not know
//     (`tar -cf F`, `split IN PREFIX`, `uniq IN OUT`, `gzip F` writing F.gz and removing F,
//     `git clone SRC DEST`, `shuf -o`, `openssl -out`...): judged "any", which a read grant
//     covers;
//   - a folder a program makes files in that no argument names (`tar -x` into the cwd,
//     split's `xaa`, `git clone URL` making ./NAME, `unzip` without -d): not judged;
//   - a bare name a writing program takes after `cd` (`cd pub && rm notes.txt`): a word
//     with no `/` was not taken for a path at all.
// On main each passed the gate and only Landlock stopped it. Each is now refused before
// anything runs (capability stage), naming the file, audited as tool.denied; the same
// commands into the writable folder run.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOk } from "./fixture.js";
import {
  escapeRegExp,
  expectRefused,
  openSharedBench,
  readPubWriteOut,
  type SharedBench,
} from "./shared-bench.js";

let b: SharedBench;

const PROGRAMS = ["tar", "split", "csplit", "uniq", "shuf", "gzip", "gunzip", "unzip", "patch", "mktemp"];
PROGRAMS.push("bzip2", "xz", "chmod", "truncate", "strace", "script", "true", "echo");
PROGRAMS.push("install", "ln", "rm", "touch", "mkdir", "cp", "git", "openssl", "cat", "ls", "env", "timeout");

const PROFILES = readPubWriteOut(PROGRAMS);

beforeAll(async () => {
  b = await openSharedBench({
    profiles: PROFILES,
    files: {
      "/workspace/pub/notes.txt": "b\na\na\n",
      "/workspace/pub/f.txt": "f\n",
      "/workspace/pub/m/member.txt": "m\n",
      "/workspace/pub/out/.keep": "",
      "/workspace/pub/x.diff": "--- a/notes.txt\n+++ b/notes.txt\n@@ -1,3 +1,3 @@\n-b\n+c\n a\n a\n",
    },
    setup: [
      "cd /workspace/pub",
      "tar -cf a.tar -C m member.txt",
      "(cd m && zip -q ../a.zip member.txt)",
      "git init -q src/proj",
      "git -C src/proj -c user.email=a@b -c user.name=n commit -q --allow-empty -m one",
      "chmod -R a+rwX /workspace",
    ].join(" && "),
  });
}, 240_000);

afterAll(async () => {
  await b?.close();
});

const P = "/workspace/pub";

describe("a write only the program knows the direction of is judged as a write", () => {
  it.each([
    ["tar -cf F", `tar -cf ${P}/a2.tar ${P}/notes.txt`, `${P}/a2.tar`, "a2.tar"],
    ["tar -c -f F", `tar -c -f ${P}/a2.tar ${P}/notes.txt`, `${P}/a2.tar`, "a2.tar"],
    ["tar --create --file=F", `tar --create --file=${P}/a2.tar ${P}/notes.txt`, `${P}/a2.tar`, "a2.tar"],
    [
      "tar with abbreviated long options",
      `tar --cre --file ${P}/a2.tar ${P}/notes.txt`,
      `${P}/a2.tar`,
      "a2.tar",
    ],
    ["tar's old-style bundle, a bare name", `cd ${P} && tar cf a2.tar notes.txt`, `${P}/a2.tar`, "a2.tar"],
    ["tar -r", `tar -rf ${P}/a.tar ${P}/notes.txt`, `${P}/a.tar`, undefined],
    ["tar -x into the cwd", `cd ${P} && tar -xf a.tar`, P, "member.txt"],
    ["tar -x -C DIR", `tar -xf ${P}/a.tar -C ${P}`, P, "member.txt"],
    ["tar -x with -C attached in a cluster", `tar -xC${P} -f ${P}/a.tar`, P, "member.txt"],
    ["tar -x under env", `cd ${P} && env tar -xf a.tar`, P, "member.txt"],
    ["split's default prefix", `cd ${P} && split notes.txt`, `${P}/x`, "xaa"],
    ["split IN PREFIX", `split -l 1 ${P}/notes.txt ${P}/part`, `${P}/part`, "partaa"],
    ["split under timeout", `timeout 5 split ${P}/notes.txt ${P}/part`, `${P}/part`, "partaa"],
    ["csplit -f", `csplit -f ${P}/cs ${P}/notes.txt 2`, `${P}/cs`, "cs00"],
    ["uniq IN OUT", `uniq ${P}/notes.txt ${P}/u`, `${P}/u`, "u"],
    ["shuf -o", `shuf -o ${P}/s ${P}/notes.txt`, `${P}/s`, "s"],
    ["gzip F (writes F.gz, removes F)", `gzip ${P}/f.txt`, `${P}/f.txt`, "f.txt.gz"],
    ["gzip -k F", `gzip -k ${P}/f.txt`, `${P}/f.txt.gz`, "f.txt.gz"],
    ["unzip into the cwd", `cd ${P} && unzip -q a.zip`, P, "member.txt"],
    ["unzip -d", `unzip -q ${P}/a.zip -d ${P}/uz`, `${P}/uz`, "uz"],
    ["patch -o", `patch -o ${P}/p.out ${P}/notes.txt ${P}/x.diff`, `${P}/p.out`, "p.out"],
    ["mktemp -p", `mktemp -p ${P}`, `${P}/tmp.XXXXXXXXXX`, undefined],
    ["mktemp --tmpdir=", `mktemp --tmpdir=${P} t.XXX`, `${P}/t.XXX`, undefined],
    ["install -d of several folders", `install -d -m 755 ${P}/newdir ${P}/out/d`, `${P}/newdir`, "newdir"],
    ["git clone SRC DEST", `git clone -q ${P}/src/proj ${P}/clone`, `${P}/clone`, "clone"],
    ["git clone SRC (the folder named after it)", `cd ${P} && git clone -q src/proj`, `${P}/proj`, "proj"],
    ["git init DIR", `git init -q ${P}/newrepo`, `${P}/newrepo`, "newrepo"],
    ["git init in the cwd", `cd ${P} && git init -q`, `${P}/.git`, ".git"],
    ["git --git-dir=D init", `git --git-dir=${P}/g init -q ${P}/out/r`, `${P}/g`, "g"],
    ["git worktree add", `git -C ${P}/src/proj worktree add -q ${P}/wt`, `${P}/wt`, "wt"],
    ["openssl -out", `openssl rand -out ${P}/r 4`, `${P}/r`, "r"],
    ["openssl --out=", `openssl rand --out=${P}/r 4`, `${P}/r`, "r"],
  ])(
    "refuses %s",
    async (_how, command, file, made) => {
      const r = await b.exec("worker", command);
      const quoted = escapeRegExp(file);
      expectRefused(b, "worker", r, "capability", new RegExp(`file_write on ${quoted} \\(`));
      if (made) expect(b.exists(`${P}/${made}`), made).toBe(false);
      expect(b.exists(`${P}/f.txt`)).toBe(true);
    },
    60_000,
  );

  it.each([
    ["tar -x -P (members' own absolute names)", `cd ${P}/out && tar -xPf ../a.tar`],
    ["unzip -: (members' own ../)", `unzip -q -: ${P}/a.zip -d ${P}/out/uz2`],
  ])(
    "refuses %s: the folder written is the archive's to say, so any is",
    async (_how, command) => {
      const r = await b.exec("worker", command);
      expectRefused(b, "worker", r, "policy", /(tar|unzip) .* writes \/ \(rule system-path-write\)/);
      expect(b.exists(`${P}/out/member.txt`)).toBe(false);
      expect(b.exists(`${P}/out/uz2`)).toBe(false);
    },
    60_000,
  );

  it.each([
    ["UNZIP's -d", `cd ${P}/out && UNZIP="-d ${P}" unzip -q ../a.zip`, "UNZIP"],
    ["TMPDIR for mktemp", `TMPDIR=${P} mktemp`, "TMPDIR"],
    ["GIT_DIR under env for git init", `env GIT_DIR=${P}/g git init -q ${P}/out/r`, "GIT_DIR"],
  ])(
    "refuses %s: the folder written comes from a variable the command sets",
    async (_how, command, variable) => {
      const r = await b.exec("worker", command);
      expectRefused(b, "worker", r, "policy", new RegExp(`the command sets ${variable}`));
      expect(b.exists(`${P}/member.txt`)).toBe(false);
      expect(b.exists(`${P}/g`)).toBe(false);
    },
    60_000,
  );

  it.each([
    [
      "tar -cf into the writable folder",
      `tar -cf ${P}/out/a.tar -C ${P} notes.txt && tar -tf ${P}/out/a.tar`,
      "notes.txt",
    ],
    [
      "tar -x -C the writable folder, from a read-only cwd",
      `tar -xf ${P}/a.tar -C ${P}/out && cat ${P}/out/member.txt`,
      "m",
    ],
    ["tar -x to stdout", `cd ${P} && tar -xOf a.tar`, "m"],
    ["tar -t", `tar -tf ${P}/a.tar`, "member.txt"],
    ["split in the writable folder", `cd ${P}/out && split -l 1 ../notes.txt && cat xab`, "a"],
    ["uniq into the writable folder", `uniq ${P}/notes.txt ${P}/out/u && cat ${P}/out/u`, "b\na"],
    ["gzip -c to a redirect", `gzip -c ${P}/f.txt > ${P}/out/f.gz && ls ${P}/out`, "f.gz"],
    ["unzip -d the writable folder", `unzip -q ${P}/a.zip -d ${P}/out/uz && cat ${P}/out/uz/member.txt`, "m"],
    ["git clone into the writable folder", `cd ${P}/out && git clone -q ../src/proj && ls`, "proj"],
    ["openssl -out into the writable folder", `openssl rand -out ${P}/out/r 4 && ls ${P}/out`, "r"],
  ])(
    "still runs %s",
    async (_how, command, out) => {
      const r = expectOk(await b.exec("worker", command));
      expect(r.output).toContain(out);
    },
    60_000,
  );
});

describe("a bare name a writing program takes is a path in every folder the command may run in", () => {
  it.each([
    ["rm after cd", `cd ${P} && rm notes.txt`, `${P}/notes.txt`],
    ["rm -f after cd", `cd ${P} && rm -f notes.txt`, `${P}/notes.txt`],
    ["touch after cd", `cd ${P} && touch x`, `${P}/x`],
    ["cp's destination after cd", `cd ${P} && cp notes.txt n2`, `${P}/n2`],
    ["ln's link after cd", `cd ${P} && ln notes.txt hard`, `${P}/hard`],
    ["ln TARGET (its link made in the cwd)", `cd ${P} && ln ${P}/m/member.txt`, `${P}/member.txt`],
    ["a cd that may or may not have happened", `cd ${P}/out; cd ${P}; rm notes.txt`, `${P}/notes.txt`],
    ["mkdir -p of a folder that does not exist yet", `cd ${P} && mkdir -p a/b`, `${P}/a/b`],
    ["a redirect after cd", `cd ${P} && > x`, `${P}/x`],
  ])(
    "refuses %s",
    async (_how, command, file) => {
      const r = await b.exec("worker", command);
      // A command that may run in the exec's cwd too (/workspace) may be refused there first.
      const quoted = escapeRegExp(file).replace("/pub/", "(/pub)?/");
      expectRefused(b, "worker", r, "capability", new RegExp(`file_write on ${quoted} \\(`));
      expect(b.exists(`${P}/notes.txt`)).toBe(true);
      expect(b.exists(`${P}/x`)).toBe(false);
    },
    60_000,
  );

  it.each([
    ["rm -f in the writable folder", `cd ${P}/out && touch n && rm -f n notes.txt && ls -a`, ".keep"],
    ["mkdir -p in the writable folder", `cd ${P}/out && mkdir -p a/b && ls`, "a"],
    ["cp to a bare name in the writable folder", `cd ${P}/out && cp ../notes.txt n2 && cat n2`, "b\na"],
    [
      "ln -s TARGET into the cwd, the target only read",
      `cd ${P}/out && ln -s ${P}/notes.txt && cat notes.txt`,
      "b\na",
    ],
    // From the read-only /workspace: a mode, a size, a date is no file.
    ["chmod MODE from a read-only cwd", `touch ${P}/out/c && chmod 600 ${P}/out/c && ls ${P}/out`, "c"],
    ["truncate -s SIZE from a read-only cwd", `truncate -s 0 ${P}/out/c && ls ${P}/out`, "c"],
    ["touch -d DATE from a read-only cwd", `touch -d 2020-01-01 ${P}/out/c && ls ${P}/out`, "c"],
    ["mkdir -m MODE from a read-only cwd", `mkdir -m 755 ${P}/out/m && ls ${P}/out`, "m"],
  ])(
    "still runs %s",
    async (_how, command, out) => {
      const r = expectOk(await b.exec("worker", command));
      expect(r.output).toContain(out);
    },
    60_000,
  );
});

describe("a tracer's or script's own options, read as they read them", () => {
  it.each([
    ["strace -o F -- CMD", `strace -o ${P}/t -- true`, `${P}/t`],
    ["script -a F -c CMD (options after the file)", `script -q -a ${P}/log -c true`, `${P}/log`],
  ])(
    "judges %s: its file is written",
    async (_how, command, file) => {
      const r = await b.exec("worker", command);
      const quoted = escapeRegExp(file);
      expectRefused(b, "worker", r, "capability", new RegExp(`file_write on ${quoted} \\(`));
      expect(b.exists(file)).toBe(false);
    },
    60_000,
  );

  it("runs script -a F -c CMD with F in the writable folder", async () => {
    const r = expectOk(await b.exec("worker", `script -q -a ${P}/out/log -c 'echo hi' && cat ${P}/out/log`));
    expect(r.output).toContain("hi");
  }, 60_000);
});
