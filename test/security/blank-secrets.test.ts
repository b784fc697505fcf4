// security/blank-secrets.ts, specified against the implementation it replaced: every secret
// searched on its own, every occurrence kept, sorted and merged (kept here as the oracle). The
// automaton must blank exactly what that did — the same stretches, the same marks — on texts
// and secrets made to overlap, nest, repeat and touch, short secrets standing alone or not.

import { describe, expect, it } from "vitest";
import { blankMarked, blankSecrets, MIN_SECRET_LENGTH } from "../../src/security/blank-secrets.js";

const WORD_BEFORE = /[\p{L}\p{N}_]$/u;
const WORD_AFTER = /^[\p{L}\p{N}_]/u;

/** The implementation before the automaton, unchanged: the oracle. */
function oracleBlankMarked(text: string, marked: Iterable<readonly [string, string]>): string {
  const standsAlone = (start: number, end: number) =>
    !WORD_BEFORE.test(text.slice(Math.max(0, start - 2), start)) &&
    !WORD_AFTER.test(text.slice(end, end + 2));
  const spans: { start: number; end: number; mark: string }[] = [];
  const seen = new Set<string>();
  for (const [s, mark] of marked) {
    if (s === "" || seen.has(s)) continue;
    seen.add(s);
    for (let at = text.indexOf(s); at >= 0; at = text.indexOf(s, at + 1)) {
      if (s.length >= MIN_SECRET_LENGTH || standsAlone(at, at + s.length)) {
        spans.push({ start: at, end: at + s.length, mark });
      }
    }
  }
  if (spans.length === 0) return text;
  spans.sort((a, b) => a.start - b.start);
  let out = "";
  let done = 0;
  for (let i = 0; i < spans.length; ) {
    const first = spans[i]!;
    let { end } = first;
    let widest = first;
    for (i++; i < spans.length && spans[i]!.start < end; i++) {
      const next = spans[i]!;
      end = Math.max(end, next.end);
      if (next.end - next.start > widest.end - widest.start) widest = next;
    }
    out += text.slice(done, first.start) + widest.mark;
    done = end;
  }
  return out + text.slice(done);
}

/** A small seeded generator (mulberry32): a failing case can be replayed from its seed. */
function generator(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return { next, int, pick: <T>(xs: readonly T[]): T => xs[int(xs.length)] as T };
}

// Few letters, so secrets overlap and repeat; word and non-word characters, so short secrets
// stand alone in some places only; an astral character (two code units) and an accented one.
const ALPHABETS = ["ab", "abc", "ab :", "aab_ .@", "xy1-😀é"];

describe("blankMarked", () => {
  it("blanks exactly what the one-secret-at-a-time implementation did, over 20,000 random cases", () => {
    for (let seed = 1; seed <= 20_000; seed++) {
      const r = generator(seed);
      const letters = Array.from(r.pick(ALPHABETS));
      const text = Array.from({ length: r.int(80) }, () => r.pick(letters)).join("");
      const secrets: [string, string][] = [];
      for (let k = r.int(8); k > 0; k--) {
        // Mostly pieces of the text (they occur), sometimes made up; some listed twice with another mark.
        const from = r.int(text.length + 1);
        const s =
          r.next() < 0.7
            ? text.slice(from, from + 1 + r.int(9))
            : Array.from({ length: 1 + r.int(6) }, () => r.pick(letters)).join("");
        secrets.push([s, r.pick(["*", "[hidden]", `[m${k}]`, ""])]);
        if (r.next() < 0.1) secrets.push([s, "[again]"]);
      }
      const got = blankMarked(text, secrets);
      if (got !== oracleBlankMarked(text, secrets)) {
        expect({ seed, text, secrets, got }).toEqual({
          seed,
          text,
          secrets,
          got: oracleBlankMarked(text, secrets),
        });
      }
    }
  });

  it("gives a stretch several secrets cover the mark of the widest, the first to start of equals", () => {
    expect(
      blankMarked("xx abcdef yy", [
        ["bcd", "[short]"],
        ["abcdef", "[long]"],
      ]),
    ).toBe("xx [long] yy");
    expect(
      blankMarked("abcdef", [
        ["abcd", "[1]"],
        ["cdef", "[2]"],
      ]),
    ).toBe("[1]");
    // Touching is not overlapping: two marks.
    expect(
      blankMarked("abcdwxyz", [
        ["abcd", "[1]"],
        ["wxyz", "[2]"],
      ]),
    ).toBe("[1][2]");
    // A short secret only where it stands alone.
    expect(blankSecrets("about ab, :ab@", ["ab"], "***")).toBe("about ***, :***@");
  });

  it("blanks 200 secrets that overlap one another on 1 MB of text they all cover, reading it once", () => {
    // Each secret is the one before it and one character more: every position of the text
    // starts an occurrence of each of them (200 million in all). Kept one by one and sorted,
    // as before, they ran the daemon out of memory; read once, they take one pass.
    const secrets = Array.from({ length: 200 }, (_, k) => "x".repeat(300 + k));
    const text = `head ${"x".repeat(1_048_576)} tail`;
    const out = blankSecrets(text, secrets, "[hidden]");
    expect(out).toBe("head [hidden] tail");
  });
});
