// The programs a scan of the image's /usr/bin, /usr/sbin, /bin and /sbin found that the judge
// named nowhere and that write a file the command names (each judged as a read before):
// mke2fs and the mkfs tools, mkswap, wipefs -a, swaplabel -L into a file-system image kept in
// a regular file; chcon's files; faillock --reset --dir; e4crypt set_policy; gp-display-src
// -outfile and streamzip -zipfile. And those whose writes or runs the command does not say:
// ptargrep (extracts matching members anywhere), zless/xzless (less's `+!CMD`),
// the bug reporters (an editor, a mailer), pydoc3.11 (a pager), gp-display-text and instmodsh
// (commands from their input), the account, alternatives and package-state tools, and
// apt-cache/apt-config with -o/-c. Each reading was checked against the program in the image.

import { describe, expect, it } from "vitest";
import { refusalOf, targets } from "../support/write-targets.js";

describe("what the scan's writers write", () => {
  it.each([
    ["mke2fs IMG", "mke2fs -t ext4 -L x /w/img", "/w/img"],
    ["mkfs.ext4 IMG SIZE", "mkfs.ext4 -F /w/img 8M", "/w/img"],
    ["mke2fs -z UNDO", "mke2fs -z /w/u img", "/w/u"],
    ["mkfs -t TYPE IMG", "mkfs -t ext4 /w/img", "/w/img"],
    ["mkfs.minix IMG", "mkfs.minix -n 14 /w/img", "/w/img"],
    ["mkfs.bfs IMG", "mkfs.bfs /w/img", "/w/img"],
    ["mkfs.cramfs DIR OUT", "mkfs.cramfs d /w/c.img", "/w/c.img"],
    ["mkswap FILE", "mkswap -L s /w/swap", "/w/swap"],
    ["wipefs -a IMG", "wipefs -a /w/img", "/w/img"],
    ["wipefs -o OFFSET IMG", "wipefs -o 0x438 /w/img", "/w/img"],
    ["swaplabel -L LABEL FILE", "swaplabel -L x /w/swap", "/w/swap"],
    ["chcon CONTEXT FILE", "chcon system_u:object_r:tmp_t:s0 /w/f", "/w/f"],
    ["chcon -t TYPE FILE (no CONTEXT operand)", "chcon -t tmp_t /w/f", "/w/f"],
    ["faillock --reset --dir DIR", "faillock --dir /w/t --user u --reset", "/w/t"],
    ["e4crypt set_policy POLICY DIR", "e4crypt set_policy 0123456789abcdef /w/d", "/w/d"],
    ["gp-display-src -outfile F", "gp-display-src -outfile /w/s.txt -func a.out", "/w/s.txt"],
    ["streamzip -zipfile=F", "streamzip -zipfile=/w/z.zip", "/w/z.zip"],
    ["streamzip -zipf F (a prefix)", "streamzip -zipf /w/z.zip", "/w/z.zip"],
    ["ptargrep PATTERN TAR (members anywhere: `..` kept)", "ptargrep x /w/a.tar", "/"],
    ["ptargrep --basename (in the cwd)", "ptargrep --basename x /w/a.tar", "."],
  ])("judges %s as a write", (_how, cmd, file) => {
    expect(targets(cmd)).toContain(file);
  });

  it.each([
    ["mke2fs -n", "mke2fs -n /w/img"],
    ["wipefs (lists)", "wipefs /w/img"],
    ["wipefs -n -a", "wipefs -n -a /w/img"],
    ["swaplabel (prints)", "swaplabel /w/swap"],
    ["faillock (prints)", "faillock --dir /w/t --user u"],
    ["gp-display-src -outfile -", "gp-display-src -outfile - -func a.out"],
    ["streamzip (to stdout)", "streamzip -method=store"],
    ["apt-cache policy", "apt-cache policy bash"],
    ["ptargrep -l", "ptargrep -l x /w/a.tar"],
    ["ptargrep --list-only", "ptargrep --list x /w/a.tar"],
    ["zless F", "zless /w/a.gz"],
  ])("keeps %s as a read", (_how, cmd) => {
    expect(targets(cmd)).toEqual([]);
  });

  it.each([
    ["bashbug", "bashbug", /bashbug runs an editor/],
    ["gawkbug", "gawkbug", /gawkbug runs an editor/],
    ["pydoc3.11", "pydoc3.11 -w os", /pydoc3.11 runs a pager/],
    ["gp-display-text", "gp-display-text -script s e.er", /reads its commands/],
    ["instmodsh", "instmodsh", /instmodsh reads its commands/],
    ["useradd -R ROOT", "useradd -R /w u", /rewrites the system's accounts/],
    [
      "update-alternatives --root R",
      "update-alternatives --root /w --install /a b c 1",
      /rewrites the system's/,
    ],
    ["dpkg-statoverride --admindir D", "dpkg-statoverride --admindir /w --add root root 0755 /x", /rewrites/],
    ["pwck FILE", "pwck /w/passwd", /rewrites the system's accounts/],
    ["apt-mark", "apt-mark hold bash", /rewrites the system's/],
    ["apt-cache -o Dir::Cache=D", "apt-cache -o Dir::Cache=/w gencaches", /-o\/-c set where apt writes/],
    ["apt-config -c F", "apt-config -c /w/apt.conf dump", /-o\/-c set where apt writes/],
    ["hwclock --adjfile F", "hwclock --adjfile=/w/a --systohc", /hwclock sets the clock/],
    ["update-ca-certificates", "update-ca-certificates", /runs the hooks/],
    ["dpkg-preconfigure", "dpkg-preconfigure x.deb", /configuration scripts/],
    ["zless +!CMD (less runs it)", "zless '+!touch /w/p' /w/a.gz", /runs a pager command/],
    ["xzless +!CMD", "xzless '+!touch /w/p' /w/a.xz", /runs a pager command/],
  ])("refuses %s", (_how, cmd, why) => {
    expect(refusalOf(cmd)).toMatch(why);
  });
});
