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

/** Does `glob` match the canonical absolute `path`? Non-canonical paths never match. */
export function matchPath(glob: string, path: string): boolean {
  const tokens = compile(glob);
  const segs = canonicalSegments(path);
  if (tokens === null || segs === null) return false;
  // Same greedy scheme as wildcardMatch, one level up: "**" plays "*", a segment pattern
  // plays a single character. Each pattern token consumes exactly one segment.
  let p = 0;
  let s = 0;
  let star = -1;
  let mark = 0;
  while (s < segs.length) {
    const tok = tokens[p];
    if (tok !== undefined && !tok.deep && wildcardMatch(tok.pattern, segs[s] as string)) {
      p++;
      s++;
    } else if (tok?.deep) {
      star = p++;
      mark = s;
    } else if (star >= 0) {
      p = star + 1;
      s = ++mark;
    } else return false;
  }
  while (p < tokens.length && tokens[p]?.deep) p++;
  return p === tokens.length;
}

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
