import { describe, expect, it } from "vitest";
import { isStrictlyWithin, isWithin } from "../../src/fs/within.js";

// [folder, path, isWithin, isStrictlyWithin]: every edge the nine old copies disagreed on.
const CASES: [string, string, boolean, boolean][] = [
  ["/a/b", "/a/b", true, false], // the folder itself
  ["/a/b", "/a/b/c", true, true],
  ["/a/b", "/a/b/c/d", true, true],
  ["/a/b", "/a", false, false], // its parent
  ["/a/b", "/a/bc", false, false], // a sibling sharing a prefix
  ["/a/skill", "/a/skill-evil/x", false, false],
  ["/a/b", "/a/b/..x", true, true], // a name starting with ".." lies inside
  ["/a/b", "/a/b/..", false, false], // ".." taken off as text
  ["/a/b", "/a/b/../c", false, false],
  ["/a/b", "/a/b/c/../d", true, true],
  ["/a/b", "/a/b/.", true, false],
  ["/a/b", "/a/b/", true, false], // a trailing "/" on the path
  ["/a/b/", "/a/b", true, false], // a trailing "/" on the folder
  ["/a/b/", "/a/b/c", true, true],
  ["/a/b", "/a//b/c", true, true], // doubled separators
  ["/", "/", true, false], // "/" as the folder
  ["/", "/x", true, true],
  ["/", "/x/y", true, true],
  ["/x", "/", false, false],
  ["/a/B", "/a/b/c", false, false], // case counts
  ["/proc", "/proc/self/environ", true, true],
  ["/proc", "/process", false, false],
  [".aido", ".aido", true, false], // both relative to the same folder
  [".aido", ".aido/sandboxes/x", true, true],
  [".aido", ".aidox", false, false],
  [".aido", "src/.aido", false, false],
];

describe("isWithin / isStrictlyWithin", () => {
  it.each(CASES)("folder %j, path %j: within %s, strictly %s", (folder, path, within, strictly) => {
    expect(isWithin(folder, path)).toBe(within);
    expect(isStrictlyWithin(folder, path)).toBe(strictly);
  });

  it("does not follow links: a path through a link is judged as written", () => {
    // /tmp/link -> /etc: the caller resolves first (realpath) when it judges where a path leads.
    expect(isWithin("/tmp", "/tmp/link/passwd")).toBe(true);
  });
});
