// security/shell-git.ts — git runs programs in many ways: configuration given on its
// command line (`-c core.pager=...`, `-c alias.x=!cmd`, `--config-env`), options that name
// programs (`--upload-pack`, `--receive-pack`, `--exec`, `rebase --exec`, `bisect run`,
// `submodule foreach`, `filter-branch`), `ext::` URLs (a command as a transport), ssh URLs
// (it runs ssh), a pager (`-p`), `git config` writing a key whose value is a program, and
// a subcommand that is not one of git's own (an alias from .git/config: `p = push`, `x =
// !cmd`). Those are refused (or, for ssh, unfolded) here. Hooks and the fsmonitor are
// switched off by the executor's environment (exec.ts SAFETY_ENV). What else git reads from
// files the agent can write — filter, diff and merge drivers, textconv, credential helpers,
// editors and other programs a repository's configuration names — is code the analysis does
// not read: the exec grant on git decides, and the Landlock domain bounds it
// (docs/security.md, "git with a writable repository").

import { GIT_COMMANDS } from "./shell-git-commands.js";
import { type Arg, itself, refuse, type UnfoldStep } from "./shell-unfold.js";

/** Global options that take a separate value (or an attached one after `=`). */
const GLOBAL_VALUE = new Set(["-C", "-c", "--git-dir", "--work-tree", "--namespace", "--config-env"]);
for (const o of ["--super-prefix", "--attr-source", "--shallow-file"]) GLOBAL_VALUE.add(o);
/** Global options that take a value only after `=`. */
const GLOBAL_ATTACHED = new Set(["--exec-path", "--list-cmds"]);
/** Global flags (git.c's handle_options, which matches exactly and rejects any other option). */
const GLOBAL_FLAGS = new Set(["-p", "--paginate", "-P", "--no-pager", "--no-replace-objects", "--bare"]);
for (const o of ["--literal-pathspecs", "--glob-pathspecs", "--noglob-pathspecs", "--icase-pathspecs"]) {
  GLOBAL_FLAGS.add(o);
}
for (const o of ["--no-optional-locks", "--no-lazy-fetch", "--no-advice", "--exec-path", "--html-path"]) {
  GLOBAL_FLAGS.add(o);
}
for (const o of ["--man-path", "--info-path", "-h", "--help", "-v", "--version"]) GLOBAL_FLAGS.add(o);

interface GlobalScan {
  /** Index of the subcommand (args.length when there is none). */
  sub: number;
  /** Each global option with the index of its value (-1 for a flag). */
  options: { name: string; value: string | undefined; at: number }[];
  /** An option git does not have: git refuses it, and the analysis cannot tell where the subcommand is. */
  unknown?: string;
}

/**
 * git's global options, read as git.c does. Any other option is reported as unknown: taking
 * it for a flag let `git --shallow-file F push` be judged as the subcommand `F`.
 */
function scanGlobals(argv: readonly string[]): GlobalScan {
  const options: GlobalScan["options"] = [];
  let i = 1;
  for (; i < argv.length; i++) {
    const v = argv[i]!;
    if (!v.startsWith("-")) break;
    const eq = v.startsWith("--") ? v.indexOf("=") : -1;
    const name = eq < 0 ? v : v.slice(0, eq);
    if (eq >= 0 && (GLOBAL_VALUE.has(name) || GLOBAL_ATTACHED.has(name))) {
      options.push({ name, value: v.slice(eq + 1), at: i });
    } else if (eq < 0 && GLOBAL_VALUE.has(name)) {
      options.push({ name, value: argv[i + 1], at: i + 1 });
      i++;
    } else if (eq < 0 && GLOBAL_FLAGS.has(name)) options.push({ name, value: undefined, at: -1 });
    else return { sub: i, options, unknown: v };
  }
  return { sub: Math.min(i, argv.length), options };
}

/** Config keys (lower-cased; `*` one subsection) whose value names a program or pulls in other config. */
const PROGRAM_KEYS = [
  /^core\.(pager|editor|sshcommand|fsmonitor|hookspath|askpass|gitproxy)$/,
  /^(sequence\.editor|gpg\.program|gpg\..+\.program|diff\.external|init\.templatedir)$/,
  /^credential\.(.+\.)?helper$/,
  /^(diff\..+\.(command|textconv)|filter\..+\.(clean|smudge|process)|merge\..+\.driver)$/,
  /^(alias|pager)\..+$/,
  /^(uploadpack\.packobjectshook|remote\..+\.(uploadpack|receivepack|vcs)|protocol\..*allow)$/,
  /^(include\.path|includeif\..+\.path)$/,
  /^((mergetool|difftool|man|browser)\..+\.(cmd|path)|web\.browser|instaweb\..+)$/,
  /^(sendemail\..*(sendmailcmd|smtpserver|tocmd|cccmd|headercmd)|submodule\..+\.update|core\.editor)$/,
  // Seen running their command in the image: trailer.<t>.cmd (interpret-trailers, commit
  // --trailer), gpg.ssh.defaultKeyCommand (commit -S), core.alternateRefsCommand (a push into
  // a repository with alternates); and imap.tunnel, interactive.diffFilter, tar.<f>.command
  // (archive --format), guitool.<t>.cmd, which git documents as commands it runs.
  /^(trailer\..+\.(cmd|command)|gpg\.ssh\.defaultkeycommand|core\.alternaterefscommand|imap\.tunnel)$/,
  /^(interactive\.difffilter|tar\..+\.command|guitool\..+\.cmd)$/,
];

function isProgramConfigKey(key: string): boolean {
  const k = key.toLowerCase();
  return PROGRAM_KEYS.some((re) => re.test(k));
}

/**
 * Keys `git -c` may set: identity and display settings, which name no program and pull in no
 * other configuration (`git -c user.name=A -c user.email=B commit -m M` is how a model
 * commits in a fresh container). Any other key is refused: the list of keys that run
 * programs grows with every git release.
 */
const HARMLESS_KEYS = ["user.name", "user.email", "author.name", "author.email", "committer.name"].concat([
  "committer.email",
  "color.ui",
  "core.quotepath",
  "init.defaultbranch",
  "advice.detachedhead",
]);

/** `KEY=VALUE` or `KEY` (true) for one of HARMLESS_KEYS (section and name in any case). */
function isHarmlessConfig(setting: string): boolean {
  const eq = setting.indexOf("=");
  return HARMLESS_KEYS.includes((eq < 0 ? setting : setting.slice(0, eq)).toLowerCase());
}

const CONFIG_REFUSAL =
  "sets git configuration, where keys like core.pager, core.sshCommand or alias.* run programs";

/** Subcommand options that name a program, by subcommand ("*": any). */
const PROGRAM_OPTIONS: Record<string, readonly string[]> = {
  clone: ["-u", "--upload-pack", "--template", "-c", "--config"],
  fetch: ["--upload-pack"],
  pull: ["--upload-pack"],
  // --exec: ls-remote's hidden name for --upload-pack (run through sh for a local repository).
  "ls-remote": ["--upload-pack", "-u", "--exec"],
  "fetch-pack": ["--upload-pack", "--exec"],
  push: ["--receive-pack", "--exec"],
  "send-pack": ["--receive-pack", "--exec"],
  archive: ["--exec"],
  rebase: ["-x", "--exec", "-i", "--interactive"],
  init: ["--template"],
  // -O[CMD]: the matching files are opened with CMD, run by sh, terminal or not.
  grep: ["-O", "--open-files-in-pager"],
  "*": ["--ext-diff", "--textconv"],
};

/** Subcommands that run commands, tools or editors named by arguments or configuration. */
const REFUSED_SUBCOMMANDS: Record<string, string> = {
  "filter-branch": "runs its filters as shell code",
  difftool: "runs a diff tool from its options or configuration",
  mergetool: "runs a merge tool from its options or configuration",
  instaweb: "starts a web server program",
  "web--browse": "starts a browser program",
  "credential-cache": "starts a credential daemon",
  daemon: "starts a server that runs hooks",
  "difftool--helper": "runs a diff tool from its configuration",
  "remote-ext": "runs the command its arguments name as a transport",
  shell: "runs the commands in ~/git-shell-commands",
  "for-each-repo": "runs a git command in each repository a configuration key lists",
  // git's internal helpers: the porcelain around them is judged, they are not.
  "submodule--helper":
    "runs what `git submodule` does underneath: foreach runs its argument through sh in each submodule",
  "bisect--helper": "runs what `git bisect` does underneath: --bisect-run runs a command",
  "credential-cache--daemon": "starts a credential daemon",
  "fsmonitor--daemon": "starts a file system monitor daemon",
  "checkout--worker": "is git's internal checkout worker, which runs filters",
};

/** The operand that is a repository URL, for the subcommands that take one (ssh URLs run ssh). */
function urlOperand(sub: string, rest: Arg[]): Arg | undefined {
  const remote = rest.find((a) => a.value.startsWith("--remote="));
  if (sub === "archive" && remote) return { ...remote, value: remote.value.slice("--remote=".length) };
  const operands = rest.filter((a) => a.dynamic || !a.value.startsWith("-"));
  if (["clone", "fetch", "pull", "push", "ls-remote"].includes(sub)) return operands[0];
  if (sub === "remote" && ["add", "set-url"].includes(operands[0]?.value ?? "")) return operands[2];
  if (sub === "submodule" && operands[0]?.value === "add") return operands[1];
  return undefined;
}

export function git(args: Arg[]): UnfoldStep {
  const dirs: Arg[] = [];
  const scan = scanGlobals(args.map((a) => a.value));
  const dynamic = args.slice(1, scan.sub + 1).find((a) => a.dynamic);
  if (dynamic) return refuse(`git with a run-time option or subcommand (${dynamic.value})`);
  if (scan.unknown !== undefined) {
    return refuse(`git ${scan.unknown} is not one of git's global options; the subcommand cannot be told`);
  }
  for (const o of scan.options) {
    if (o.name === "-c" && isHarmlessConfig(o.value ?? "")) continue;
    if (o.name === "-c" || o.name === "--config-env") {
      return refuse(
        `git ${o.name} ${CONFIG_REFUSAL} (${o.value ?? ""}); git -c may set only ${HARMLESS_KEYS.join(", ")}`,
      );
    }
    if (o.name === "--exec-path" && o.value !== undefined)
      return refuse("git --exec-path= chooses the programs git runs");
    if (o.name === "-p" || o.name === "--paginate")
      return refuse("git -p runs a pager chosen by configuration");
    if (["-C", "--git-dir", "--work-tree"].includes(o.name) && o.value !== undefined) {
      dirs.push(args[o.at]!.value === o.value ? args[o.at]! : { value: o.value, dynamic: false });
    }
  }
  const i = scan.sub;
  const sub = args[i]?.value;
  if (sub === undefined) return itself({ dirs });
  const rest = args.slice(i + 1);
  if (!GIT_COMMANDS.has(sub)) {
    return refuse(
      `git ${sub}: an alias or unknown git command: aliases run what .git/config says; name one of git's own commands`,
    );
  }
  if (REFUSED_SUBCOMMANDS[sub]) return refuse(`git ${sub} ${REFUSED_SUBCOMMANDS[sub]}`);
  if (sub === "bisect" && rest[0]?.value === "run") return refuse("git bisect run runs a command");
  if (sub === "submodule" && rest.some((a) => a.value === "foreach")) {
    return refuse("git submodule foreach runs a shell command in each submodule");
  }
  if (sub === "config") {
    const why = configWrite(rest);
    if (why) return refuse(why);
  }
  const forbidden = [...(PROGRAM_OPTIONS[sub] ?? []), ...PROGRAM_OPTIONS["*"]!];
  // A short one is that option however it is written: alone, with its value attached
  // (`-u<CMD>`, `-O<CMD>`) or in a cluster (`-iO<CMD>`), as git's option parser reads it.
  const short = forbidden.filter((f) => /^-[A-Za-z]$/.test(f)).map((f) => f[1]!);
  for (const a of rest) {
    if (a.dynamic) continue;
    const opt = a.value.split("=")[0]!;
    // git's option parser takes any unambiguous prefix: `--upload-pa=CMD` is --upload-pack.
    const abbreviates = opt.startsWith("--") && opt.length > 2 && forbidden.some((f) => f.startsWith(opt));
    const clustered = /^-[^-]/.test(a.value) && [...a.value.slice(1)].some((l) => short.includes(l));
    if (forbidden.includes(opt) || abbreviates)
      return refuse(`git ${sub} ${opt} names a program for git to run`);
    if (clustered) {
      return refuse(
        `git ${sub} ${a.value.slice(0, 12)}${a.value.length > 12 ? "..." : ""}: one of -${short.join(", -")} (naming a program for git to run) in a cluster or with its value attached`,
      );
    }
    if (/(^|[^A-Za-z0-9])ext::/.test(a.value))
      return refuse(`git ${sub} ${a.value}: ext:: URLs run a command`);
  }
  const run: Arg[][] = [];
  const url = urlOperand(sub, rest);
  if (url?.dynamic) return refuse(`git ${sub} with a run-time URL, which may name a transport program`);
  if (url && isSshUrl(url.value)) run.push([{ value: "ssh", dynamic: false }]);
  return {
    keepSelf: true,
    run,
    code: [],
    dirs,
    openArgs: run.length > 0,
    helpers: ["git", "sh", "git-upload-pack", "git-receive-pack", "git-upload-archive", "git-remote-https"],
  };
}

/** `git config KEY VALUE`, `git config set KEY VALUE`, `--add`, `--replace-all`, `-e`: refused for program keys. */
function configWrite(rest: Arg[]): string | undefined {
  const operands: Arg[] = [];
  for (let k = 0; k < rest.length; k++) {
    const a = rest[k]!;
    if (a.dynamic) return `git config with a run-time key or value (${a.value}) ${CONFIG_REFUSAL}`;
    if (a.value === "-e" || a.value === "--edit")
      return "git config --edit opens an editor chosen by configuration";
    if (["-f", "--file", "--blob", "--type", "--default", "--comment"].includes(a.value)) k++;
    else if (!a.value.startsWith("-")) operands.push(a);
  }
  const words = operands[0]?.value === "set" ? operands.slice(1) : operands;
  const key = words[0]?.value;
  if (key !== undefined && words.length >= 2 && isProgramConfigKey(key)) {
    return `git config ${key} ${CONFIG_REFUSAL}`;
  }
  return undefined;
}

/** ssh://, git+ssh://, ssh+git://, and scp-like `[user@]host:path` (no slash before the colon). */
function isSshUrl(v: string): boolean {
  if (/^(git\+)?ssh(\+git)?:\/\//.test(v)) return true;
  const colon = v.indexOf(":");
  if (colon <= 0 || v.startsWith("-")) return false;
  const host = v.slice(0, colon);
  return !host.includes("/") && !v.startsWith(`${host}://`) && /^[A-Za-z0-9_.@-]+$/.test(host);
}

/**
 * `git -C dir --no-pager push origin` as `git push origin`: git's global options removed,
 * so an operator's rule on "git push *" holds however the options before the subcommand vary.
 * Undefined when the argv is not a git command with a static subcommand.
 */
export function gitSubcommandArgv(argv: readonly string[]): string[] | undefined {
  const scan = scanGlobals(argv);
  if (scan.unknown !== undefined) return undefined;
  return scan.sub < argv.length ? [argv[0]!, ...argv.slice(scan.sub)] : undefined;
}
