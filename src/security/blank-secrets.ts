// security/blank-secrets.ts — the one way a secret is cut out of a text before Aido shows,
// logs, records or passes it on: a provider's failure, a Redis error, an MCP server's result
// or error, an exec's output, a recorded exchange, a span, a sandbox's output. Each caller
// keeps its own mark ("***", "[redacted]", "[hidden]", "[env:NAME]": the docs name them);
// what counts as a match, and what happens to a short secret, is decided here only.
// Before, seven copies of `out.split(s).join(mark)` each had a rule of their own: a Redis
// password of two letters blanked that pair in every word of a node's logs and routed
// errors, while an MCP server's 7-character header value reached the model in a result.
//
// The text is read once whatever the secrets (an Aho-Corasick automaton of them, run over the
// text backwards so that each position learns the longest secret starting there). Before,
// each secret was searched on its own and every occurrence kept and sorted: 200 secrets that
// overlap one another (a goal's credentials in all their spellings) on 1 MB of output took
// 29.7 s, and as long again for each tool output that held them.

/**
 * A secret this long or longer is blanked wherever it appears. A shorter one occurs inside
 * ordinary words (a Redis password "ab" in "about", a header "2" in every number): blanking
 * it there garbles the text, and the pattern of blanks shows the secret anyway. It is blanked
 * only where it stands as a word of its own (no letter, digit or "_" touching it: the
 * `:ab@` of a URL, `AUTH ab`, `"ab"`), which is where a text quotes it as a value.
 * The same length is the least piece of a secret worth blanking where a long output was cut
 * inside it (tools/hide-secrets.ts) and the least environment value a sandbox's scrubber
 * takes for a secret (humansandbox/scrub.ts).
 */
export const MIN_SECRET_LENGTH = 4;

/** A word character ending the text before a short secret, or starting the text after it. */
const WORD_BEFORE = /[\p{L}\p{N}_]$/u;
const WORD_AFTER = /^[\p{L}\p{N}_]/u;

/**
 * `text` with every occurrence of each of `secrets` (as written: a caller lists the other
 * spellings it knows of) replaced by `mark`. Where occurrences overlap or nest (a key inside
 * the longer credential that holds it), the whole stretch they cover becomes one mark: no
 * tail of the longer one is left beside it, and a mark is never matched again.
 */
export function blankSecrets(text: string, secrets: Iterable<string>, mark: string): string {
  return blankMarked(
    text,
    Array.from(secrets, (s): [string, string] => [s, mark]),
  );
}

/**
 * blankSecrets with a mark of each secret's own (`[value, mark]`, a sandbox's "[env:NAME]"):
 * a stretch several secrets cover gets the mark of the longest of them (the first listed of
 * equals: the one that starts first).
 */
export function blankMarked(text: string, marked: Iterable<readonly [string, string]>): string {
  const marks = new Map<string, string>(); // secret -> its mark (the first listed of a value)
  for (const [s, mark] of marked) if (s !== "" && !marks.has(s)) marks.set(s, mark);
  if (marks.size === 0 || text === "") return text;
  const found = longestAt(text, marks);
  if (!found) return text;
  const { length, secretAt } = found;
  const parts: string[] = [];
  let done = 0;
  for (let i = 0; i < text.length; i++) {
    if (length[i] === 0) continue;
    // A stretch: every occurrence starting before its end so far widens it (one that starts
    // where it ends is a stretch of its own); its mark is its widest occurrence's.
    let end = i + (length[i] as number);
    let widest = i;
    for (let j = i + 1; j < end; j++) {
      const n = length[j] as number;
      if (n === 0) continue;
      if (j + n > end) end = j + n;
      if (n > (length[widest] as number)) widest = j;
    }
    parts.push(text.slice(done, i), marks.get(secretAt(widest)) as string);
    done = end;
    i = end - 1;
  }
  parts.push(text.slice(done));
  return parts.join("");
}

/**
 * For each position of `text`, the length of the longest of `secrets` that occurs there (0 for
 * none) and which it is; undefined when none occurs. A secret shorter than MIN_SECRET_LENGTH
 * counts only where it stands alone.
 */
function longestAt(
  text: string,
  secrets: ReadonlyMap<string, string>,
): { length: Int32Array; secretAt: (i: number) => string } | undefined {
  const long: string[] = [];
  const short: string[] = [];
  for (const s of secrets.keys()) (s.length >= MIN_SECRET_LENGTH ? long : short).push(s);
  const length = new Int32Array(text.length);
  const which = new Int32Array(text.length); // index into [...long, ...short]
  let any = false;
  if (long.length > 0) {
    const trie = ReversedTrie.of(long);
    // Backwards: the automaton's state at position i spells the longest end of text[i..]
    // reversed that is a start of some secret reversed, so the longest secret it holds whole
    // is the longest that starts at i.
    let state = 0;
    for (let i = text.length - 1; i >= 0; i--) {
      state = trie.step(state, text.charCodeAt(i));
      const hit = trie.longest[state] as number;
      if (hit >= 0) {
        length[i] = (long[hit] as string).length;
        which[i] = hit;
        any = true;
      }
    }
  }
  short.forEach((s, k) => {
    for (let at = text.indexOf(s); at >= 0; at = text.indexOf(s, at + 1)) {
      if (s.length > (length[at] as number) && standsAlone(text, at, at + s.length)) {
        length[at] = s.length;
        which[at] = long.length + k;
        any = true;
      }
    }
  });
  if (!any) return undefined;
  const all = [...long, ...short];
  return { length, secretAt: (i) => all[which[i] as number] as string };
}

/**
 * An Aho-Corasick automaton of secrets read backwards. State 0 is the root; `longest[state]`
 * is the index of the longest secret that the state's string ends with (-1: none).
 */
class ReversedTrie {
  private readonly next: Map<number, number>[] = [new Map()];
  private readonly fail: number[] = [0];
  readonly longest: number[] = [-1];

  static of(secrets: readonly string[]): ReversedTrie {
    const t = new ReversedTrie();
    for (const [index, s] of secrets.entries()) t.add(s, index);
    t.link();
    return t;
  }

  private add(s: string, index: number): void {
    let state = 0;
    for (let k = s.length - 1; k >= 0; k--) {
      const c = s.charCodeAt(k);
      const edges = this.next[state] as Map<number, number>;
      let to = edges.get(c);
      if (to === undefined) {
        to = this.next.length;
        this.next.push(new Map());
        this.fail.push(0);
        this.longest.push(-1);
        edges.set(c, to);
      }
      state = to;
    }
    this.longest[state] = index; // secrets are distinct: one per state
  }

  /** Failure links breadth first; a state's longest secret is its own, else its failure's. */
  private link(): void {
    const queue: number[] = [];
    for (const to of (this.next[0] as Map<number, number>).values()) queue.push(to);
    for (let q = 0; q < queue.length; q++) {
      const state = queue[q] as number;
      if (this.longest[state] === -1)
        this.longest[state] = this.longest[this.fail[state] as number] as number;
      for (const [c, to] of this.next[state] as Map<number, number>) {
        this.fail[to] = this.step(this.fail[state] as number, c);
        queue.push(to);
      }
    }
  }

  step(state: number, c: number): number {
    for (let s = state; ; s = this.fail[s] as number) {
      const to = (this.next[s] as Map<number, number>).get(c);
      if (to !== undefined) return to;
      if (s === 0) return 0;
    }
  }
}

/** No word character touches text[start, end) on either side (two code units: one code point). */
function standsAlone(text: string, start: number, end: number): boolean {
  return (
    !WORD_BEFORE.test(text.slice(Math.max(0, start - 2), start)) && !WORD_AFTER.test(text.slice(end, end + 2))
  );
}
