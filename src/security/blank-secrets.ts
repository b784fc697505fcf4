// security/blank-secrets.ts — the one way a secret is cut out of a text before Aido shows,
// logs, records or passes it on: a provider's failure, a Redis error, an MCP server's result
// or error, an exec's output, a recorded exchange, a span, a sandbox's output. Each caller
// keeps its own mark ("***", "[redacted]", "[hidden]", "[env:NAME]": the docs name them);
// what counts as a match, and what happens to a short secret, is decided here only.
// Before, seven copies of `out.split(s).join(mark)` each had a rule of their own: a Redis
// password of two letters blanked that pair in every word of a node's logs and routed
// errors, while an MCP server's 7-character header value reached the model in a result.

/**
 * A secret this long or longer is blanked wherever it appears. A shorter one occurs inside
 * ordinary words (a Redis password "ab" in "about", a header "2" in every number): blanking
 * it there garbles the text, and the pattern of blanks shows the secret anyway. It is blanked
 * only where it stands as a word of its own (no letter, digit or "_" touching it: the
 * `:ab@` of a URL, `AUTH ab`, `"ab"`), which is where a text quotes it as a value.
 * The same length is the least piece of a secret worth blanking where a long output was cut
 * inside it (tools/exec.ts) and the least environment value a sandbox's scrubber takes for a
 * secret (humansandbox/scrub.ts).
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
 * equals).
 */
export function blankMarked(text: string, marked: Iterable<readonly [string, string]>): string {
  const spans: Span[] = [];
  const seen = new Set<string>();
  for (const [s, mark] of marked) {
    if (s === "" || seen.has(s)) continue;
    seen.add(s);
    for (let at = text.indexOf(s); at >= 0; at = text.indexOf(s, at + 1)) {
      if (s.length >= MIN_SECRET_LENGTH || standsAlone(text, at, at + s.length)) {
        spans.push({ start: at, end: at + s.length, mark });
      }
    }
  }
  if (spans.length === 0) return text;
  spans.sort((a, b) => a.start - b.start); // stable: equal starts keep the listed order
  let out = "";
  let done = 0;
  for (let i = 0; i < spans.length; ) {
    const first = spans[i] as Span;
    let { end } = first;
    let widest = first;
    for (i++; i < spans.length && (spans[i] as Span).start < end; i++) {
      const next = spans[i] as Span;
      end = Math.max(end, next.end);
      if (next.end - next.start > widest.end - widest.start) widest = next;
    }
    out += text.slice(done, first.start) + widest.mark;
    done = end;
  }
  return out + text.slice(done);
}

interface Span {
  start: number;
  end: number;
  mark: string;
}

/** No word character touches text[start, end) on either side (two code units: one code point). */
function standsAlone(text: string, start: number, end: number): boolean {
  return (
    !WORD_BEFORE.test(text.slice(Math.max(0, start - 2), start)) && !WORD_AFTER.test(text.slice(end, end + 2))
  );
}
