// The image's developer and packaging tools whose written files the write table did not know
// (each was judged as a read), and savelog's hook. Each reading was checked against the
// program in the image.

import { describe, expect, it } from "vitest";
import { isAidoError } from "../../src/errors.js";
import { analyzeCommand } from "../../src/security/shell.js";
import { targets } from "../support/write-targets.js";

describe("what the image's developer and packaging tools write", () => {
  it.each([
    ["tempfile -n FILE", "tempfile -n /w/t", "/w/t"],
    ["tempfile --name=FILE", "tempfile --name=/w/t", "/w/t"],
    ["tempfile -d DIR", "tempfile -d /w", "/w"],
    ["tempfile (in /tmp)", "tempfile", "/tmp"],
    ["savelog FILE (rotated)", "savelog /w/log", "/w/log"],
    ["savelog FILE (FILE.0 beside it)", "savelog -l /w/log", "/w"],
    ["savelog -r DIR (relative to FILE's folder)", "savelog -r ../old o/log", "o/../old"],
    ["pod2man IN OUT", "pod2man a.pod /w/a.1", "/w/a.1"],
    ["pod2man IN OUT IN2 OUT2", "pod2man a.pod o/a.1 b.pod /w/b.1", "/w/b.1"],
    ["pod2man -center V IN OUT (one dash, long)", "pod2man -center x a.pod /w/a.1", "/w/a.1"],
    ['pod2man -cent V IN (-c "ent": V is the input, IN the output)', "pod2man -cent x /w/a.pod", "/w/a.pod"],
    ["pod2text IN OUT", "pod2text -w 60 a.pod /w/a.txt", "/w/a.txt"],
    ["pod2html --outfile=F", "pod2html --infile=a.pod --outfile=/w/a.html", "/w/a.html"],
    ["pod2html -outfile F", "pod2html -infile a.pod -outfile /w/a.html", "/w/a.html"],
    ["pod2html's cache in the cwd", "pod2html --infile=a.pod --outfile=o/a.html", "."],
    ["pod2html --cachedir=D", "pod2html --infile=a.pod --cachedir=/w", "/w/pod2htmd.tmp"],
    ["xsubpp -output F", "xsubpp -output /w/a.c a.xs", "/w/a.c"],
    ["xsubpp --output=F", "xsubpp --output=/w/a.c a.xs", "/w/a.c"],
    ["enc2xs -o F", "enc2xs -Q -o /w/e.c a.ucm", "/w/e.c"],
    ["enc2xs -oF (attached)", "enc2xs -o/w/e.c a.ucm", "/w/e.c"],
    ["enc2xs -M NAME (a module in the cwd)", "enc2xs -M My a.ucm", "."],
    ["h2ph -d DIR", "h2ph -d /w a.h", "/w"],
    ["h2ph (perl's site folder)", "h2ph a.h", "/usr/local/lib/x86_64-linux-gnu/perl/5.36.0"],
    ["pygettext3 -o F", "pygettext3 -o /w/m.pot a.py", "/w/m.pot"],
    ["pygettext3 -p DIR (messages.pot)", "pygettext3 -p /w a.py", "/w/messages.pot"],
    ["pygettext3 -d DOMAIN", "pygettext3 -d /w/d a.py", "/w/d.pot"],
    ["pygettext3 (messages.pot in the cwd)", "pygettext3 a.py", "messages.pot"],
    ["py3compile FILE (__pycache__ beside it)", "py3compile /w/a.py", "/w"],
    ["py3compile DIR", "py3compile /w", "/w"],
    ["gcov (NAME.gcov in the cwd)", "gcov -o /w/obj a.c", "."],
    ["gcov-tool merge -o DIR", "gcov-tool merge -o /w d1 d2", "/w"],
    ["gcov-tool merge (merged_profile in the cwd)", "gcov-tool merge d1 d2", "merged_profile"],
    ["gcov-tool rewrite -o DIR", "gcov-tool rewrite -s 2 -o /w d1", "/w"],
    ["gprof -s (gmon.sum in the cwd)", "gprof -b -s a.out gmon.out", "gmon.sum"],
    ["gprof in a cluster", "gprof -bs a.out gmon.out", "gmon.sum"],
    ["gprof --sum", "gprof --sum a.out gmon.out", "gmon.sum"],
    ["dpkg-deb -b DIR OUT", "dpkg-deb -b d /w/x.deb", "/w/x.deb"],
    ["dpkg-deb --build DIR (DIR.deb)", "dpkg-deb --build /w/d/", "/w/d.deb"],
    ["dpkg-deb -x DEB DIR", "dpkg-deb -x x.deb /w", "/w"],
    ["dpkg-deb -R DEB DIR", "dpkg-deb -R x.deb /w", "/w"],
    ["dpkg-deb -e DEB (DEBIAN in the cwd)", "dpkg-deb -e x.deb", "DEBIAN"],
    ["dpkg-split -s FULL (parts beside it)", "dpkg-split -s /w/x.deb", "/w"],
    ["dpkg-split -s FULL PREFIX", "dpkg-split -s x.deb /w/p", "/w"],
    ["dpkg-split -j -o OUT", "dpkg-split -j -o /w/x.deb p1 p2", "/w/x.deb"],
    ["dpkg-split -j (in the cwd)", "dpkg-split -j p1 p2", "."],
    ["localedef PATH", "localedef -i en_US -f UTF-8 /w/l", "/w/l"],
    ["localedef NAME (the system's archive)", "localedef -i en_US -f UTF-8 x.UTF-8", "/usr/lib/locale"],
    ["lesskey -o F", "lesskey -o /w/k in", "/w/k"],
    ["lesskey (~/.less)", "lesskey in", "~/.less"],
    ["setterm --dump (screen.dump in the cwd)", "setterm --dump 1", "screen.dump"],
    ["setterm -dump --file F", "setterm -dump 1 --file /w/s", "/w/s"],
    ["setterm --append N -file F", "setterm --append 1 -file /w/s", "/w/s"],
    ["pygettext3.11 -o F", "pygettext3.11 -o /w/m.pot a.py", "/w/m.pot"],
    ["py3clean DIR", "py3clean /w", "/w"],
    ["zic -d DIR", "zic -d /w tz", "/w"],
    ["zic (the system's zoneinfo)", "zic tz", "/usr/share/zoneinfo"],
    ["zic -t LINK", "zic -d o -t /w/lt tz", "/w/lt"],
    ["iconvconfig -o F", "iconvconfig -o /w/c", "/w/c"],
    ["ptar -c -f F", "ptar -c -f /w/a.tar x", "/w/a.tar"],
    ["ptar -cf F (a cluster)", "ptar -cvf /w/a.tar x", "/w/a.tar"],
    ["ptar -x (into the cwd)", "ptar -x -f a.tar", "."],
    ["h2xs (a module folder in the cwd)", "h2xs -n My a.h", "."],
    ["pl2pm (NAME.pm in the cwd)", "pl2pm a.pl", "."],
    ["bzexe F", "bzexe /w/s", "/w/s~"],
    ["link F1 F2", "link a /w/l", "/w/l"],
    ["rename.ul EXPR REPL F (F)", "rename.ul a b /w/a", "/w/a"],
    ["rename.ul EXPR REPL F (the new name)", "rename.ul a ../../x o/a", "o/../../x"],
    ["rename.ul -l (the last occurrence)", "rename.ul -l a /x oa/a", "oa//x"],
    ["tree -o F", "tree -o /w/t .", "/w/t"],
    ["tree -Lo N F (a cluster)", "tree -Lo 2 /w/t .", "/w/t"],
    ["ptx -G IN OUT", "ptx -G a /w/p", "/w/p"],
    ["ptx --tr IN OUT (--traditional abbreviated)", "ptx --tr a /w/p", "/w/p"],
    ["tree -R -L N DIR (00Tree.html in each folder under DIR)", "tree -R -L 1 -H . /w", "/w"],
    ["tree -R -L N (under the cwd)", "tree -R -L 1", "."],
    ["tree --charset V -R -L N DIR", "tree --charset x -R -L 1 /w", "/w"],
    ["mklost+found (in the cwd)", "mklost+found", "lost+found"],
  ])("judges %s as a write", (_how, cmd, file) => {
    expect(targets(cmd)).toContain(file);
  });

  it.each([
    ["gcov -n", "gcov -n a.c"],
    ["gcov -t", "gcov --stdout a.c"],
    ["pod2man IN (printed)", "pod2man a.pod"],
    ["xsubpp (printed)", "xsubpp a.xs"],
    ["dpkg-deb --ctrl-tarfile", "dpkg-deb --ctrl-tarfile x.deb"],
    ["gprof", "gprof -b a.out gmon.out"],
    ["setterm --foreground", "setterm --foreground red"],
    ["gcov-tool overlap", "gcov-tool overlap d1 d2"],
    ["ptx IN... (inputs only)", "ptx a b"],
    ["rename.ul -n", "rename.ul -n a b /w/a"],
    ["tree -L N", "tree -L 2 /w"],
    ["tree -L N --charset V", "tree -L 2 --charset x /w"],
  ])("keeps %s as a read", (_how, cmd) => {
    expect(targets(cmd)).toEqual([]);
  });

  it("reads gcov's -o as the folder it reads objects from", () => {
    expect(targets("gcov -o /w/obj a.c")).not.toContain("/w/obj");
  });
});

describe("programs that run a program the command does not name", () => {
  it.each([
    ["gprofng collect app", /gprofng collect app runs/],
    ["gp-collect-app", /gp-collect-app runs/],
    ["rmt", /rmt opens the files/],
    ["cpan", /cpan builds and installs/],
    ["cpan5.36-x86_64-linux-gnu .", /cpan builds and installs/],
  ])("refuses %s", (cmd, why) => {
    let error: unknown;
    try {
      analyzeCommand(`${cmd} x`);
    } catch (e) {
      error = e;
    }
    expect(isAidoError(error, "policy_denied"), `${cmd} was not refused`).toBe(true);
    expect(String((error as Error).message)).toMatch(why);
  });
});

describe("savelog -x runs shell code", () => {
  it.each(["savelog -x 'rm -rf /w' log", "savelog -tx 'touch /w/p' log"])("refuses %s", (cmd) => {
    let error: unknown;
    try {
      analyzeCommand(cmd);
    } catch (e) {
      error = e;
    }
    expect(isAidoError(error, "policy_denied"), `${cmd} was not refused`).toBe(true);
    expect(String((error as Error).message)).toMatch(/savelog -x runs its hook/);
  });
});
