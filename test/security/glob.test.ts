import { describe, expect, it } from "vitest";
import {
  filterGlobMatcher,
  globCovers,
  isCanonicalPath,
  matchPath,
  wildcardCovers,
  wildcardMatch,
} from "../../src/security/glob.js";

describe("matchPath", () => {
  it.each([
    ["/data/*", "/data/a", true],
    ["/data/*", "/data/.env", true],
    ["/data/*", "/data", false],
    ["/data/*", "/data/a/b", false],
    ["/data/*", "/data-x", false],
    ["/data/*", "/data-x/a", false],
    ["/data/**", "/data", true],
    ["/data/**", "/data/x", true],
    ["/data/**", "/data/x/y/z", true],
    ["/data/**", "/data-x", false],
    ["/data/**", "/datax/y", false],
    ["/data/**", "/", false],
    ["/**", "/", true],
    ["/**", "/etc/shadow", true],
    ["/", "/", true],
    ["/", "/a", false],
    ["/output/*.md", "/output/report.md", true],
    ["/output/*.md", "/output/.md", true],
    ["/output/*.md", "/output/report.md.exe", false],
    ["/output/*.md", "/output/sub/report.md", false],
    ["/workspace/**/*.ts", "/workspace/a.ts", true],
    ["/workspace/**/*.ts", "/workspace/src/deep/a.ts", true],
    ["/workspace/**/*.ts", "/workspace/src/a.js", false],
    ["/a/**/b/**/c", "/a/b/c", true],
    ["/a/**/b/**/c", "/a/x/b/y/z/c", true],
    ["/a/**/b/**/c", "/a/x/c", false],
    ["/a/b*c", "/a/bc", true],
    ["/a/b*c", "/a/bxxc", true],
    ["/a/b*c", "/a/bxxcd", false],
    ["/a/*b*", "/a/b", true],
    ["/data/", "/data", true],
  ])("%s vs %s -> %s", (glob, path, expected) => {
    expect(matchPath(glob, path)).toBe(expected);
  });

  it.each([
    "/data/../etc/passwd",
    "/data/./x",
    "/data//x",
    "/data/x/",
    "/data/x/..",
    "/data/.",
    "data/x",
    "",
    "/data/x\0.txt",
  ])("refuses the non-canonical path %j even under /**", (path) => {
    expect(matchPath("/**", path)).toBe(false);
    expect(matchPath("/data/**", path)).toBe(false);
    expect(isCanonicalPath(path)).toBe(false);
  });

  it("matches nothing with a glob parseGrant would reject", () => {
    for (const bad of [
      "data/*",
      "/data/?",
      "/data/[ab]",
      "/data/{a,b}",
      "/a/**b",
      "/a/../b",
      "/a//b",
      "//",
    ]) {
      expect(matchPath(bad, "/data/a")).toBe(false);
      expect(globCovers(bad, "/data/a")).toBe(false);
      expect(globCovers("/**", bad)).toBe(false);
    }
  });

  it("does not blow up on a pattern built to make backtracking slow", () => {
    const glob = `/${"*a".repeat(30)}b/**/${"*a".repeat(30)}b`;
    const seg = "a".repeat(200);
    const path = `/${Array(50).fill(seg).join("/")}`;
    const start = process.hrtime.bigint();
    expect(matchPath(glob, path)).toBe(false);
    // Generous bound: the point is "polynomial", not a speed target.
    expect(Number(process.hrtime.bigint() - start) / 1e6).toBeLessThan(2000);
  });
});

describe("wildcard segments", () => {
  it.each([
    ["*", "", true],
    ["a*", "a", true],
    ["a*b", "ab", true],
    ["a*b", "aXb", true],
    ["a*b", "aXbc", false],
    ["*a*a*", "aa", true],
    ["*a*a*", "a", false],
  ])("wildcardMatch(%j, %j) -> %s", (p, t, expected) => {
    expect(wildcardMatch(p, t)).toBe(expected);
  });

  it.each([
    ["*", "anything*", true],
    ["b*", "b*c", true],
    ["*c", "b*c", true],
    ["*.md", "report*.md", true],
    ["b*c", "b*", false],
    ["*ab*", "*a*b*", false],
    ["a*", "*a", false],
    ["abc", "a*c", false],
    ["a*c", "abc", true],
  ])("wildcardCovers(%j, %j) -> %s", (outer, inner, expected) => {
    expect(wildcardCovers(outer, inner)).toBe(expected);
  });
});

describe("globCovers", () => {
  it.each([
    ["/workspace/**", "/workspace/src/*.ts", true],
    ["/workspace/**", "/workspace", true],
    ["/workspace/**", "/workspace/**", true],
    ["/workspace/**", "/workspace/a/**/b", true],
    ["/**", "/", true],
    ["/**", "/etc/**", true],
    ["/a/b*", "/a/b*c", true],
    ["/a/*", "/a/b", true],
    ["/a/*", "/a/b*", true],
    ["/*/**", "/**/a", true],
    ["/**/a", "/*/**/a", true],
    ["/**/*.ts", "/src/**/x/*.ts", true],
    ["/a/**/**/b", "/a/**/b", true],
    ["/a/**/b", "/a/**/**/b", true],
    ["/output/*.md", "/output/**", false],
    ["/output/*.md", "/output/*", false],
    ["/output/*.md", "/output/sub/a.md", false],
    ["/a/*", "/a/**", false],
    ["/a/*", "/a", false],
    ["/a/**", "/a*", false],
    ["/a/**", "/ab/c", false],
    ["/data/**", "/data-x/**", false],
    ["/workspace/src/*.ts", "/workspace/**", false],
    ["/**/a", "/**", false],
    ["/**/a", "/*/**", false],
    ["/a/b*c", "/a/b*", false],
    ["/", "/**", false],
    ["/a/**/b", "/a/**", false],
    ["/a/*/b", "/a/**/b", false],
  ])("%s covers %s -> %s", (outer, inner, expected) => {
    expect(globCovers(outer, inner)).toBe(expected);
  });
});

// --- randomized cross-check --------------------------------------------------------------

/** Small deterministic PRNG so a failure can be replayed from its seed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)] as T;
}

function randomSegmentPattern(r: () => number): string {
  const len = 1 + Math.floor(r() * 3);
  let out = "";
  for (let i = 0; i < len; i++) {
    const c = pick(r, ["a", "b", "*"]);
    if (c === "*" && out.endsWith("*")) continue;
    out += c;
  }
  return out === "" ? "a" : out;
}

function randomGlob(r: () => number): string {
  const n = Math.floor(r() * 5);
  const segs: string[] = [];
  for (let i = 0; i < n; i++) {
    const x = r();
    segs.push(x < 0.25 ? "**" : x < 0.45 ? "*" : randomSegmentPattern(r));
  }
  return `/${segs.join("/")}`;
}

/** A random path the glob matches (each "*" and "**" filled with random text). */
function instantiate(
  r: () => number,
  glob: string,
  fill = () => pick(r, ["", "a", "b", "ab", "c", "ba"]),
): string {
  const segs: string[] = [];
  for (const seg of glob
    .slice(1)
    .split("/")
    .filter((s) => s !== "")) {
    if (seg === "**") {
      const k = Math.floor(r() * 3);
      for (let i = 0; i < k; i++) segs.push(pick(r, ["a", "b", "c", "ab", "z"]));
    } else {
      const s = seg.replace(/\*/g, () => fill());
      segs.push(s === "" ? "c" : s);
    }
  }
  return `/${segs.join("/")}`;
}

/** An independent oracle for matchPath, through regular expressions. */
function oracleMatch(glob: string, path: string): boolean {
  const segs = glob
    .slice(1)
    .split("/")
    .filter((s) => s !== "");
  const body = segs.map((s) => (s === "**" ? "(?:/[^/]+)*" : `/${s.replace(/\*/g, "[^/]*")}`)).join("");
  return new RegExp(`^${body}$`).test(path === "/" ? "" : path);
}

describe("globCovers, randomized", () => {
  it("agrees with a regular-expression oracle on random globs and paths", () => {
    const r = rng(7);
    for (let i = 0; i < 3000; i++) {
      const g = randomGlob(r);
      const p = r() < 0.5 ? instantiate(r, g) : instantiate(r, randomGlob(r));
      expect(matchPath(g, p), `${g} vs ${p}`).toBe(oracleMatch(g, p));
    }
  });

  it("never claims coverage that a sampled path disproves (soundness)", () => {
    const r = rng(42);
    let covered = 0;
    for (let i = 0; i < 4000; i++) {
      const outer = randomGlob(r);
      const inner = r() < 0.3 ? outer.replace("**", pick(r, ["*", "a", "a/**", "**/b"])) : randomGlob(r);
      if (!globCovers(outer, inner)) continue;
      covered++;
      for (let k = 0; k < 25; k++) {
        const p = instantiate(r, inner);
        if (!matchPath(inner, p)) continue;
        expect(matchPath(outer, p), `${outer} covers ${inner} but not ${p}`).toBe(true);
      }
    }
    expect(covered).toBeGreaterThan(300);
  });

  it("finds a path that proves every refusal (exactness)", () => {
    const r = rng(1234);
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      const outer = randomGlob(r);
      const inner = randomGlob(r);
      if ((inner.match(/\*\*/g) ?? []).length > 2 || globCovers(outer, inner)) continue;
      refused++;
      // The witnesses: stars become a character no pattern uses, each "**" 0..n such segments.
      const depth = outer.split("/").length + 1;
      const parts = inner
        .slice(1)
        .split("/")
        .filter((s) => s !== "");
      const deepAt = parts.flatMap((s, j) => (s === "**" ? [j] : []));
      let found = false;
      const counts = deepAt.map(() => 0);
      for (;;) {
        const segs: string[] = [];
        parts.forEach((s, j) => {
          if (s === "**") for (let c = 0; c < (counts[deepAt.indexOf(j)] as number); c++) segs.push("z");
          else segs.push(s.replace(/\*/g, "z"));
        });
        const p = `/${segs.join("/")}`;
        if (matchPath(inner, p) && !matchPath(outer, p)) {
          found = true;
          break;
        }
        let d = 0;
        while (d < counts.length && counts[d] === depth) counts[d++] = 0;
        if (d === counts.length) break;
        counts[d] = (counts[d] as number) + 1;
      }
      expect(found, `${outer} does not cover ${inner}, but no witness path was found`).toBe(true);
    }
    expect(refused).toBeGreaterThan(500);
  });
});

describe("filterGlobMatcher (grep's glob filter, not a grant)", () => {
  it.each([
    ["*.ts", "a.ts", true],
    ["*.ts", "a.tsx", false],
    ["*.{ts,md}", "b.md", true],
    ["**/*.{ts,md}", "a/b/c.md", true],
    ["**/*.{ts,md}", "c.md", true],
    ["src/**/x.?s", "src/a/b/x.js", true],
    ["src/**/x.?s", "src/x.jsx", false],
    ["[a-c]*.txt", "b1.txt", true],
    ["[!a-c]*.txt", "b1.txt", false],
    ["[!a-c]*.txt", "z1.txt", true],
    ["\\*.txt", "*.txt", true],
    ["\\*.txt", "a.txt", false],
    ["{a,{b,c}}.md", "c.md", true],
    ["{x}.md", "{x}.md", true],
    ["*", "a/b", false],
  ])("%s matches %s: %s", (glob, path, want) => {
    expect(filterGlobMatcher(glob)(path)).toBe(want);
  });

  it("refuses a glob whose {a,b} alternatives multiply past the bound instead of blowing up", () => {
    expect(() => filterGlobMatcher("{a,b}".repeat(40))).toThrow(/more than 256 \{a,b\} alternatives/);
    expect(filterGlobMatcher("{a,b}".repeat(8))("abababab")).toBe(true);
  });
});
