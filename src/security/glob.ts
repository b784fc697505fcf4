// security/glob.ts — matching and subset tests for the path globs that parseGrant accepts.
// Path grants ("file_read: /workspace/**") are checked here, and so is narrowing: a child
// may only hold a glob that its parent's glob covers. Both are written over segments, never
// over raw strings, so "/data/*" can never match "/data-x" and a prefix trick cannot widen.
//
// Grammar (validated by parseGrant; anything else matches nothing here):
//   glob     = "/" | ("/" segment)+ ["/"]      a trailing "/" is ignored
//   segment  = "**"                            zero or more whole path segments
//            | chars and "*"                   "*" = any run of characters, "/" excluded
// Decisions:
//   - "/data/**" matches "/data" itself, "/data/x" and "/data/x/y"; "/**" matches everything.
//   - "*" matches any characters within one segment, a leading "." included ("/w/*" matches
//     "/w/.env"): grants are about where, not about hidden files.
//   - Paths must be canonical and absolute (as resolved inside the container): a path with
//     "." or ".." segments, "//", a trailing "/" or a NUL is matched by no glob at all.

/** One element of a parsed glob: a segment pattern, or "**" (any number of segments). */
type GlobToken = { deep: true } | { deep: false; pattern: string };

const DEEP: GlobToken = { deep: true };
const compiled = new Map<string, GlobToken[] | null>();
const CACHE_LIMIT = 4096;
const RUN_LIMIT = 10_000;

/** Split a glob into tokens; null for anything parseGrant would not have accepted. */
function compile(glob: string): GlobToken[] | null {
  const hit = compiled.get(glob);
  if (hit !== undefined) return hit;
  const tokens = tokenize(glob);
  if (compiled.size >= CACHE_LIMIT) compiled.clear();
  compiled.set(glob, tokens);
  return tokens;
}

function tokenize(glob: string): GlobToken[] | null {
  if (typeof glob !== "string" || !glob.startsWith("/") || /[\0?[\]{}\\]/.test(glob)) return null;
  const body = glob.endsWith("/") ? glob.slice(1, -1) : glob.slice(1);
  if (body === "") return glob === "/" ? [] : null;
  const out: GlobToken[] = [];
  for (const seg of body.split("/")) {
    if (seg === "" || seg === "." || seg === "..") return null;
    if (seg === "**") {
      if (out.at(-1) !== DEEP) out.push(DEEP); // "**/**" is one "**"
    } else if (seg.includes("**")) return null;
    else out.push({ deep: false, pattern: seg });
  }
  return out;
}

/** Segments of a canonical absolute path, or null when the path is not canonical. */
export function canonicalSegments(path: string): string[] | null {
  if (typeof path !== "string" || !path.startsWith("/") || path.includes("\0")) return null;
  if (path === "/") return [];
  const segs = path.slice(1).split("/");
  for (const s of segs) if (s === "" || s === "." || s === "..") return null;
  return segs;
}

export function isCanonicalPath(path: string): boolean {
  return canonicalSegments(path) !== null;
}

/**
 * Does the one-segment pattern (only "*" as wildcard) match `text`? Classic greedy match
 * with backtracking to the last star: O(pattern × text), no regular expressions, so a
 * hostile pattern cannot make it blow up.
 */
export function wildcardMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] !== "*" && pattern[p] === text[t]) {
      p++;
      t++;
    } else if (p < pattern.length && pattern[p] === "*") {
      star = p++;
      mark = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++mark;
    } else return false;
  }
  while (p < pattern.length && pattern[p] === "*") p++;
  return p === pattern.length;
}

/**
 * Is every string `inner` matches also matched by `outer` (both one-segment patterns with
 * "*")? Decided syntactically: outer must match inner's text where an outer "*" may absorb
 * anything (inner stars included) and an outer literal must meet the same inner literal.
 * That is sound always, and exact here because the alphabet is far larger than any pattern.
 */
export function wildcardCovers(outer: string, inner: string): boolean {
  if (outer === inner || outer === "*") return true;
  // dp[j]: outer[0..i) matches inner[0..j), rolled over i.
  let dp: boolean[] = new Array(inner.length + 1).fill(false);
  dp[0] = true;
  for (let i = 0; i < outer.length; i++) {
    const next: boolean[] = new Array(inner.length + 1).fill(false);
    if (outer[i] === "*") {
      let reach = false;
      for (let j = 0; j <= inner.length; j++) {
        reach = reach || (dp[j] as boolean);
        next[j] = reach;
      }
    } else {
      for (let j = 1; j <= inner.length; j++) {
        next[j] = (dp[j - 1] as boolean) && inner[j - 1] !== "*" && inner[j - 1] === outer[i];
      }
    }
    dp = next;
  }
  return dp[inner.length] as boolean;
}

/**
 * Greedy match with backtracking to the last star, O(pattern × text): shared by matchPath
 * (segments, "**" as the star) and the filter globs (characters, "*" as the star).
 */
function greedy<P, T>(
  pat: readonly P[],
  text: readonly T[],
  isStar: (p: P) => boolean,
  one: (p: P, t: T) => boolean,
) {
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    const tok = pat[p];
    if (tok !== undefined && !isStar(tok) && one(tok, text[t] as T)) {
      p++;
      t++;
    } else if (tok !== undefined && isStar(tok)) {
      star = p++;
      mark = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++mark;
    } else return false;
  }
  while (p < pat.length && isStar(pat[p] as P)) p++;
  return p === pat.length;
}

/** Does `glob` match the canonical absolute `path`? Non-canonical paths never match. */
export function matchPath(glob: string, path: string): boolean {
  const tokens = compile(glob);
  const segs = canonicalSegments(path);
  if (tokens === null || segs === null) return false;
  // Same greedy scheme as wildcardMatch, one level up: "**" plays "*", a segment pattern
  // plays a single character. Each pattern token consumes exactly one segment.
  return greedy(
    tokens,
    segs,
    (t) => t.deep,
    (t, seg) => !t.deep && wildcardMatch(t.pattern, seg),
  );
}

/**
 * A folder as a glob for the subset tests: `subtree` is the folder and everything below it,
 * `below` only what is strictly below. A folder whose name holds glob characters yields a
 * glob that covers less and overlaps more, so callers err on the narrow side.
 */
export const subtree = (dir: string): string => (dir === "/" ? "/**" : `${dir}/**`);
export const below = (dir: string): string => (dir === "/" ? "/*/**" : `${dir}/*/**`);

/**
 * Is every path `inner` matches also matched by `outer`? Exact, not a heuristic.
 *
 * Read `outer` as an automaton over segments (state i = "tokens before i consumed"; a "**"
 * state loops on any segment and may be skipped). Run it on the hardest path `inner` can
 * produce: each inner segment pattern P stands for P with every "*" replaced by a character
 * no pattern mentions. That witness is matched by an outer segment pattern Q exactly when
 * wildcardCovers(Q, P), so one set of states per inner token suffices. An inner "**" stands
 * for any number of such witness segments ("*"), so it forks the run into every state set
 * reachable after 0, 1, 2, ... of them (the sequence repeats within outer.length + 1
 * steps). `inner` is covered iff every run ends holding the final state.
 */
export function globCovers(outer: string, inner: string): boolean {
  const o = compile(outer);
  const n = compile(inner);
  if (o === null || n === null) return false;
  if (outer === inner) return true;
  const close = (states: Set<number>): Set<number> => {
    for (const i of states) if (o[i]?.deep) states.add(i + 1); // Set iteration sees additions
    return states;
  };
  const step = (states: Set<number>, pattern: string): Set<number> => {
    const next = new Set<number>();
    for (const i of states) {
      const tok = o[i];
      if (tok === undefined) continue;
      if (tok.deep) next.add(i);
      else if (wildcardCovers(tok.pattern, pattern)) next.add(i + 1);
    }
    return close(next);
  };
  const keyOf = (states: Set<number>): string => [...states].sort((a, b) => a - b).join(",");

  let runs = new Map<string, Set<number>>();
  const start = close(new Set([0]));
  runs.set(keyOf(start), start);
  for (const tok of n) {
    const next = new Map<string, Set<number>>();
    for (const states of runs.values()) {
      if (!tok.deep) {
        const s = step(states, tok.pattern);
        if (s.size === 0) return false;
        next.set(keyOf(s), s);
        continue;
      }
      let s = states;
      while (!next.has(keyOf(s))) {
        if (s.size === 0) return false;
        next.set(keyOf(s), s);
        s = step(s, "*");
      }
    }
    if (next.size > RUN_LIMIT) return false; // pathological globs: answer the safe way
    runs = next;
  }
  for (const states of runs.values()) if (!states.has(o.length)) return false;
  return true;
}

/**
 * Could one path match both globs? Used by deny rules against a need that names a whole
 * subtree ("/workspace/**"): a deny rule must fire when the subtree and the rule overlap at
 * all. Conservative: it may answer true for globs that share no path, never the reverse.
 */
export function globsOverlap(a: string, b: string): boolean {
  const x = compile(a);
  const y = compile(b);
  if (x === null || y === null) return true;
  const memo = new Map<string, boolean>();
  const go = (i: number, j: number): boolean => {
    const key = `${i},${j}`;
    const known = memo.get(key);
    if (known !== undefined) return known;
    let r: boolean;
    const s = x[i];
    const t = y[j];
    if (s === undefined && t === undefined) r = true;
    else if (s?.deep) r = go(i + 1, j) || (t !== undefined && go(i, j + 1));
    else if (t?.deep) r = go(i, j + 1) || (s !== undefined && go(i + 1, j));
    else if (s === undefined || t === undefined) r = false;
    else r = segmentsOverlap(s.pattern, t.pattern) && go(i + 1, j + 1);
    memo.set(key, r);
    return r;
  };
  return go(0, 0);
}

function segmentsOverlap(p: string, q: string): boolean {
  if (!p.includes("*")) return wildcardMatch(q, p);
  if (!q.includes("*")) return wildcardMatch(p, q);
  // Both have stars: a shared string exists unless the fixed ends contradict each other.
  const pre = (s: string) => s.slice(0, s.indexOf("*"));
  const suf = (s: string) => s.slice(s.lastIndexOf("*") + 1);
  const [p1, q1, p2, q2] = [pre(p), pre(q), suf(p), suf(q)];
  return (p1.startsWith(q1) || q1.startsWith(p1)) && (p2.endsWith(q2) || q2.endsWith(p2));
}

// ---------------------------------------------------------------- filter globs
//
// grep's `glob` input selects files by name (or by relative path when it holds a "/"). It
// is a search filter, not a grant, so it takes the usual wider grammar: "*", "?", "[a-z]",
// "[!x]" within a segment, "**" across segments, "{a,b}" alternatives (at most
// FILTER_ALTERNATIVES_MAX after expansion) and "\x" for a literal x. Grants never go through
// here: parseGrant keeps them to the narrow grammar above, where subset checks are exact.

const FILTER_ALTERNATIVES_MAX = 256;

type CharToken =
  | { t: "star" }
  | { t: "one" }
  | { t: "lit"; c: string }
  | { t: "set"; negated: boolean; ranges: [string, string][] };

/** "{a,b}x" -> ["ax", "bx"], innermost first; an unbalanced brace is a literal. */
function expandBraces(glob: string, out: string[]): void {
  let depth = 0;
  let open = -1;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "\\") i++;
    else if (c === "{" && depth++ === 0) open = i;
    else if (c === "}" && depth > 0 && --depth === 0) {
      const inner = glob.slice(open + 1, i);
      const alts: string[] = [];
      let d = 0;
      let start = 0;
      for (let j = 0; j < inner.length; j++) {
        const x = inner[j];
        if (x === "\\") j++;
        else if (x === "{") d++;
        else if (x === "}") d--;
        else if (x === "," && d === 0) {
          alts.push(inner.slice(start, j));
          start = j + 1;
        }
      }
      alts.push(inner.slice(start));
      if (alts.length === 1) continue; // "{x}" is literal text
      for (const alt of alts) expandBraces(glob.slice(0, open) + alt + glob.slice(i + 1), out);
      return;
    }
  }
  if (out.length >= FILTER_ALTERNATIVES_MAX) {
    throw new Error(`glob has more than ${FILTER_ALTERNATIVES_MAX} {a,b} alternatives`);
  }
  out.push(glob);
}

function charTokens(seg: string): CharToken[] {
  const out: CharToken[] = [];
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i] as string;
    if (c === "*") {
      if (out.at(-1)?.t !== "star") out.push({ t: "star" });
    } else if (c === "?") out.push({ t: "one" });
    else if (c === "\\" && i + 1 < seg.length) out.push({ t: "lit", c: seg[++i] as string });
    else if (c === "[" && seg.indexOf("]", i + 2) > 0) {
      const close = seg.indexOf("]", i + 2);
      let body = seg.slice(i + 1, close);
      const negated = body[0] === "!" || body[0] === "^";
      if (negated) body = body.slice(1);
      const ranges: [string, string][] = [];
      for (let j = 0; j < body.length; j++) {
        const lo = body[j] as string;
        if (body[j + 1] === "-" && j + 2 < body.length) {
          ranges.push([lo, body[j + 2] as string]);
          j += 2;
        } else ranges.push([lo, lo]);
      }
      out.push({ t: "set", negated, ranges });
      i = close;
    } else out.push({ t: "lit", c });
  }
  return out;
}

function oneChar(tok: CharToken, c: string): boolean {
  if (tok.t === "one") return true;
  if (tok.t === "lit") return tok.c === c;
  if (tok.t === "set") return tok.ranges.some(([lo, hi]) => c >= lo && c <= hi) !== tok.negated;
  return false;
}

type SegToken = { deep: true } | { deep: false; chars: CharToken[] };

/** A matcher for a filter glob against a "/"-separated path; throws for too many alternatives. */
export function filterGlobMatcher(glob: string): (path: string) => boolean {
  const alternatives: string[] = [];
  expandBraces(glob, alternatives);
  const compiledAlts = alternatives.map((alt) =>
    alt
      .split("/")
      .map((seg): SegToken => (seg === "**" ? { deep: true } : { deep: false, chars: charTokens(seg) })),
  );
  return (path) => {
    const segs = path.split("/");
    return compiledAlts.some((toks) =>
      greedy(
        toks,
        segs,
        (s) => s.deep,
        (s, text) => !s.deep && greedy(s.chars, [...text], (c) => c.t === "star", oneChar),
      ),
    );
  };
}
