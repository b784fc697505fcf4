// security/shell-value-slots.ts — where a run-time word cannot be an option. A program whose
// options run programs (tar, git, find...) is refused when a word known only at run time
// could turn out to be one of its options (shell-runtime-args.ts, runtimeOptions). But a word
// right after an option that takes a value is that value, whatever it holds: `tar -xf "$f"`,
// `git commit -m "$msg"`, `find . -name "$p"`. Such a value slot is accepted when:
//   - the word is one argument (quoted: no field splitting, no glob);
//   - the option's value is data — a file, a folder, a message, a pattern, a number — never
//     one that names a program or code (tar -I, -F, --to-command; git --upload-pack...);
//   - every option before it is one this table knows, flag or value: an option it does not
//     know may take a value of its own, and then the "option" after it is that value and the
//     run-time word an option (`tar --exclude -f "$x"`: -f is the pattern, $x an option).
// Each program's own table reads a run-time value as a value too (shell-tar.ts, shell-git.ts,
// find in shell-wrappers.ts), so nothing after it is misread.
//
// find also takes an unquoted glob as a pattern's value (`find . -name *.txt`) when every
// name the glob can match holds a `.` or a `/` outside brackets: dash puts the matches in its
// place, the first is the value, and any other is a word no find primary or operator spells
// (they are letters, digits, `(`, `)`, `!`, `,`), which find refuses while it reads its
// expression, before it runs anything ("paths must precede expression", seen in the image).

import { gitSubcommandArgv } from "./shell-git.js";
import { type Arg, basename } from "./shell-unfold.js";

/** A program's options, as far as value slots go. */
interface OptionTable {
  /** Options that take a separate value. */
  value: readonly string[];
  /** Those of them whose value is data. */
  data: readonly string[];
  /** Options that take no value (or only an attached one). */
  flags: readonly string[];
}

const w = (names: string): string[] => names.split(" ");

/** GNU tar 1.34 (`tar --help` in the image): every short option, and the common long ones. */
const TAR: OptionTable = {
  value: [..."bCfFgHIKLNTVX"]
    .map((l) => `-${l}`)
    .concat(
      w("--file --directory --files-from --exclude-from --listed-incremental --blocking-factor --label"),
      w("--format --starting-file --newer --after-date --tape-length --info-script --new-volume-script"),
      w("--use-compress-program --to-command --checkpoint-action --rsh-command --rmt-command"),
    ),
  data: [..."bCfgHKLNTVX"]
    .map((l) => `-${l}`)
    .concat(
      w("--file --directory --files-from --exclude-from --listed-incremental --blocking-factor --label"),
    ),
  flags: [..."AcdrtuxGnSkUWOmpsMBiajJzZhPlRvw"]
    .map((l) => `-${l}`)
    .concat(
      w("--extract --get --create --list --append --update --diff --compare --delete --verbose --totals"),
      w("--gzip --gunzip --bzip2 --xz --lzma --lzip --lzop --zstd --compress --auto-compress --force-local"),
      w("--keep-old-files --overwrite --same-owner --no-same-owner --numeric-owner --preserve-permissions"),
      w("--same-permissions --no-same-permissions --to-stdout --one-file-system --sparse --remove-files"),
      w("--dereference --ignore-zeros --recursion --no-recursion --wildcards --no-wildcards --verify"),
    ),
};

/** git 2.39's subcommands whose options this table knows (`git SUB -h` in the image). */
const GIT: Record<string, OptionTable> = {
  commit: {
    value: w("-m --message -F --file --author --date -C --reuse-message -c --reedit-message --fixup").concat(
      w("--squash -t --template --cleanup --trailer --pathspec-from-file"),
    ),
    data: w("-m --message -F --file --author --date -C --reuse-message -c --reedit-message"),
    flags: w(
      "-q --quiet -v --verbose --reset-author -s --signoff -e --edit --status -S --gpg-sign -a --all",
    ).concat(
      w("-i --include --interactive -p --patch -o --only -n --no-verify --dry-run --short --branch"),
      w("--ahead-behind --porcelain --long -z --null --amend --no-post-rewrite -u --untracked-files"),
      w("--allow-empty --allow-empty-message --pathspec-file-nul"),
    ),
  },
  tag: {
    value: w(
      "-m --message -F --file --cleanup -u --local-user --contains --merged --sort --points-at --format",
    ),
    data: w("-m --message -F --file"),
    flags: w(
      "-l --list -n -d --delete -v --verify -a --annotate -e --edit -s --sign -f --force --create-reflog",
    ).concat(w("--column --color -i --ignore-case")),
  },
  merge: {
    value: w("--cleanup -s --strategy -X --strategy-option -m --message -F --file --into-name"),
    data: w("-m --message -F --file"),
    flags: w(
      "-n --stat --summary --log --squash --commit -e --edit --ff --ff-only --rerere-autoupdate",
    ).concat(
      w("--verify-signatures -v --verbose -q --quiet --abort --quit --continue --allow-unrelated-histories"),
      w("--progress -S --gpg-sign --autostash --overwrite-ignore --signoff"),
    ),
  },
  stash: {
    value: w("-m --message --pathspec-from-file"),
    data: w("-m --message"),
    flags: w(
      "-p --patch -S --staged -k --keep-index -q --quiet -u --include-untracked -a --all --pathspec-file-nul",
    ),
  },
  checkout: {
    value: w("-b -B --conflict --orphan --pathspec-from-file"),
    data: w("-b -B --orphan"),
    flags: w(
      "-l --guess --overlay -q --quiet --recurse-submodules --progress -m --merge -d --detach -t --track",
    ).concat(
      w("-f --force --overwrite-ignore --ignore-other-worktrees -2 --ours -3 --theirs -p --patch"),
      w("--ignore-skip-worktree-bits --pathspec-file-nul"),
    ),
  },
  switch: {
    value: w("-c --create -C --force-create --conflict --orphan"),
    data: w("-c --create -C --force-create --orphan"),
    flags: w(
      "--guess --discard-changes -q --quiet --recurse-submodules --progress -m --merge -d --detach",
    ).concat(w("-t --track -f --force --overwrite-ignore --ignore-other-worktrees")),
  },
};

/**
 * curl 7.88 (`curl --help all` in the image): every short option with a value, the common long
 * ones, and the common flags. Every value is data but -K/--config's and --engine's (files of
 * options, a shared object), which shell-curl.ts refuses anyway. curl's long options take
 * their value as the next argument only (`--output=F` is no option of curl's).
 */
const CURL_VALUE_LETTERS = [..."AbcCdDeEFHmoPQrtTuUwxXyYz"].map((l) => `-${l}`);
const CURL_DATA_LONG = w(
  "--output --output-dir --dump-header --cookie --cookie-jar --data --data-binary",
).concat(
  w("--data-raw --data-urlencode --data-ascii --json --form --form-string --header --user-agent --referer"),
  w("--request --url --user --max-time --connect-timeout --retry --retry-delay --range --write-out"),
  w("--upload-file --cacert --capath --cert --key --proxy --resolve --limit-rate --max-filesize"),
  w("--oauth2-bearer --unix-socket --interface --continue-at --time-cond --trace --trace-ascii --stderr"),
);
const CURL: OptionTable = {
  value: [...CURL_VALUE_LETTERS, ...CURL_DATA_LONG, "--config", "--engine"],
  data: [...CURL_VALUE_LETTERS.filter((o) => o !== "-K"), ...CURL_DATA_LONG],
  flags: [..."0123456#:aBfGiIjJklLMnNOpqRsSvVZ"]
    .map((l) => `-${l}`)
    .concat(
      w("--silent --show-error --fail --fail-with-body --location --location-trusted --include --head"),
      w("--verbose --insecure --compressed --remote-name --remote-name-all --remote-header-name --get"),
      w("--create-dirs --no-buffer --progress-bar --disable --globoff --http1.1 --http2 --ipv4 --ipv6"),
      w("--no-progress-meter --raw --tcp-nodelay --next --no-keepalive --fail-early --remote-time"),
    ),
};

/** GNU find 4.9: tests and actions with a value, and those without. */
const FIND_DATA = w("-name -iname -path -ipath -wholename -iwholename -lname -ilname -regex -iregex").concat(
  w("-newer -anewer -cnewer -samefile -user -group -perm -size -type -xtype -maxdepth -mindepth"),
  w("-mtime -atime -ctime -mmin -amin -cmin -links -inum -uid -gid -used -fstype -regextype -printf"),
);
const FIND: OptionTable = {
  value: [...FIND_DATA, ...w("-fprint -fprint0 -fls -context -files0-from")],
  data: FIND_DATA,
  flags: w(
    "-print -print0 -ls -delete -quit -prune -true -false -empty -readable -writable -executable",
  ).concat(
    w("-nouser -nogroup -depth -d -follow -mount -xdev -noleaf -daystart -ignore_readdir_race"),
    w("-noignore_readdir_race -warn -nowarn -not -a -and -o -or -H -L -P"),
  ),
};
const FIND_EXECS = w("-exec -execdir -ok -okdir");
/** find's pattern tests, the ones that may take an unquoted glob (see the header). */
const FIND_PATTERNS = w("-name -iname -path -ipath -wholename -iwholename");

/**
 * Value slots of args[from..]: an option `table.data` lists takes the next argument. Scanning
 * stops at `--`, and at an option the table does not know (it may take a value). Short
 * options cluster (`-am MSG` is -a and -m MSG) when `cluster`.
 */
function slots(args: readonly Arg[], from: number, table: OptionTable, cluster: boolean): Set<number> {
  const out = new Set<number>();
  const known = (o: string) => table.flags.includes(o) || table.value.includes(o);
  for (let i = from; i < args.length; i++) {
    const a = args[i]!;
    if (a.dynamic || !a.value.startsWith("-") || a.value === "-") continue;
    const v = a.value;
    if (v === "--") break;
    if (v.startsWith("--")) {
      const eq = v.indexOf("=");
      if (eq >= 0 ? !known(v.slice(0, eq)) : !known(v)) break;
      if (eq < 0 && table.value.includes(v)) {
        if (table.data.includes(v)) out.add(i + 1);
        i++;
      }
      continue;
    }
    if (known(v)) {
      if (table.value.includes(v)) {
        if (table.data.includes(v)) out.add(i + 1);
        i++;
      }
      continue;
    }
    if (!cluster) break;
    // `-xzf ARCHIVE`: flags, then at most one value option, whose value is the rest or the next argument.
    const letters = [...v.slice(1)].map((l) => `-${l}`);
    const k = letters.findIndex((l) => !table.flags.includes(l));
    if (k < 0) continue;
    if (!table.value.includes(letters[k]!)) break;
    if (k === letters.length - 1) {
      if (table.data.includes(letters[k]!)) out.add(i + 1);
      i++;
    }
  }
  return out;
}

function tarSlots(args: readonly Arg[]): Set<number> {
  const first = args[1];
  if (!first || first.dynamic || first.value.startsWith("-")) return slots(args, 1, TAR, true);
  // Old style (`tar xzf ARCHIVE DIR`): each value letter takes the next argument, in order.
  const out = new Set<number>();
  let i = 2;
  for (const letter of first.value) {
    const l = `-${letter}`;
    if (!TAR.flags.includes(l) && !TAR.value.includes(l)) return out;
    if (!TAR.value.includes(l)) continue;
    if (TAR.data.includes(l)) out.add(i);
    i++;
  }
  for (const s of slots(args, i, TAR, true)) out.add(s);
  return out;
}

function gitSlots(args: readonly Arg[]): Set<number> {
  const sub = gitSubcommandArgv(args.map((a) => a.value));
  const table = sub ? GIT[sub[1]!] : undefined;
  if (!sub || !table) return new Set();
  return slots(args, args.length - sub.length + 2, table, true);
}

function findSlots(args: readonly Arg[]): Set<number> {
  const out = new Set<number>();
  let from = 1;
  for (let i = 1; i <= args.length; i++) {
    const a = args[i];
    if (a === undefined || (!a.dynamic && FIND_EXECS.includes(a.value))) {
      for (const s of slots(args.slice(0, i), from, FIND, false)) out.add(s);
      // The command an -exec runs ends at `;` or `+`; what it holds is judged as a command.
      while (i + 1 < args.length && !(args[i + 1]!.value === ";" || args[i + 1]!.value === "+")) i++;
      from = i + 2;
      i++;
    }
  }
  return out;
}

/** A glob whose every match holds a `.` or a `/` outside a bracket expression (see the header). */
const spellsNoFindToken = (glob: string): boolean => /[./]/.test(glob.replace(/\[[^\]]*\]/g, ""));

/**
 * Whether the run-time word args[at] of program `name` stands where the program takes it as
 * the value of a data option, and is one argument there (see the header).
 */
export function isDataValue(name: string, args: readonly Arg[], at: number): boolean {
  const a = args[at]!;
  const program = basename(name);
  const found =
    program === "tar"
      ? tarSlots(args)
      : program === "git"
        ? gitSlots(args)
        : program === "find"
          ? findSlots(args)
          : program === "curl"
            ? slots(args, 1, CURL, true)
            : new Set<number>();
  if (!found.has(at)) return false;
  if (a.fields === "one") return true;
  return (
    program === "find" &&
    a.fields === "glob" &&
    FIND_PATTERNS.includes(args[at - 1]!.value) &&
    spellsNoFindToken(a.value)
  );
}
