// sandbox/input-reader.ts — the reads of the MCP session that hands a goal its inputs
// (goal.submit `inputs_as`, sandbox/inputs.ts): the host folder bound as its /workspace and
// what it may read there. The daemon copies inputs with its own rights into a goal whose
// manifest the client's model chose, so every entry copied must be one the session itself
// may read: seen as its /workspace path, matched by a read glob and by no deny glob, exactly
// as its grep and file_list judge (sandbox/executor/grep.ts mayReadFile).

import { lstatSync, type Stats } from "node:fs";
import { dirname, posix, relative, sep } from "node:path";
import { isWithin } from "../fs/within.js";
import { mayReadFile } from "./executor/grep.js";
import { WORKSPACE } from "./executor/realpath.js";
import type { ReadView } from "./types.js";

/**
 * Its file_read grants less the operator's path rules (as /workspace paths), the folder bound
 * there, and the user its container runs as: a daemon run as root reads what that user
 * (1000:1000) may not.
 */
export interface InputReader extends ReadView {
  root: string;
  user: { uid: number; gid: number };
}

/**
 * Why the session may not read the host path `real` (lstat'ed as `st`), or undefined: outside
 * its folder or shut by its read view (named by its /workspace path), or shut to its user by
 * the mode of the entry or of a folder above it (it must enter each, and list a folder).
 */
export function unreadableBy(reader: InputReader, real: string, st: Stats): string | undefined {
  const rel = relative(reader.root, real);
  const seen = rel === "" ? WORKSPACE : posix.join(WORKSPACE, ...rel.split(sep));
  if (!isWithin(reader.root, real) || !mayReadFile(reader, seen))
    return `${seen}: its file_read grants less the operator's path rules`;
  if (!st.isSymbolicLink() && !modeLets(reader.user, st, st.isDirectory() ? 5 : 4))
    return `its user ${reader.user.uid}:${reader.user.gid} may not ${st.isDirectory() ? "list" : "read"} it (mode ${(st.mode & 0o7777).toString(8)}, owner ${st.uid}:${st.gid})`;
  for (let dir = dirname(real); isWithin(reader.root, dir); dir = dirname(dir)) {
    const up = lstatSync(dir);
    if (!modeLets(reader.user, up, 1))
      return `its user ${reader.user.uid}:${reader.user.gid} may not enter ${dir} (mode ${(up.mode & 0o7777).toString(8)}, owner ${up.uid}:${up.gid})`;
    if (dir === reader.root) break;
  }
  return undefined;
}

/** The rwx bits `need` (4 read, 2 write, 1 enter) that the mode gives `user`: owner, else group, else others. */
function modeLets(user: { uid: number; gid: number }, st: Stats, need: number): boolean {
  if (user.uid === 0) return true;
  const bits = st.uid === user.uid ? st.mode >> 6 : st.gid === user.gid ? st.mode >> 3 : st.mode;
  return (bits & need) === need;
}
