// skills/confine.ts — reading a file inside one skill folder and nowhere else. A skill
// may come from a project the user just cloned, so its files are hostile: a relative
// path with "..", an absolute path, or a symlink that leads out (to ~/.ssh, /etc) must
// all fail. The check is on the real path, on path-segment boundaries ("/a/skill" does
// not contain "/a/skill-evil"), and the file is opened with O_NOFOLLOW afterwards so a
// symlink swapped in after the check is not followed either.

import { closeSync, constants, fstatSync, openSync, readSync, realpathSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";
import { isWithin } from "../fs/within.js";

export interface ConfinedRead {
  content: string;
  size: number;
  truncated: boolean;
}

/** Reads `file` (relative, inside `dir`) up to `maxBytes`. Errors name the skill and the path. */
export function readConfined(skill: string, dir: string, file: string, maxBytes: number): ConfinedRead {
  const deny = (reason: string) =>
    new AidoError(ErrorCode.capabilityDenied, `skill_read ${skill}: "${file}" ${reason}`, { skill, file });
  if (file === "" || file.includes("\0")) throw deny("is not a valid path");
  if (isAbsolute(file) || /^[a-zA-Z]:/.test(file))
    throw deny("is absolute; give a path inside the skill folder");
  if (file.split(/[/\\]/).includes("..")) throw deny('contains ".."; give a path inside the skill folder');
  let real: string;
  try {
    real = realpathSync(join(dir, file));
  } catch {
    throw new AidoError(ErrorCode.notFound, `skill_read ${skill}: "${file}" not found`, { skill, file });
  }
  if (!isWithin(dir, real)) throw deny("leads outside the skill folder");
  let fd: number;
  try {
    fd = openSync(real, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    throw deny("cannot be opened");
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw deny("is not a regular file");
    const len = Math.min(st.size, maxBytes);
    const buf = Buffer.alloc(len);
    let got = 0;
    while (got < len) {
      const n = readSync(fd, buf, got, len - got, got);
      if (n === 0) break;
      got += n;
    }
    const content = buf
      .subarray(0, got)
      .toString("utf8")
      .replace(/\uFFFD$/, "");
    return { content, size: st.size, truncated: st.size > maxBytes };
  } finally {
    closeSync(fd);
  }
}
