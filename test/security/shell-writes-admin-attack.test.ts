// The image's last writing programs the write table judged as reads, each checked against the
// program in the image: fsck runs a checker on a file-system image the agent keeps in a file
// (and passes it the files after `--`), e2undo replays into one, e4defrag rewrites files in
// place, dpkg-divert --rename moves files and rewrites its database, gp-archive copies into
// the experiment, ldconfig -N still links in its root's folders. libnetcfg, perlbug,
// debconf-copydb, vipw/vigr and gp-display-html run what the command does not name: refused.
// And the verdicts that were stricter than the program: tree -RL1 (tree refuses it), ldconfig
// -l (no cache), a pod2html option's value spelled like --outfile.

import { describe, expect, it } from "vitest";
import { refusalOf, targets } from "../support/write-targets.js";

describe("what the image's last system and developer writers write", () => {
  it.each([
    ["fsck -y IMG", "fsck -y /w/img", "/w/img"],
    ["fsck -t TYPE IMG", "fsck -t ext4 /w/img", "/w/img"],
    ["fsck IMG -- -z UNDO (e2fsck's undo file)", "fsck /w/img -- -z /w/u", "/w/u"],
    ["fsck IMG -- -zUNDO", "fsck /w/img -- -z/w/u", "/w/u"],
    [
      "fsck --extract=DIR (a device word that reaches fsck.cramfs)",
      "fsck -t cramfs --extract=/w/d -- /w/img",
      "/w/d",
    ],
    ["fsck with no file system (fstab's)", "fsck -y", "/"],
    ["fsck.cramfs --extract=DIR", "fsck.cramfs --extract=/w/d img", "/w/d"],
    ["fsck.cramfs --ex=DIR (a prefix)", "fsck.cramfs --ex=/w/d img", "/w/d"],
    ["fsck.minix -a IMG", "fsck.minix -a /w/img", "/w/img"],
    ["e2undo UNDO IMG", "e2undo u /w/img", "/w/img"],
    ["e2undo -z UNDO", "e2undo -n -z /w/u2 u img", "/w/u2"],
    ["e4defrag FILE", "e4defrag /w/f", "/w/f"],
    ["e4defrag -v DIR", "e4defrag -v /w", "/w"],
    ["dpkg-divert --admindir D --add F", "dpkg-divert --admindir /w/db --add /x", "/w/db"],
    ["dpkg-divert F (add, the system's database)", "dpkg-divert /x", "/"],
    ["dpkg-divert --root R --rename F", "dpkg-divert --root /w --rename /x", "/w/x"],
    [
      "dpkg-divert --root R --rename F (F.distrib)",
      "dpkg-divert --root /w --rename --add /x",
      "/w/x.distrib",
    ],
    [
      "dpkg-divert --instdir I --divert D --rename",
      "dpkg-divert --admindir /w/db --instdir=/w --divert /y --rename /x",
      "/w/y",
    ],
    [
      "dpkg-divert --rename --remove (the database's name)",
      "dpkg-divert --root /w --rename --remove /x",
      "/w",
    ],
    ["dpkg-divert --rename (under $DPKG_ROOT)", "dpkg-divert --admindir /w/db --rename /x", "/"],
    ["gp-archive EXP", "gp-archive /w/test.1.er", "/w/test.1.er"],
    ["gp-archive -d DIR", "gp-archive -a on -d /w/arch test.1.er", "/w/arch"],
    ["x86_64-linux-gnu-gp-archive EXP", "x86_64-linux-gnu-gp-archive -n /w/e.er", "/w/e.er"],
    ["ldconfig -N -r ROOT (links in ROOT's folders)", "ldconfig -N -r /w", "/w"],
    ["ldconfig -N (links in the system's folders)", "ldconfig -N", "/"],
    ["ldconfig -r ROOT (its aux-cache)", "ldconfig -r /w", "/w/var/cache/ldconfig"],
    ["ldconfig -C F (still links in the system's folders)", "ldconfig -C /w/c", "/"],
  ])("judges %s as a write", (_how, cmd, file) => {
    expect(targets(cmd)).toContain(file);
  });

  it.each([
    ["fsck -N", "fsck -N /w/img"],
    ["fsck.cramfs IMG", "fsck.cramfs /w/img"],
    ["fsck.minix -l IMG", "fsck.minix -l /w/img"],
    ["e2undo -n", "e2undo -n u /w/img"],
    ["e4defrag -c", "e4defrag -c /w/f"],
    ["dpkg-divert --list", "dpkg-divert --list '*'"],
    ["dpkg-divert --truename F", "dpkg-divert --truename /x"],
    ["dpkg-divert --test", "dpkg-divert --test --rename /x"],
    ["gp-archive --help", "gp-archive --help"],
    ["ldconfig -i -N -X (no aux-cache, no links, no cache)", "ldconfig -i -N -X"],
  ])("keeps %s as a read", (_how, cmd) => {
    expect(targets(cmd)).toEqual([]);
  });

  it.each([
    ["libnetcfg -o F", "libnetcfg -o /w/c", /libnetcfg runs its old configuration/],
    ["libnetcfg (./libnet.cfg is perl code)", "libnetcfg", /libnetcfg runs/],
    ["perlbug -F F", "perlbug -t -F /w/r", /perlbug runs an editor/],
    ["perlbug -e EDITOR", "perlbug -e 'sh -c x'", /perlbug runs an editor/],
    ["perlbug -o k (an OK report, mailed or saved)", "perlbug -ok", /perlbug runs an editor/],
    ["perlbug -s -d (-d is -s's value)", "perlbug -s -d", /perlbug runs an editor/],
    ["perlthanks", "perlthanks -t", /perlbug runs an editor/],
    [
      "debconf-copydb",
      "debconf-copydb a b --config=Name:b --config=Driver:File --config=Filename:/w/f",
      /debconf-copydb/,
    ],
    ["vipw", "vipw", /vipw runs the editor/],
    ["vigr", "vigr -s", /vigr runs the editor/],
    ["gp-display-html -o DIR", "gp-display-html -o /w/h test.1.er", /gp-display-html runs shell commands/],
    ["gp-display-html -O 'D; CMD'", "gp-display-html -O 'x;touch /w/p' e.er", /gp-display-html runs shell/],
  ])("refuses %s", (_how, cmd, why) => {
    expect(refusalOf(cmd)).toMatch(why);
  });

  it.each(["perlbug -d", "perlbug -h", "perlbug -v -d"])("runs %s (it prints and exits)", (cmd) => {
    expect(targets(cmd)).toEqual([]);
  });
});

describe("verdicts that were stricter than the program", () => {
  it("reads tree -RL1 as writing nothing: tree refuses the digit and exits before it writes", () => {
    expect(targets("tree -RL1 -H . /w")).toEqual([]);
    expect(targets("tree -o /w/o -x1 /w")).toEqual([]);
  });

  it("still reads tree -RL 1 and tree -L 1 -R as writing each folder", () => {
    expect(targets("tree -RL 1 -H . /w")).toContain("/w");
    expect(targets("tree -L 1 -R -H . /w")).toContain("/w");
  });

  it("reads ldconfig -l as linking beside each library, without the system's cache", () => {
    expect(targets("ldconfig -l /w/lib/libz.so.1.2.13")).toEqual(["/w/lib"]);
  });

  it("reads a pod2html option's value spelled like --outfile as that value", () => {
    expect(targets("pod2html --title --outfile --infile=a.pod --cachedir=/w")).toEqual(["/w/pod2htmd.tmp"]);
    expect(targets("pod2html --css -outfile --infile a.pod --cachedir /w")).toEqual(["/w/pod2htmd.tmp"]);
  });

  it("still reads --outfile after a flag, and an ambiguous prefix as each option", () => {
    expect(targets("pod2html --quiet --outfile /w/a.html --infile a.pod")).toContain("/w/a.html");
    expect(targets("pod2html --c /w/a.html --outfile /w/b.html")).toContain("/w/b.html");
  });
});
