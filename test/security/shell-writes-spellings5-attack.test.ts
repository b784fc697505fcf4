// Spellings of the last writers the exec-boundary change judged, each checked against the
// program in the image, that the write table read as writing less than the program does:
// fsck hands the checker the letters of a cluster that are not its own (`-yz/F` is e2fsck's
// -z F; after a `-` all of them: `--N X` is e2fsck's -N NAME, not fsck's -N); ldconfig -r
// ROOT takes every path it is given as ROOT's (`-l lib/x.so` links in ROOT/lib, `-C c` writes
// ROOT/c); perl's Getopt::Long takes `+` for `--` and long names in any case (`pod2html
// +outfile=F`, `-OUTFILE F`, `pod2man -CENTER C IN OUT`, `pod2text --QUOTES Q IN OUT`,
// `streamzip -ZIPFILE F`).

import { describe, expect, it } from "vitest";
import { refusalOf, targets } from "../support/write-targets.js";

describe("fsck's cluster letters reach the checker", () => {
  it.each([
    ["fsck IMG --N NAME -fy (e2fsck's -N NAME; the image is checked)", "fsck /w/img --N x -fy", "/w/img"],
    ["fsck IMG -yz/F (e2fsck's undo file in a cluster)", "fsck /w/img -yz/w/u", "/w/u"],
    ["fsck IMG --z/F (after the cluster's -)", "fsck /w/img --z/w/u", "/w/u"],
    ["fsck -C 0 IMG -jF (fsck's -C takes the number)", "fsck -C 0 /w/img -j/w/j", "/w/j"],
  ])("judges %s as a write", (_how, cmd, file) => {
    expect(targets(cmd)).toContain(file);
  });

  it.each([
    ["fsck -N IMG", "fsck -N /w/img"],
    ["fsck -sN IMG", "fsck -sN /w/img -- -y"],
    ["fsck --help", "fsck --help"],
  ])("keeps %s as a read", (_how, cmd) => {
    expect(targets(cmd)).toEqual([]);
  });
});

describe("ldconfig -r ROOT takes every path it is given under ROOT", () => {
  it.each([
    ["-r ROOT -l LIB (links beside ROOT/LIB)", "ldconfig -r /w -l lib/libz.so.1.2.13", "/w/lib"],
    ["-r ROOT -l /LIB", "ldconfig -r /w -l /lib/libz.so.1.2.13", "/w//lib"],
    ["-n -r ROOT DIR", "ldconfig -n -r /w lib", "/w/lib"],
    ["-X -i -r ROOT -C CACHE (a relative cache)", "ldconfig -X -i -r /w -C c", "/w/c"],
  ])("judges ldconfig %s as a write", (_how, cmd, file) => {
    expect(targets(cmd)).toContain(file);
  });

  it("still reads -l without -r beside the library", () => {
    expect(targets("ldconfig -l /w/lib/libz.so.1.2.13")).toEqual(["/w/lib"]);
  });
});

describe("perl's Getopt::Long: `+` starts a long option and names match in any case", () => {
  it.each([
    ["pod2html +outfile=F", "pod2html +outfile=/w/a.html --infile=a.pod", "/w/a.html"],
    ["pod2html -OUTFILE=F", "pod2html -OUTFILE=/w/a.html a.pod", "/w/a.html"],
    ["pod2html --OutF F", "pod2html --OutF /w/a.html a.pod", "/w/a.html"],
    ["pod2html +cachedir D", "pod2html +CacheDir /w a.pod", "/w/pod2htmd.tmp"],
    ["pod2man +utf8 IN OUT IN OUT", "pod2man +utf8 a.pod o/x.1 b.pod /w/y.1", "/w/y.1"],
    ["pod2man -CENTER C IN OUT IN OUT", "pod2man -CENTER c a.pod o/x.1 b.pod /w/y.1", "/w/y.1"],
    ["pod2man --CENTER C IN OUT", "pod2man --CENTER c a.pod /w/y.1", "/w/y.1"],
    ["pod2text +loose IN OUT", "pod2text +loose a.pod /w/z.txt", "/w/z.txt"],
    ["pod2text --QUOTES Q IN OUT", "pod2text --QUOTES q a.pod /w/z.txt", "/w/z.txt"],
    ["streamzip +zipfile=F", "streamzip +zipfile=/w/z.zip", "/w/z.zip"],
    ["streamzip -ZIPFILE F", "streamzip -ZIPFILE /w/z.zip", "/w/z.zip"],
  ])("judges %s as a write", (_how, cmd, file) => {
    expect(targets(cmd)).toContain(file);
  });

  it("still reads pod2man -cent as -c ent (a cluster: no long name is cent)", () => {
    expect(targets("pod2man -cent a.pod /w/y.1")).toEqual(["/w/y.1"]);
  });
});

describe("lto-dump is lto1: it writes as a compiler does and loads plugins", () => {
  it.each([
    ["lto-dump -list IN (its assembler output beside IN)", "lto-dump -list /w/x.o", "/w"],
    ["lto-dump-12 -fdump-tree-all IN", "lto-dump-12 -o /v/o.s -fdump-tree-all /w/x.o", "/w"],
    ["lto-dump -o F", "lto-dump -o /w/o.s -list x.o", "/w/o.s"],
    ["lto-dump -fdump-ipa-cgraph=F", "lto-dump -fdump-ipa-cgraph=/w/cg -o /v/o.s x.o", "/w/cg"],
    ["lto-dump -fopt-info-all=F", "x86_64-linux-gnu-lto-dump-12 -fopt-info-all=/w/oi x.o", "/w/oi"],
    ["lto-dump -dumpbase B", "lto-dump -dumpbase /w/b x.o", "/w"],
  ])("judges %s as a write", (_how, cmd, file) => {
    expect(targets(cmd)).toContain(file);
  });

  it("reads lto-dump -o F IN as writing F only", () => {
    expect(targets("lto-dump -o /v/o.s -list /w/x.o")).toEqual(["/v/o.s"]);
  });

  it.each([
    "lto-dump -fplugin=/w/p.so -list x.o",
    "lto-dump-12 -iplugindir=/w -fplugin=p -list x.o",
    "x86_64-linux-gnu-lto-dump-12 -fplugin=/w/p.so x.o",
    "lto-dump-12 @/w/opts x.o",
  ])("refuses %s: a shared object or options the command does not show", (cmd) => {
    expect(refusalOf(cmd)).toMatch(/runs or loads a program|reads options from a file/);
  });
});

describe("gp-display-src reads -outfile as gprofng matches its commands", () => {
  it.each([
    ["-OUTFILE F", "gp-display-src -OUTFILE /w/o -func m", "/w/o"],
    ["--outfile F", "gp-display-src --outfile /w/o -func m", "/w/o"],
    ["-ou F (a prefix)", "x86_64-linux-gnu-gp-display-src -ou /w/o -func m", "/w/o"],
  ])("judges gp-display-src %s as a write", (_how, cmd, file) => {
    expect(targets(cmd)).toContain(file);
  });

  it("still reads -outfile - as printing", () => {
    expect(targets("gp-display-src -outfile - -func m")).toEqual([]);
  });
});

describe("ptargrep's options end at --", () => {
  it("judges ptargrep -- -l TAR (the pattern -l) as extracting anywhere", () => {
    expect(targets("ptargrep -- -l /w/a.tar")).toEqual(["/"]);
    expect(targets("ptargrep -b -- --list-only /w/a.tar")).toEqual(["."]);
  });

  it("still reads ptargrep -l PATTERN TAR as listing", () => {
    expect(targets("ptargrep -l x /w/a.tar")).toEqual([]);
    expect(targets("ptargrep x /w/a.tar +LIST")).toEqual([]);
  });
});

describe("e2fsck -c runs badblocks through sh -c with the file system's name in its code", () => {
  it.each([
    ["e2fsck -c", "e2fsck -c -y 'i;touch x;#'"],
    ["e2fsck -fcy (in a cluster)", "e2fsck -fcy /w/img"],
    ["fsck.ext4 -cc", "fsck.ext4 -cc /w/img"],
    ["fsck IMG -- -c", "fsck /w/img -- -c"],
    ["fsck -yc IMG (a letter fsck passes on)", "fsck -yc /w/img"],
    ["fsck IMG --c", "fsck /w/img --c"],
  ])("refuses %s", (_how, cmd) => {
    expect(refusalOf(cmd)).toMatch(/-c runs badblocks through sh -c/);
  });

  it.each([
    "e2fsck -n /w/img",
    "e2fsck -z /w/c -y /w/img",
    "e2fsck -y -- -c",
    "fsck -C 0 -t ext2 /w/img",
    "fsck -t cramfs --extract=/w/c -- /w/img",
  ])("still judges %s by its writes", (cmd) => {
    expect(() => targets(cmd)).not.toThrow();
  });
});

describe("apt matches its long option names in any case", () => {
  it.each([
    ["apt-cache --OPTION Dir::Cache=D", "apt-cache --OPTION Dir::Cache=/w/ policy"],
    ["apt-cache --Config-File F", "apt-cache --Config-File /w/apt.conf policy"],
    ["apt-config --Option=K=V", "apt-config --Option=Dir::Cache=/w dump"],
  ])("refuses %s", (_how, cmd) => {
    expect(refusalOf(cmd)).toMatch(/-o\/-c set where apt writes/);
  });

  it("still runs apt-cache --QUIET policy", () => {
    expect(targets("apt-cache --QUIET policy bash")).toEqual([]);
  });
});
