// humansandbox/scrub.ts — keeps the values of a sandbox's `env` (and the credentials Aido
// makes for a run: its proxy password, "[hidden]") out of everything Aido writes or shows. Output is cut into lines (a value cannot hide across a chunk border
// inside a line), a line past 64 KiB into pieces cut where no value crosses, and every
// occurrence of a value becomes "[env:NAME]". Values shorter
// than 4 characters (MIN_SECRET_LENGTH) are not scrubbed: replacing every "1" or "on" would wreck the output
// and hide nothing worth hiding (docs/sandbox-cli.md says so).

import { StringDecoder } from "node:string_decoder";
import { blankMarked, MIN_SECRET_LENGTH } from "../security/blank-secrets.js";
import { inert, inertLines } from "../security/terminal-text.js";

/**
 * A line longer than this is passed on in pieces, each cut where it splits no value
 * (Scrubber.cutBefore): a value cut at a piece border showed, half in each piece.
 */
export const MAX_LINE_CHARS = 64 * 1024;

export class Scrubber {
  private readonly pairs: Array<[string, string]>;

  constructor(env: Record<string, string>) {
    this.pairs = Object.entries(env)
      .filter(([, v]) => v.length >= MIN_SECRET_LENGTH)
      .flatMap(([name, value]) => spellings(value).map((v): [string, string] => [v, `[env:${name}]`]));
  }

  /** Also hide `value` (a credential Aido made, e.g. a run's proxy password) as "[hidden]". */
  hide(value: string): void {
    if (value.length < MIN_SECRET_LENGTH) return;
    for (const v of spellings(value)) this.pairs.push([v, "[hidden]"]);
  }

  scrub(text: string): string {
    return blankMarked(text, this.pairs);
  }

  /** The longest spelling hidden: a stretch that long past a cut decides where the cut goes. */
  longest(): number {
    return Math.max(0, ...this.pairs.map(([v]) => v.length));
  }

  /**
   * `at`, or the start of the value `text` holds across it (the earliest, when values overlap
   * there), so that cutting `text` there splits none; `at` when a value starts at 0 (one
   * longer than a piece cannot be kept whole). `text` must reach longest() - 1 past `at`.
   */
  cutBefore(text: string, at: number): number {
    let cut = at;
    for (let moved = true; moved; ) {
      moved = false;
      for (const [v] of this.pairs) {
        const start = text.indexOf(v, Math.max(0, cut - v.length + 1));
        if (start >= 0 && start < cut) {
          cut = start;
          moved = true;
        }
      }
    }
    return cut > 0 ? cut : at;
  }
}

/**
 * A value as it may be written: as it is, and as the terminal-safe forms Aido writes text in
 * before it reaches a scrubber (an error naming a task's file is made inert where it is
 * raised): a value with a tab or an invisible character in it would otherwise not match.
 */
function spellings(value: string): string[] {
  return [...new Set([value, inert(value), inertLines(value)])];
}

/** Bytes in, scrubbed complete lines out (without their "\n"). */
export class LineStream {
  private readonly decoder = new StringDecoder("utf8");
  private partial = "";

  constructor(
    private readonly scrubber: Scrubber,
    private readonly onLine: (line: string) => void,
  ) {}

  write(chunk: Buffer): void {
    this.partial += this.decoder.write(chunk);
    let nl = this.partial.indexOf("\n");
    while (nl >= 0) {
      this.onLine(this.scrubber.scrub(this.partial.slice(0, nl)));
      this.partial = this.partial.slice(nl + 1);
      nl = this.partial.indexOf("\n");
    }
    // A piece is cut only once what follows it holds any value that may cross the cut whole.
    const past = Math.max(0, this.scrubber.longest() - 1);
    while (this.partial.length > MAX_LINE_CHARS + past) {
      const cut = this.scrubber.cutBefore(this.partial, MAX_LINE_CHARS);
      this.onLine(this.scrubber.scrub(this.partial.slice(0, cut)));
      this.partial = this.partial.slice(cut);
    }
  }

  /** The last line when the output did not end with "\n". */
  end(): void {
    this.partial += this.decoder.end();
    if (this.partial !== "") this.onLine(this.scrubber.scrub(this.partial));
    this.partial = "";
  }
}
