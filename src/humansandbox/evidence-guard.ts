// humansandbox/evidence-guard.ts — the project's evidence store (.aido: every sandbox's
// record, events.log and run streams) and the runtime's home never reach a sandbox
// through its inputs. An input mounting the store would let the task read every sandbox's
// records and, with --dangerous-allow-mutations, rewrite the record of what it did itself.
//
// - A wildcard never matches the store: `*` and `**` match the rest of the project.
// - An input AT or UNDER the store (`.aido/**`, a link to .aido, an absolute path into it)
//   is refused, naming the input.
// - An input that CONTAINS the store (a link to the project root, the project by its
//   absolute path, an ancestor folder) is mounted with the store covered by an empty
//   read-only tmpfs at its place (`hidden` of the mount). The task cannot write there, nor
//   unmount it (no capabilities), nor move it or the input's root aside (both are mount
//   points: EBUSY). With writable inputs, a store deeper than a direct child of the input
//   is refused: the task could rename a folder between the two on the host, and a
//   restarted container would then cover an empty path while the store sat elsewhere.
// - A project whose .aido is a link: its real folder is what is kept out. The link itself
//   cannot be covered (a mount onto a link lands on its target), so an input holding the
//   link is refused when writable: the task could re-point it and have the host write the
//   next sandbox's evidence wherever it chose. Read-only, the link dangles in the container.
// - Outputs never write it: outputs.ts collects nothing under .aido/ of /output, nor what
//   would land in the store's real folder (a task's /output/.aido/sandboxes/<id>/events.log
//   would replace its own sandbox's).
// - The host's procfs (/proc) is kept out as the store is: the task runs as the person's
//   uid, and /proc/<pid>/root of any process of theirs (the `aido` running the task) is
//   their whole filesystem, the runtime's home with no cover over it.
// - The runtime's home (AIDO_HOME: its private key, database, audit head, tokens) is kept
//   out by the same rules: read-only is enough to forge capability tokens and audit
//   checkpoints. By its real path and its folder (device and inode); its key folder,
//   database and audit head by their real paths when a link puts them elsewhere (a file
//   held by an input is refused: a tmpfs cannot cover it); a link on the home's way held
//   by a writable input is refused (re-pointed, the next `aido` would use a key the task
//   chose). Outputs never write in it nor its key folder (runtimeFolders).

import { lstatSync, readFileSync, realpathSync, statSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import type { Config } from "../config.js";
import { AidoError, ErrorCode } from "../errors.js";
import { isWithin } from "../fs/within.js";
import { databaseFiles, ensurePrivateDir } from "../security/private-home.js";
import type { InputMount } from "./state.js";

/** The store's folder name in a project. */
export const EVIDENCE_DIR = ".aido";

/** A project-relative match the wildcard must not take: the store or anything in it. */
export function isEvidencePath(rel: string): boolean {
  return isWithin(EVIDENCE_DIR, rel);
}

function realOrSelf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p; // not made yet: it will be made at this path, by `up`
  }
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * Where the store really is: .aido and .aido/sandboxes resolved (either may be a link), and
 * the lexical .aido when it is a link.
 */
function storeOf(projectReal: string): { real: string[]; link: string | undefined } {
  const lexical = join(projectReal, EVIDENCE_DIR);
  const top = realOrSelf(lexical);
  const sandboxes = realOrSelf(join(lexical, "sandboxes"));
  const real = isWithin(top, sandboxes) ? [top] : [top, sandboxes];
  return { real, link: isLink(lexical) ? lexical : undefined };
}

/**
 * A test of whether a project path (reached without a link: outputs.ts refuses links on the
 * project side) is the store or in it: by name (.aido/...), or by its real folder (a
 * project whose .aido is a link to a folder of the project).
 */
export function evidenceTest(project: string): (rel: string) => boolean {
  const projectReal = realOrSelf(project);
  const store = storeOf(projectReal).real;
  return (rel) => isEvidencePath(rel) || store.some((e) => isWithin(e, join(projectReal, rel)));
}

/**
 * The store's folders that exist, as "dev:ino": what outputs.ts checks each project folder
 * it writes in against, whatever name reached it (a name of another case on a filesystem
 * that ignores case, a second mount of the same folder).
 */
export function evidenceFolders(project: string): Set<string> {
  const ids = new Set<string>();
  for (const p of storeOf(realOrSelf(project)).real) {
    const st = statSync(p, { throwIfNoEntry: false });
    if (st?.isDirectory()) ids.add(`${st.dev}:${st.ino}`);
  }
  return ids;
}

/**
 * The runtime's home and key folder (by their real paths), as "dev:ino": outputs.ts never
 * writes in them, whatever name reached them (a project that is the home, or a second
 * mount of it inside the project); and its database files and audit head, never replaced.
 */
export function runtimeFolders(runtime: RuntimeHome): Set<string> {
  const ids = new Set<string>();
  for (const p of [runtime.home, runtime.keysDir]) {
    const id = idOf(p);
    if (id !== undefined) ids.add(id);
  }
  // Its database and audit head (links followed): a link from the home may put them in the
  // project, where an output of that name would replace them.
  for (const p of [...databaseFiles(runtime.dbPath), runtime.auditHeadPath]) {
    const st = statSync(p, { throwIfNoEntry: false });
    if (st?.isFile()) ids.add(`${st.dev}:${st.ino}`);
  }
  return ids;
}

/** "dev:ino" of the folder at `p` (links followed), undefined when there is none. */
function idOf(p: string): string | undefined {
  const st = statSync(p, { throwIfNoEntry: false });
  return st?.isDirectory() ? `${st.dev}:${st.ino}` : undefined;
}

/** `p` and each folder above it, up to "/". */
function ancestors(p: string): string[] {
  const out = [p];
  for (let up = dirname(p); up !== out.at(-1); up = dirname(up)) out.push(up);
  return out;
}

/**
 * Where the store `e` lies in `source`: "" when the source is the store or lies in it, the
 * store's path below the source when the source holds it, undefined when neither. By name,
 * and by folder (device and inode): a name of another case on a filesystem that ignores
 * case (a project on /mnt/c under WSL), or a second mount of the same folder, is the same
 * folder under another name, and was mounted whole.
 */
function placeOf(e: string, source: string): string | undefined {
  if (isWithin(e, source)) return "";
  if (isWithin(source, e)) return relative(source, e);
  const store = idOf(e);
  if (store !== undefined && ancestors(source).some((a) => idOf(a) === store)) return "";
  const src = idOf(source);
  if (src === undefined) return undefined;
  const holder = ancestors(e)
    .slice(1)
    .find((a) => idOf(a) === src);
  return holder === undefined ? undefined : relative(holder, e);
}

/** What of the runtime's own state (config.ts) is kept out of inputs, as the store is. */
export type RuntimeHome = Pick<Config, "home" | "keysDir" | "dbPath" | "auditHeadPath">;

/** A place kept out of every input: refused at or under it, covered when an input holds it. */
interface KeptOut {
  /** Real path (or the path it will be made at). */
  path: string;
  /** What it is, and why it never reaches a task: for the refusal. */
  what: string;
  /** A file: it cannot be covered by a tmpfs, so an input holding it is refused. */
  file: boolean;
}

const HOME_WHAT =
  "the runtime's home (AIDO_HOME: its private key, state database, audit log and tokens; read, they forge capability tokens and audit checkpoints)";

/**
 * The runtime's home and what of it lies elsewhere by a link (the key folder, the database,
 * the audit head): by real path. A home not made yet is made (0700, as the daemon makes it)
 * when an input would hold it, so that it can be covered: made later inside a mounted
 * folder, the key would appear in a running sandbox.
 */
function runtimePlaces(runtime: RuntimeHome): { places: KeptOut[]; links: string[] } {
  const home = realOrSelf(runtime.home);
  const places: KeptOut[] = [{ path: home, what: HOME_WHAT, file: false }];
  const extra: Array<[string, string]> = [
    [runtime.keysDir, "the runtime's key folder (AIDO_HOME/keys, by a link: its private key)"],
    ...databaseFiles(runtime.dbPath).map((f): [string, string] => [
      f,
      "the runtime's state database (by a link)",
    ]),
    [runtime.auditHeadPath, "the runtime's audit head (by a link)"],
  ];
  for (const [p, what] of extra) {
    const real = realOrSelf(p);
    if (real === p || isWithin(home, real)) continue;
    const st = statSync(real, { throwIfNoEntry: false });
    if (st) places.push({ path: real, what, file: !st.isDirectory() });
  }
  // A link on the home's way (AIDO_HOME itself, or a folder above it): a task holding it
  // read-write could re-point it, and the next `aido` would use (or make) its key there.
  const links = ancestors(runtime.home).filter(isLink);
  return { places, links };
}

const PROC_WHAT =
  "the host's processes (procfs: a task runs as the person's uid, and /proc/<pid>/root of any of their processes reads each of their files, the runtime's key too, around every cover; /proc/<pid>/environ their environment)";

/**
 * Each procfs mounted on the host (/proc, and any other), by its mount point: an input at
 * or under one is refused, one holding one has it covered, as the store.
 */
function procMounts(): KeptOut[] {
  let table: string;
  try {
    table = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return [{ path: "/proc", what: PROC_WHAT, file: false }];
  }
  const out = new Set<string>(["/proc"]);
  for (const line of table.split("\n")) {
    const [left, right] = line.split(" - ");
    if (right?.split(" ")[0] !== "proc") continue;
    const at = left?.split(" ")[4];
    if (at)
      out.add(at.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))));
  }
  return [...out].map((path) => ({ path, what: PROC_WHAT, file: false }));
}

/** Make the home (0700) when it is not there yet: it is covered only if it exists. */
function makeHome(runtime: RuntimeHome): void {
  if (!statSync(runtime.home, { throwIfNoEntry: false })) ensurePrivateDir(runtime.home);
}

/**
 * The mounts with each kept-out place they contain listed in `hidden` (container paths):
 * the project's evidence store and the runtime's home. Throws for a mount at or under one,
 * for one holding a file of them, and for what a writable mount could undo.
 */
export function guardEvidence(
  projectReal: string,
  mounts: InputMount[],
  writable: boolean,
  runtime: RuntimeHome,
): InputMount[] {
  const store = storeOf(projectReal);
  const home = runtimePlaces(runtime);
  const places: KeptOut[] = [
    ...store.real.map((path) => ({
      path,
      what: "the project's evidence store (every sandbox's records and run streams)",
      file: false,
    })),
    ...home.places,
    ...procMounts(),
  ];
  const links = [
    ...(store.link
      ? [{ link: store.link, what: "the project's evidence store", fix: "make .aido a folder" }]
      : []),
    ...home.links.map((link) => ({
      link,
      what: "the runtime's home",
      fix: "give AIDO_HOME by its real path",
    })),
  ];
  let homeHeld = false;
  const guarded = mounts.map((m) => {
    const hidden = new Set<string>();
    for (const e of places) {
      const rel = placeOf(e.path, m.source);
      if (rel === "")
        throw new AidoError(
          ErrorCode.configInvalid,
          `input "${m.pattern}" mounts ${m.source}, which is ${e.what} at ${e.path}: it is never an input; declare the data itself`,
          { pattern: m.pattern, path: m.source },
        );
      if (rel === undefined) continue;
      if (e.file)
        throw new AidoError(
          ErrorCode.configInvalid,
          `input "${m.pattern}" mounts ${m.source}, which holds ${e.what} at ${e.path}: a file cannot be covered in a sandbox; declare narrower inputs`,
          { pattern: m.pattern, path: m.source },
        );
      if (writable && rel.includes(sep))
        throw new AidoError(
          ErrorCode.configInvalid,
          `input "${m.pattern}" mounts ${m.source} read-write (--dangerous-allow-mutations) with ${e.what} at ${e.path} more than one folder below it: a task could move the folders between them; declare the project itself or narrower inputs`,
          { pattern: m.pattern, path: m.source },
        );
      if (e.what === HOME_WHAT) homeHeld = true;
      hidden.add(`${m.target}/${rel.split(sep).join("/")}`);
    }
    for (const l of links)
      if (writable && isWithin(m.source, l.link))
        throw new AidoError(
          ErrorCode.configInvalid,
          `input "${m.pattern}" mounts ${m.source} read-write (--dangerous-allow-mutations) and holds the link ${l.link} to ${l.what}: a task could re-point it; ${l.fix}, or declare narrower inputs`,
          { pattern: m.pattern, path: m.source },
        );
    return hidden.size > 0 ? { ...m, hidden: [...hidden] } : m;
  });
  // Only once every input passed: a refused sandbox leaves no home made for it.
  if (homeHeld) makeHome(runtime);
  return guarded;
}
