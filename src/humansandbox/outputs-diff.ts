// humansandbox/outputs-diff.ts — outputs.diff: what a run's collected outputs changed in the
// project, as `git diff` shows it against HEAD (new files as added).
//
// The project's git folder is the task's to write when an input holds it read-write
// (--dangerous-allow-mutations on the project) or an output lands in it (a pattern naming
// .git; before outputs.ts kept wildcards out of it, `outputs: ["**"]` collected
// /output/.git/config). Git run in that repository takes its config: diff.external,
// core.fsmonitor, a textconv or clean filter named by .gitattributes (and whatever else
// git runs from config), each a command the HOST ran as the person running `aido run`. So the diff is
// made with no config of the project's, nor the person's: in a git folder of our own
// (temporary) whose objects are the project's (objects/info/alternates, read only) and whose
// HEAD is the project's commit, with GIT_CONFIG_NOSYSTEM and GIT_CONFIG_GLOBAL=/dev/null. Its
// index is HEAD's tree with the collected paths added (update-index: paths, not pathspecs, so
// a file named `*` or `:(top)` is that file alone; read from stdin, so 100,000 paths fit
// where they were past the argument limit), and the diff is that index
// against HEAD: only what the run collected, never the person's other uncommitted work.

import { spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  realpathSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { errorMessage } from "../errors.js";
import { isWithin } from "../fs/within.js";
import { removeTreeNoFollow } from "../sandbox/folders.js";
import { fdPath } from "../sandbox/untrusted-files.js";
import type { ProjectOwner } from "./project.js";

/** The diff kept at most; past it outputs.diff ends with a line saying so. */
const MAX_DIFF_BYTES = 64 << 20;

interface Git {
  ok: boolean;
  out: string;
  /** The output went past MAX_DIFF_BYTES and was cut there. */
  cut: boolean;
  err: string;
}

/** Whose rights git runs with: the project's owner under root in someone else's project (see diffOfPaths). */
type As = ProjectOwner;

/**
 * The environment git starts from: root's own is never given to a process of the person's
 * (`as`: they can read its environment, and it runs what they can make it run), only its
 * PATH; else this process's, without its GIT_* variables when `bare` (the diff's own git).
 */
function gitEnv(as: As, bare = true): NodeJS.ProcessEnv {
  if (as) return { PATH: process.env.PATH };
  if (!bare) return process.env;
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("GIT_")) env[k] = v;
  return env;
}

function git(cwd: string, args: string[], as: As, env = gitEnv(as, false), input?: Buffer): Git {
  const r = spawnSync("git", args, {
    cwd,
    env,
    ...(as ? { uid: as.uid, gid: as.gid } : {}),
    encoding: "utf8",
    maxBuffer: MAX_DIFF_BYTES,
    ...(input ? { input } : {}),
    stdio: [input ? "pipe" : "ignore", "pipe", "pipe"],
  });
  const cut = (r.error as NodeJS.ErrnoException | undefined)?.code === "ENOBUFS";
  return { ok: r.status === 0 || cut, out: r.stdout ?? "", cut, err: r.stderr ?? "" };
}

/**
 * True when the project is inside a git work tree. Reading the repository's config runs
 * nothing: only the commands below that look at files (diff, status) run what it names.
 */
export function inGitRepo(project: string, as?: As): boolean {
  return git(project, ["rev-parse", "--is-inside-work-tree"], person(as)).out.trim() === "true";
}

/** nogroup: the group git runs with for a person who has no passwd entry. */
const NOGROUP = 65534;

/**
 * The person `as` with their own group (their passwd entry's, else nogroup), the one git
 * runs with. `as` carries the project folder's group (what root makes there is given it),
 * which need not be one of theirs: a folder root made and gave to them alone (`chown alice`)
 * keeps group root, and git with gid 0 read root's group-readable files (/etc/sudoers) where
 * a project folder swapped for a link led it.
 */
function person(as: As): As {
  if (!as) return undefined;
  const r = spawnSync("id", ["-g", "--", String(as.uid)], {
    encoding: "utf8",
    env: { PATH: process.env.PATH },
  });
  const gid = r.status === 0 && /^\d+\n?$/.test(r.stdout) ? Number(r.stdout) : NOGROUP;
  return { uid: as.uid, gid };
}

/** What the project's repository is, read without running anything it configures. */
function repositoryOf(project: string, as: As) {
  const r = git(
    project,
    ["rev-parse", "--show-toplevel", "--show-object-format", "--git-path", "objects"],
    as,
  );
  const [top, format, objects] = r.out.split("\n");
  if (!r.ok || !top || !format || !objects) return undefined;
  const head = git(project, ["rev-parse", "--verify", "-q", "HEAD^{commit}"], as);
  return {
    top,
    format,
    objects: resolve(project, objects),
    head: head.ok ? head.out.trim() : undefined,
  };
}

/**
 * `git diff HEAD` of the given project paths (relative to the project), new files shown as
 * added. `as`: run git with that user's rights (the project's owner, under root in their
 * project). git reaches the project by its path, and the person can rename their folder and
 * put a link to one of root's at its name between run.ts's check and git: run as root, git
 * then read root's files at the collected names into outputs.diff, for the person to read.
 * Run as the person, it reads only what they could read themselves.
 */
export function diffOfPaths(project: string, paths: readonly string[], as?: As): string {
  if (paths.length === 0) return "";
  // Never thrown: thrown, the run's summary was not written (run.ts writes it after).
  try {
    return diffIn(project, paths, person(as));
  } catch (e) {
    return `[aido: outputs.diff could not be made: ${errorMessage(e)}]\n`;
  }
}

/** A regular file, a link, or nothing: what update-index takes (a folder or FIFO stops it). */
function indexable(path: string): boolean {
  try {
    const st = lstatSync(path, { throwIfNoEntry: false });
    return st === undefined || st.isFile() || st.isSymbolicLink();
  } catch {
    return false; // a folder on its way made unreadable since it was collected
  }
}

/** Where root makes the temporary git folder: folders only root can write (see tempParent). */
const ROOT_TEMP_PARENTS = ["/run", "/var/lib"];

/**
 * Where the temporary git folder is made. Under root, <parent>/aido-diff in a folder only root
 * can write (ROOT_TEMP_PARENTS, each checked): never TMPDIR, which sudo may keep (-E, env_keep)
 * and which may name a folder the person can write, where they could swap the folder root made
 * for a link before its chowns (diffIn), root then giving them what it led to. Else TMPDIR (the
 * person's own).
 */
function tempParent(): string {
  if ((process.geteuid?.() ?? 1) !== 0) return tmpdir();
  const problems: string[] = [];
  for (const parent of ROOT_TEMP_PARENTS) {
    const at = join(parent, "aido-diff");
    try {
      mkdirSync(at, { mode: 0o711 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
        problems.push(errorMessage(e));
        continue;
      }
    }
    const why = rootOnlyProblem(parent) ?? rootOnlyProblem(at);
    if (why === undefined) return at;
    problems.push(why);
  }
  throw new Error(`no folder only root can write for its temporary git folder: ${problems.join("; ")}`);
}

/** Why `path` is not a folder only root can write (undefined: it is one). */
function rootOnlyProblem(path: string): string | undefined {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st?.isDirectory()) return `${path} is not a folder`;
  if (st.uid !== 0) return `${path} is uid ${st.uid}'s`;
  if ((st.mode & 0o022) !== 0) return `${path} is writable by others`;
  return undefined;
}

/** How many times the temporary git folder's removal is tried (see removeBase). */
const REMOVE_TRIES = 5;

/**
 * Remove the temporary git folder; a line saying so when it stays. Under root (`as`) the
 * folders given to the person (objects, index, and what git made in them) are taken back
 * first: a process of theirs still writing there (one git left, or one they started in it)
 * made the removal fail (a folder not empty), and the folder stayed in the temporary folder
 * with the project's HEAD and path; and the diff, made, was reported as not made.
 */
function removeBase(base: string, as: As): string {
  let last: unknown;
  for (let i = 0; i < REMOVE_TRIES; i++) {
    if (as) reclaim(base, 0);
    try {
      removeTreeNoFollow(base);
      return "";
    } catch (e) {
      last = e;
    }
  }
  return `[aido: the temporary git folder ${base} could not be removed after ${REMOVE_TRIES} tries (${errorMessage(last)}); remove it by hand]\n`;
}

/** The folder at `path` and those below it root's and 0700, each opened without following a link. */
function reclaim(path: string, depth: number): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch {
    return; // not a folder (a file, a link), or gone
  }
  try {
    fchownSync(fd, 0, 0);
    fchmodSync(fd, 0o700);
    // Deeper than git makes: the removal takes the rest.
    if (depth < 8) for (const name of readdirSync(fdPath(fd))) reclaim(fdPath(fd, name), depth + 1);
  } catch {
    // Taken back as far as it could be: the removal says what stays.
  } finally {
    closeSync(fd);
  }
}

function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

function diffIn(project: string, paths: readonly string[], as: As): string {
  const repo = repositoryOf(project, as);
  // A work tree that does not hold the project (core.worktree a task set) is not diffed.
  // git names the top by its real path: a project reached through a link is compared as git sees it.
  if (!repo || !isWithin(repo.top, realPath(project))) return "";
  if (repo.format !== "sha1" && repo.format !== "sha256") return "";
  const base = mkdtempSync(join(tempParent(), "aido-diff-"));
  let out: string;
  try {
    out = diffAt(base, project, paths, repo, as);
  } catch (e) {
    out = `[aido: outputs.diff could not be made: ${errorMessage(e)}]\n`;
  }
  return out + removeBase(base, as);
}

function diffAt(
  base: string,
  project: string,
  paths: readonly string[],
  repo: NonNullable<ReturnType<typeof repositoryOf>>,
  as: As,
): string {
  // Laid out by root, in a folder of its own: base/git (the git folder: its config, HEAD and
  // refs root's, for git to read only) and base/index (the index's folder). With the
  // person's rights (`as`), git writes the index and the blobs of the collected files, so
  // base/index and base/git/objects alone are given to them: as root's folders in root's, by
  // path, nothing in them can be a link yet. The git folder itself was once given to them
  // whole, and while git ran a process of theirs could write its config: a clean filter
  // there (named by the project's .gitattributes) ran with root's environment.
  const gitDir = join(base, "git");
  mkdirSync(join(gitDir, "objects", "info"), { recursive: true });
  mkdirSync(join(gitDir, "refs"));
  mkdirSync(join(base, "index"), { mode: 0o700 });
  writeFileSync(join(gitDir, "objects", "info", "alternates"), `${repo.objects}\n`);
  writeFileSync(join(gitDir, "HEAD"), repo.head ? `${repo.head}\n` : "ref: refs/heads/unborn\n");
  writeFileSync(
    join(gitDir, "config"),
    repo.format === "sha1"
      ? "[core]\n\trepositoryformatversion = 0\n"
      : `[core]\n\trepositoryformatversion = 1\n[extensions]\n\tobjectformat = ${repo.format}\n`,
  );
  if (as) {
    // Root's, for git to read with the person's group (a third user reads neither the
    // project's HEAD nor its path); then the two folders git writes given to the person,
    // last: until then nothing in them can be swapped for a link these chowns would follow.
    const objects = join(gitDir, "objects");
    for (const [at, mode] of [
      [gitDir, 0o750],
      [join(gitDir, "refs"), 0o750],
      [join(objects, "info"), 0o750],
      [join(objects, "info", "alternates"), 0o640],
      [join(gitDir, "HEAD"), 0o640],
      [join(gitDir, "config"), 0o640],
    ] as const) {
      chownSync(at, 0, as.gid);
      chmodSync(at, mode);
    }
    for (const d of [objects, join(base, "index")]) {
      chmodSync(d, 0o700);
      chownSync(d, as.uid, as.gid);
    }
    chmodSync(base, 0o711);
  }
  const env = gitEnv(as);
  Object.assign(env, {
    GIT_DIR: gitDir,
    GIT_WORK_TREE: repo.top,
    GIT_INDEX_FILE: join(base, "index", "index"),
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_ATTR_NOSYSTEM: "1",
    GIT_LITERAL_PATHSPECS: "1",
    GIT_NO_LAZY_FETCH: "1",
    GIT_TERMINAL_PROMPT: "0",
  });
  const tree = repo.head ? git(project, ["read-tree", repo.head], as, env) : undefined;
  if (tree && !tree.ok) return `[aido: outputs.diff could not be made: ${tree.err.trim()}]\n`;
  // What a task holding a project folder read-write put at a collected path since is left out.
  const files = paths.filter((p) => indexable(join(project, p)));
  const list = Buffer.from(files.map((p) => `${p}\0`).join(""));
  const added = git(project, ["update-index", "--add", "--remove", "-z", "--stdin"], as, env, list);
  if (!added.ok) return `[aido: outputs.diff could not be made: ${added.err.trim()}]\n`;
  const d = git(project, ["diff", "--cached", "--binary", "--no-ext-diff", "--no-textconv"], as, env);
  return d.cut ? `${d.out}\n[aido: outputs.diff cut at ${MAX_DIFF_BYTES} bytes]\n` : d.out;
}
