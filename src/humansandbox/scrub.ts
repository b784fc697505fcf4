// humansandbox/scrub.ts — keeps the values of a sandbox's `env` (and the credentials Aido
// makes for a run: its proxy password, "[hidden]") out of everything Aido writes or shows. Output is cut into lines (a value cannot hide across a chunk border
// inside a line) and every occurrence of a value becomes "[env:NAME]". Values shorter
// than 4 characters (MIN_SECRET_LENGTH) are not scrubbed: replacing every "1" or "on" would wreck the output
// and hide nothing worth hiding (docs/sandbox-cli.md says so).

import { StringDecoder } from "node:string_decoder";
import { blankMarked, MIN_SECRET_LENGTH } from "../security/blank-secrets.js";
import { inert, inertLines } from "../security/terminal-text.js";

/** A line longer than this is passed on in pieces (a value cut at a piece border may show). */
const MAX_LINE_CHARS = 64 * 1024;

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
    while (this.partial.length > MAX_LINE_CHARS) {
      this.onLine(this.scrubber.scrub(this.partial.slice(0, MAX_LINE_CHARS)));
      this.partial = this.partial.slice(MAX_LINE_CHARS);
    }
  }

  /** The last line when the output did not end with "\n". */
  end(): void {
    this.partial += this.decoder.end();
    if (this.partial !== "") this.onLine(this.scrubber.scrub(this.partial));
    this.partial = "";
  }
}
