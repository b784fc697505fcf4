// sandbox/setid.ts — no setuid or setgid bit outlives a goal in its folders. The container
// user can mark a file it wrote setuid (a copy of a shell, say); once on the host, another
// local user who reaches it would run it as that uid. Exec is meant to be unable to set
// these bits at all (a seccomp filter in the exec helper); this sweep is the second line:
// when a goal's container is removed, every file and folder under the goal's folder loses
// its setuid/setgid bits. The walk is lstat-based and never follows a symbolic link, so a
// link the goal planted to a host file can never get that file chmodded. It runs when the
// container is gone, so nothing inside can race it; it still re-checks each entry through
// an O_NOFOLLOW descriptor before changing it.

import { constants, promises as fsp, lstatSync, readdirSync, type Stats } from "node:fs";
import { join } from "node:path";

const SETID = 0o6000;
/** Entries looked at between two turns of the event loop. */
const YIELD_EVERY = 1000;

/**
 * Clear setuid/setgid under `root` (root included). Returns the paths changed, relative to
 * `root`. A missing root is nothing to do; an entry that vanishes meanwhile is skipped.
 */
export async function clearSetidBits(root: string): Promise<string[]> {
  const cleared: string[] = [];
  const pending: Array<[string, string]> = [[root, ""]];
  let slice = 0;
  while (pending.length > 0) {
    const [path, rel] = pending.pop() as [string, string];
    // Synchronous lstat in slices (an lstat costs microseconds, its promise tens), yielding
    // to the event loop between slices.
    if (++slice % YIELD_EVERY === 0) await new Promise((r) => setImmediate(r));
    let st: Stats;
    try {
      st = lstatSync(path);
    } catch (e) {
      if (gone(e)) continue;
      throw e;
    }
    if (!st.isFile() && !st.isDirectory()) continue; // links, fifos, sockets, devices: never touched
    if ((st.mode & SETID) !== 0 && (await clearOne(path, st.ino, st.isDirectory()))) cleared.push(rel || ".");
    if (!st.isDirectory()) continue;
    let names: string[];
    try {
      names = readdirSync(path);
    } catch (e) {
      if (gone(e)) continue;
      throw e;
    }
    for (const name of names) pending.push([join(path, name), rel ? `${rel}/${name}` : name]);
  }
  return cleared.sort();
}

/** chmod through a descriptor opened without following links, if it is still the entry seen. */
async function clearOne(path: string, ino: number, dir: boolean): Promise<boolean> {
  const flags =
    constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | (dir ? constants.O_DIRECTORY : 0);
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(path, flags);
  } catch (e) {
    if (gone(e) || (e as NodeJS.ErrnoException).code === "ELOOP") return false;
    // Unreadable to us (a non-root daemon, mode 0?00): the owner may still chmod by path,
    // and nothing can swap the entry now that the container is gone.
    const again = await fsp.lstat(path);
    if (again.isSymbolicLink() || again.ino !== ino) return false;
    await fsp.chmod(path, again.mode & 0o1777);
    return true;
  }
  try {
    const st = await fh.stat();
    if (st.ino !== ino || (st.mode & SETID) === 0) return false;
    await fh.chmod(st.mode & 0o1777);
    return true;
  } finally {
    await fh.close();
  }
}

/** Vanished meanwhile, or deeper than a path can name (PATH_MAX): not reachable by path either. */
function gone(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR" || code === "ENAMETOOLONG";
}
