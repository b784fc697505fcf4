// security/shell-refused.ts — the programs the exec judge refuses whatever their arguments
// (or all but a few spellings that only print): what they write or run is not the command's
// to say — package scripts and hooks, a program they profile, an editor or a mailer, perl
// code in a configuration file, shell commands built from their data, requests read from
// their input, or the system's configuration (accounts, alternatives, the package database)
// under a root an option names; and e2fsck's -c, which runs shell code built from a file's
// name. Each reason is the refusal's message. shell-programs.ts puts them in its table.

import { getopt, has } from "./shell-getopt.js";
import { basename, itself, refuse, type Unfolder } from "./shell-unfold.js";

const REFUSED: Record<string, string> = {
  "git-shell": "git-shell runs the commands in ~/git-shell-commands",
  scalar: "scalar runs git with configuration of its own (scalar -c KEY=VALUE, scalar run)",
  apt: "apt installs packages, running their scripts and hooks",
  "apt-get": "apt-get installs packages, running their scripts and hooks",
  aptitude: "aptitude installs packages, running their scripts and hooks",
  "apt-key": "apt-key runs gpg with keys it is handed",
  debconf: "debconf runs the program it is given",
  "dpkg-reconfigure": "dpkg-reconfigure runs package scripts",
  "dpkg-maintscript-helper": "dpkg-maintscript-helper runs package scripts",
  "deb-systemd-invoke": "deb-systemd-invoke runs service managers",
  perldoc: "perldoc runs a pager chosen by the environment",
  gprofng: "gprofng collect app runs the program it profiles",
  "gp-collect-app": "gp-collect-app runs the program it profiles",
  rmt: "rmt opens the files its input names",
  "rmt-tar": "rmt opens the files its input names",
  cpan: "cpan builds and installs modules, running their build scripts",
  // The same program under its versioned name in the image (`cpan .` runs ./Makefile.PL).
  "cpan5.36-x86_64-linux-gnu": "cpan builds and installs modules, running their build scripts",
  "x86_64-linux-gnu-gprofng": "gprofng collect app runs the program it profiles",
  "x86_64-linux-gnu-gp-collect-app": "gp-collect-app runs the program it profiles",
  pydoc3: "pydoc3 runs a pager chosen by the environment",
  debugfs:
    "debugfs runs the requests -R, -f or its input give, which write the files they name (dump, rdump)",
  libnetcfg: "libnetcfg runs its old configuration (-i F, else ./libnet.cfg) as perl code",
  "debconf-copydb": "debconf-copydb writes the database its configuration (--config, debconf.conf) names",
  vipw: "vipw runs the editor $VISUAL or $EDITOR names on the system's account files",
  vigr: "vigr runs the editor $VISUAL or $EDITOR names on the system's group files",
  "gp-display-html":
    "gp-display-html runs shell commands built from its arguments and the experiment's files",
  "x86_64-linux-gnu-gp-display-html":
    "gp-display-html runs shell commands built from its arguments and the experiment's files",
  bashbug: "bashbug runs an editor ($EDITOR) and a mailer",
  gawkbug: "gawkbug runs an editor ($EDITOR) and a mailer",
  "pydoc3.11": "pydoc3.11 runs a pager chosen by the environment",
  "gp-display-text": "gp-display-text reads its commands (outfile F among them) from -script F or its input",
  "x86_64-linux-gnu-gp-display-text":
    "gp-display-text reads its commands (outfile F among them) from -script F or its input",
  instmodsh: "instmodsh reads its commands from its input (one writes a tarball)",
  "dpkg-preconfigure": "dpkg-preconfigure runs packages' configuration scripts",
  "update-ca-certificates": "update-ca-certificates runs the hooks in /etc/ca-certificates/update.d",
  hwclock: "hwclock sets the clock and writes --adjfile F or /etc/adjtime",
};

/**
 * perlbug and perlthanks (getopts "Adhva:s:b:f:F:r:e:SCc:to:n:T:p:") run an editor (-e, else
 * $VISUAL, $EDITOR or `editor`) and a mailer, and save the report to -F F, ./perlbug.rep or
 * a name their input gives. Only -h and -d (help, the configuration dump), which print and
 * exit once the options are read, are judged: as reads.
 */
const perlbug: Unfolder = (args) => {
  for (let k = 1; k < args.length; k++) {
    const a = args[k]!;
    if (a.dynamic || a.value === "--" || !/^-./s.test(a.value)) break;
    for (const [j, l] of [...a.value].entries()) {
      if (j === 0) continue;
      if (l === "d" || l === "h") return itself();
      if (!"asbfFrecnoTp".includes(l)) continue;
      if (j + 1 === a.value.length) k++; // its value is the next word
      break;
    }
  }
  return refuse("perlbug runs an editor and a mailer, and saves its report where -F or its input says");
};

/**
 * The tools that rewrite the system's accounts, alternatives, services and package state:
 * files of the system's (refused as system paths if they were judged), or of the tree an
 * option names (useradd -R/-P, update-alternatives --root, dpkg-statoverride --admindir).
 */
const SYSTEM_STATE = ["useradd", "userdel", "usermod", "groupadd", "groupdel", "groupmod", "groupmems"];
SYSTEM_STATE.push("newusers", "chpasswd", "chgpasswd", "passwd", "chfn", "chsh", "chage", "expiry");
SYSTEM_STATE.push("gpasswd", "grpconv", "grpunconv", "pwconv", "pwunconv", "pwck", "grpck", "cppw", "cpgr");
SYSTEM_STATE.push("adduser", "addgroup", "deluser", "delgroup", "add-shell", "remove-shell", "update-shells");
SYSTEM_STATE.push("update-passwd", "shadowconfig", "mkhomedir_helper", "unix_update", "pam-auth-update");
SYSTEM_STATE.push("update-alternatives", "dpkg-statoverride", "dpkg-trigger", "dpkg-fsys-usrunmess");
SYSTEM_STATE.push("debconf-set-selections", "debconf-communicate", "deb-systemd-helper", "update-rc.d");
SYSTEM_STATE.push("apt-mark", "apt-cdrom");
for (const n of SYSTEM_STATE)
  REFUSED[n] =
    `${n} rewrites the system's accounts, services or package state (or those under a root its options name)`;

/**
 * apt-cache and apt-config: -o/-c set where apt writes (Dir::Cache…) and what it runs. apt
 * matches a long name in any case (`--OPTION Dir::Cache=D` wrote D's caches, seen in the image).
 */
const aptQuery: Unfolder = (args) =>
  args.slice(1).some((a) => a.dynamic || /^(-[^-]*[oc]|--option|--config-file)/.test(longLower(a.value)))
    ? refuse(`${args[0]!.value} -o/-c set where apt writes and what it runs`)
    : itself();

/**
 * e2fsck -c runs badblocks through popen(): `sh -c` with the file system's name in its code
 * (`e2fsck -c -y 'i;touch x;#'` ran touch, seen in the image), which no verdict lists. fsck
 * hands the checker every letter of a cluster that is not its own, and every word after `--`:
 * a `c` in any of its option words (those with `=` are file systems) is refused too.
 */
const badblocksScan: Unfolder = (args) => {
  const name = basename(args[0]!.value);
  const words = args.slice(1).map((a) => a.value);
  const scans =
    name === "fsck"
      ? words.some((w) => /^-[^=]*c/s.test(w) && !w.includes("="))
      : has(getopt(["", ...words], 1, { short: "CBEMbIjPlLNz", long: {} }), "c");
  return scans
    ? refuse(`${name} -c runs badblocks through sh -c, with the file system's name in its shell code`)
    : itself();
};

/** A `--name…` word with its name in lower case (programs that match long names in any case). */
const longLower = (w: string): string => (w.startsWith("--") ? w.toLowerCase() : w);

export const REFUSING: readonly [string, Unfolder][] = [
  ...["e2fsck", "fsck.ext2", "fsck.ext3", "fsck.ext4", "fsck"].map((n): [string, Unfolder] => [
    n,
    badblocksScan,
  ]),
  ["apt-cache", aptQuery],
  ["apt-config", aptQuery],
  ...Object.entries(REFUSED).map(([n, why]): [string, Unfolder] => [n, () => refuse(why)]),
  ["perlbug", perlbug],
  ["perlthanks", perlbug],
];

/** The programs refused whatever their arguments (not those with spellings that only print). */
export const REFUSED_NAMES: ReadonlySet<string> = new Set(Object.keys(REFUSED));
