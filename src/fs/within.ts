// fs/within.ts — the one answer to "does path P lie in folder F". It was written nine
// times, each its own way, and the copies drifted: whether F itself counts, a name that
// starts with ".." ("..x" lies inside; a bare startsWith("..") put it outside), "/" as F
// (a `${F}/` prefix becomes "//" and nothing is inside), a trailing "/" on either side.
//
// The test is lexical and over whole segments ("/a/skill" does not hold "/a/skill-evil"):
// both paths are normalised as path.relative does ("." and ".." taken off as text, "//"
// and a trailing "/" ignored), compared case-sensitively, and no link is followed. A
// caller that judges where a path leads gives real paths (realpathSync on the host,
// sandbox.realpath in a container): ".." taken off as text is not where the kernel goes
// after a link. Give both paths absolute, or both relative to the same folder (a relative
// one is read from the process's working folder).

import { isAbsolute, relative, sep } from "node:path";

/** `path` is `folder` itself or lies under it. */
export function isWithin(folder: string, path: string): boolean {
  const rel = relative(folder, path);
  return rel === "" || below(rel);
}

/** `path` lies under `folder`; `folder` itself does not count. */
export function isStrictlyWithin(folder: string, path: string): boolean {
  const rel = relative(folder, path);
  return rel !== "" && below(rel);
}

/** A non-empty result of relative() that does not climb out: "..", "../x" do; "..x" does not. */
function below(rel: string): boolean {
  // isAbsolute: on Windows, relative() across drives answers with the other absolute path.
  return rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}
