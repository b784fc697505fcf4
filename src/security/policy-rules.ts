// security/policy-rules.ts — the built-in deny rules. They hold whatever grants an agent
// has and whatever the config says: config can add rules, never remove these (there is
// no switch to turn one off). Each rule has a stable id (audit entries and tests name it)
// and a reason a human reads. Rules judge the analysed commands from shell.ts, never the
// raw string, so quoting, wrappers and nesting cannot hide what runs.

import { posix } from "node:path";
import { isWithin } from "../fs/within.js";
import { CLEARED_ENVIRONMENT, changesWhatRuns, programVariable } from "./policy-variables.js";
import type { CommandAnalysis, Redirect, SimpleCommand } from "./shell.js";
import { joinDir, possibleDirs } from "./shell-dirs.js";
import { hasFlag, commandName as name, operands, writeTargets } from "./shell-operands.js";
import { isShellName } from "./shell-sh.js";

export interface RuleInput {
  analysis: CommandAnalysis;
  /** The directory the command starts in, when the caller knows it. */
  cwd: string | undefined;
}

export interface BuiltinRule {
  id: string;
  reason: string;
  /** What in the command line breaks the rule (for the decision's reason), or undefined. */
  checkCommand?(input: RuleInput): string | undefined;
  /** Whether a file tool touching this (canonical) path breaks the rule. */
  checkPath?(kind: "file_read" | "file_write", path: string): boolean;
}

const PRIVILEGE_COMMANDS = new Set([
  "sudo",
  "sudoedit",
  "su",
  "doas",
  "pkexec",
  "runuser",
  "visudo",
  "setcap",
]);
const DISK_COMMANDS = new Set([
  "mke2fs",
  "mkswap",
  "mkdosfs",
  "mkntfs",
  "wipefs",
  "fdisk",
  "sfdisk",
  "cfdisk",
]);
for (const c of ["gdisk", "sgdisk", "parted", "blkdiscard"]) DISK_COMMANDS.add(c);
const MODULE_COMMANDS = new Set(["insmod", "modprobe", "rmmod", "depmod", "kmod", "kexec"]);
const CONTAINER_COMMANDS = new Set([
  "nsenter",
  "unshare",
  "mount",
  "umount",
  "chroot",
  "pivot_root",
  "docker",
]);
for (const c of ["podman", "ctr", "nerdctl", "crictl", "runc"]) CONTAINER_COMMANDS.add(c);
const RUNTIME_SOCKET = /(docker|containerd|crio|podman)\.sock\b/;
const DOWNLOADERS = new Set(["curl", "wget", "fetch", "aria2c", "http", "https", "xh", "lwp-request", "GET"]);
const NET_TOOLS = new Set([
  "nc",
  "ncat",
  "netcat",
  "nc.traditional",
  "nc.openbsd",
  "socat",
  "telnet",
  "openssl",
]);
// prove runs perl test files, pdb3 a python script: interpreters under other names; pypy is
// python, tsx and ts-node are node running TypeScript.
const INTERPRETER =
  /^(python[0-9.]*|pypy[0-9.]*|perl|perl5[0-9.]*(-x86_64-linux-gnu)?|prove|pdb3[0-9.]*|ruby|node|nodejs|tsx|ts-node|php[0-9.]*|lua[0-9.]*|luajit|bun|deno|tclsh|Rscript)$/;
const CODE_RUNNERS = new Set(["eval", ".", "trap", "watch", "su", "runuser"]);

/** An interpreter other than a shell (python3, node, perl...): it runs the files it is handed as code. */
export const isInterpreterName = (name: string): boolean => INTERPRETER.test(name);

/** Trees nobody inside a goal writes to. */
export const SYSTEM_PATHS: readonly string[] = [
  "/etc",
  "/bin",
  "/sbin",
  "/usr",
  "/lib",
  "/lib32",
  "/lib64",
].concat(["/libx32", "/boot", "/dev", "/proc", "/sys", "/var/lib", "/root"]);
const HARMLESS_DEVICES = /^\/dev\/(null|zero|stdout|stderr|tty|fd\/\d+|shm(\/.*)?)$/;

/** A canonical absolute path a write must never reach. "/" itself counts. */
export function isSystemPath(path: string): boolean {
  const p = posix.normalize(path).replace(/(.)\/+$/, "$1");
  if (p === "/") return true;
  if (HARMLESS_DEVICES.test(p)) return false;
  return SYSTEM_PATHS.some((root) => isWithin(root, p));
}

const show = (c: SimpleCommand): string =>
  c.argv.join(" ") + (c.wrappers.length > 0 ? ` (inside ${c.wrappers.join(" > ")})` : "");

function find(a: CommandAnalysis, test: (c: SimpleCommand, i: number) => boolean): string | undefined {
  const i = a.commands.findIndex(test);
  return i < 0 ? undefined : show(a.commands[i]!);
}

function isSetuidMode(mode: string): boolean {
  if (/^[0-7]{4,}$/.test(mode)) return (Number.parseInt(mode, 8) & 0o6000) !== 0;
  return mode.split(",").some((clause) => /^[ugoa]*[+=][rwxXst]*s/.test(clause));
}

function privilege(c: SimpleCommand): boolean {
  const n = name(c);
  if (c.privileged || PRIVILEGE_COMMANDS.has(n)) return true;
  const ops = operands(c);
  if (n === "chmod") return ops.length > 0 && isSetuidMode(ops[0]!);
  if (n === "install" || n === "mkdir") {
    const i = c.argv.findIndex((a) => a === "-m" || a === "--mode");
    const eq = c.argv.find((a) => a.startsWith("--mode="));
    const mode = eq ? eq.slice(7) : i > 0 ? c.argv[i + 1] : undefined;
    return mode !== undefined && isSetuidMode(mode);
  }
  if (n === "chown" || n === "chgrp") {
    const owner = ops[0] ?? "";
    return owner.split(/[:.]/).some((part) => part === "root" || part === "0");
  }
  return false;
}

/**
 * `/`, `/*`, `~`, `$HOME`, `~/*`... as written in an `rm -r` operand, in any of the
 * directories the command may start in (`dirs`; undefined: a relative operand could be anywhere).
 */
function isRootish(target: string, dirs: string[] | undefined): boolean {
  let t = target.replace(/["']/g, "").replace(/^\$\{?HOME\}?/, "~");
  if (t.startsWith("~")) t = `/${t.slice(1)}`;
  if (!t.startsWith("/")) {
    if (dirs === undefined) return /^(\.{1,2}\/?|\*|\.\*|\.\/\*)$/.test(t);
    return dirs.some((d) => isRootish(posix.join(d, t), []));
  }
  const n = posix.normalize(t).replace(/\/(\*|\.\*|\.)?$/, "");
  return n === "" || n === "/" || n === "/*";
}

function diskWipe(c: SimpleCommand, cwd: string[] | undefined): boolean {
  const n = name(c);
  if (DISK_COMMANDS.has(n) || n.startsWith("mkfs")) return true;
  if (n === "dd") {
    return c.argv.some(
      (a) => a.startsWith("of=") && a.slice(3).startsWith("/dev/") && !isHarmlessDevice(a.slice(3)),
    );
  }
  if (n === "shred") return operands(c).some((a) => a.startsWith("/dev/") && !isHarmlessDevice(a));
  if (n === "rm") {
    if (c.argv.includes("--no-preserve-root")) return true;
    const recursive = hasFlag(c, "r", "recursive") || hasFlag(c, "R", "recursive");
    return recursive && operands(c).some((t) => isRootish(t, cwd));
  }
  if (n === "find" && c.argv.includes("-delete")) {
    const starts = c.argv.slice(
      1,
      Math.max(
        1,
        c.argv.findIndex((a, i) => i > 0 && /^[-(!]/.test(a)),
      ),
    );
    return starts.some((t) => isRootish(t, cwd));
  }
  return false;
}

const isHarmlessDevice = (p: string): boolean => HARMLESS_DEVICES.test(posix.normalize(p));

/** A command that runs, as a program, whatever arrives on its stdin. */
function runsStdin(c: SimpleCommand): boolean {
  if (c.stdinProgram) return true;
  const n = name(c);
  if (isShellName(n)) return c.argv.slice(1).some((a) => a === "-s" || a === "-");
  if (!INTERPRETER.test(n)) return false;
  const args = c.argv.slice(1);
  if (args.includes("-")) return true;
  return !args.some((a) => !a.startsWith("-") || /^-(c|e|E|r|m)$|^--(eval|command)/.test(a));
}

/** A command that runs, as code, text it is handed (a run-time `sh -c`, `source <(...)`). */
function runsCode(c: SimpleCommand): boolean {
  const n = name(c);
  if (c.dynamic && c.wrappers.some((w) => isShellName(w) || CODE_RUNNERS.has(w))) return true;
  return isShellName(n) || INTERPRETER.test(n) || CODE_RUNNERS.has(n);
}

/** A stage of a pipeline feeds a later stage that executes its stdin. */
function pipedInto(a: CommandAnalysis, source: (c: SimpleCommand) => boolean): string | undefined {
  for (const stages of a.pipelines) {
    for (let i = 0; i < stages.length; i++) {
      const src = stages[i]!.find((k) => source(a.commands[k]!));
      if (src === undefined) continue;
      for (const later of stages.slice(i + 1)) {
        const sink = later.find((k) => runsStdin(a.commands[k]!));
        if (sink !== undefined) return `${show(a.commands[src]!)} | ${show(a.commands[sink]!)}`;
      }
    }
  }
  return undefined;
}

function downloadIntoCode(a: CommandAnalysis): string | undefined {
  const piped = pipedInto(a, (c) => DOWNLOADERS.has(name(c)));
  if (piped) return piped;
  for (const d of a.commands) {
    if (!DOWNLOADERS.has(name(d)) || d.parentGroup === undefined) continue;
    const runner = a.commands.find((c) => c.group === d.parentGroup && runsCode(c));
    if (runner) return `${show(runner)} running the output of ${show(d)}`;
  }
  return undefined;
}

/**
 * The directories command `index` may start in, as text (shell-dirs.ts), from the exec's
 * cwd; undefined when one is only known at run time. Without a known cwd, only the
 * absolute ones.
 */
function dirsAt(a: CommandAnalysis, index: number, cwd: string | undefined): string[] | undefined {
  const paths = possibleDirs(a, index);
  if (paths === undefined) return undefined;
  const out = new Set<string>();
  for (const p of paths) {
    if (cwd !== undefined) out.add(joinDir(cwd, p));
    else if (p.length > 0 && p[0]!.target.startsWith("/")) out.add(joinDir("/", p));
  }
  return [...out];
}

/** Whether a path as written (maybe relative, maybe holding `$X` or a glob) lands under a system path. */
function writesSystemPath(written: string, dynamic: boolean, dirs: string[] | undefined): boolean {
  let p = written;
  if (dynamic) {
    // Judge the fixed directory in front of the first run-time part: `/etc/$X` is under /etc.
    // A run-time part right under "/" (`/$(echo etc)/x`) or a ".." could land anywhere.
    const fixed = p.replace(/^["']+/, "").split(/[$`*?[{]/)[0]!;
    if (!fixed.startsWith("/")) return false;
    p = fixed.slice(0, fixed.lastIndexOf("/") + 1);
    if (p === "/" || written.includes("..")) return true;
  }
  if (!p.startsWith("/")) return dirs?.some((d) => isSystemPath(posix.join(d, p))) === true;
  return isSystemPath(p);
}

function systemWrite(a: CommandAnalysis, cwd: string | undefined): string | undefined {
  // Canonical paths the exec tool resolved in the container (symlinks followed) come first.
  const resolved = a.paths?.find((p) => p.access === "write" && isSystemPath(p.path));
  if (resolved) return `${resolved.via} writes ${resolved.path}`;
  const redirect = (r: Redirect, dirs: string[] | undefined): boolean =>
    r.write && writesSystemPath(r.target, r.dynamic, dirs);
  for (const [i, c] of a.commands.entries()) {
    const dirs = dirsAt(a, i, cwd);
    const hit = writeTargets(c).find((t) => writesSystemPath(t.path, t.dynamic, dirs));
    if (hit) return `${show(c)} writes ${hit.path}`;
    const r = c.redirects.find((x) => redirect(x, dirs));
    if (r) return `${show(c)} ${r.op} ${r.target}`;
  }
  const r = a.redirects.find((x) => redirect(x, cwd === undefined ? [] : [cwd]));
  return r ? `${r.op} ${r.target}` : undefined;
}

function forkBomb(a: CommandAnalysis): string | undefined {
  for (const fn of a.functions) {
    const self = fn.body
      .map((i) => a.commands[i]!)
      .find((c) => name(c) === fn.name && (c.background || c.stdinPiped));
    if (self) return `function ${fn.name} starts copies of itself`;
  }
  return undefined;
}

function reverseShell(a: CommandAnalysis): string | undefined {
  const tcp = /^\/dev\/(tcp|udp)\//;
  const r = a.redirects.find((x) => tcp.test(posix.normalize(x.target)));
  if (r) return `${r.op} ${r.target}`;
  const hit = find(a, (c) => {
    const n = name(c);
    if (c.argv.some((x) => tcp.test(x))) return true;
    if (n === "socat") return c.argv.some((x) => /(^|[,!])\s*(exec|system):/i.test(x));
    if (!NET_TOOLS.has(n)) return false;
    return c.argv.slice(1).some((x) => /^-[a-zA-Z]*[ec]$/.test(x) || /^--(exec|sh-exec|lua-exec)/.test(x));
  });
  return hit ?? pipedInto(a, (c) => NET_TOOLS.has(name(c)));
}

/** The rules, in the order they are checked; the first that matches names the denial. */
export const BUILTIN_RULES: readonly BuiltinRule[] = [
  {
    id: "priv-escalation",
    reason: "privilege escalation (sudo, su, doas, pkexec, setuid bits, chown to root) is never allowed",
    checkCommand: ({ analysis }) => find(analysis, privilege),
  },
  {
    id: "disk-wipe",
    reason: "wiping, partitioning or formatting disks, or deleting the root or home tree, is never allowed",
    checkCommand: ({ analysis, cwd }) => find(analysis, (c, i) => diskWipe(c, dirsAt(analysis, i, cwd))),
  },
  {
    id: "download-pipe-shell",
    reason:
      "running downloaded code (a download piped or substituted into a shell or interpreter) is never allowed",
    checkCommand: ({ analysis }) => downloadIntoCode(analysis),
  },
  {
    id: "reverse-shell",
    reason: "connecting a shell to the network (/dev/tcp, nc -e, socat exec) is never allowed",
    checkCommand: ({ analysis }) => reverseShell(analysis),
  },
  {
    id: "dynamic-command",
    reason: "cannot judge a command whose name is computed at run time",
    checkCommand: ({ analysis }) => find(analysis, (c) => c.dynamic),
  },
  {
    id: "pipe-to-shell",
    reason:
      "a shell reading its program from stdin (a pipe, a file or a descriptor) runs code that cannot be checked; give it the code with sh -c or a quoted here-document",
    checkCommand: ({ analysis }) => find(analysis, (c) => c.stdinProgram),
  },
  {
    id: "fork-bomb",
    reason: "a function that starts copies of itself in the background or through a pipe is a fork bomb",
    checkCommand: ({ analysis }) => forkBomb(analysis),
  },
  {
    id: "kernel-modules",
    reason: "loading or removing kernel modules is never allowed",
    checkCommand: ({ analysis }) => find(analysis, (c) => MODULE_COMMANDS.has(name(c))),
  },
  {
    id: "container-escape",
    reason: "namespaces, mounts, chroot and container runtimes (and their sockets) are never allowed",
    checkCommand: ({ analysis }) =>
      find(
        analysis,
        (c) =>
          CONTAINER_COMMANDS.has(name(c)) ||
          c.wrappers.some((w) => CONTAINER_COMMANDS.has(w)) ||
          c.argv.some((x) => RUNTIME_SOCKET.test(x)) ||
          c.redirects.some((r) => RUNTIME_SOCKET.test(r.target)),
      ) ?? analysis.redirects.find((r) => RUNTIME_SOCKET.test(r.target))?.target,
    checkPath: (_kind, path) => RUNTIME_SOCKET.test(path),
  },
  {
    id: "system-path-write",
    reason:
      "writing under system paths (/etc, /bin, /sbin, /usr, /lib*, /boot, /dev, /proc, /sys, /var/lib, /root)",
    checkCommand: ({ analysis, cwd }) => systemWrite(analysis, cwd),
    checkPath: (kind, path) => kind === "file_write" && isSystemPath(path),
  },
  {
    id: "loader-injection",
    reason:
      "setting or unsetting LD_PRELOAD, PATH, SHELL, PS4, PYTHONPATH, NODE_OPTIONS, GIT_SSH_COMMAND, PAGER, LESSSECURE, GIT_CONFIG_* and similar variables changes what code runs",
    checkCommand: ({ analysis }) => {
      const variable = analysis.assignedNames.find(changesWhatRuns);
      if (variable === CLEARED_ENVIRONMENT)
        return "a command run with a cleared environment (env -i, env -, setpriv --reset-env) loses LESSSECURE, git's configuration and CURL_HOME, which the executor sets so that less, git and curl run no code from files";
      if (variable) return variable;
      const set = programVariable(
        analysis.assignedNames,
        analysis.commands.map((c) => name(c)),
      );
      return (
        set &&
        `${set.name}, where ${set.program} reads its configuration (a .curlrc's engine loads a shared object)`
      );
    },
  },
];
