// egress/secret-spellings.ts — the spellings of a caller's proxy credentials that the exec
// tool blanks in what the model sees (tools/hide-secrets.ts hideSecrets; plumbing.ts access() hands
// them over). The password as given was blanked, and the Basic value curl -v and wget -d
// print; a command that printed the password percent-encoded (`%2E` for a call's dot), as
// base64 on its own (`printf %s "$p" | base64 -w0`, python's b64encode, `env | base64 -w0`)
// or as hex (python's .hex(), `xxd -p -c0`) showed it to the model whole.
//
// What is blanked is what tools print on one line by themselves: no scrubber can follow a
// model that re-encodes on purpose (base64 wrapped at 76 columns, `xxd -p` at 60, reversed,
// spaced, rot13, a character at a time). The credentials work only on the caller's own relay
// port, from its own goal's network (a call's after the call ended too: docs/egress.md).

import { unescape as percentDecoded } from "node:querystring";

/** A base64 core shorter than this is not blanked: it could be ordinary text. */
const MIN_CORE = 16;

/**
 * The credentials as a client sends them, `Proxy-Authorization: Basic <this>`: curl -v (and
 * wget -d) print that header, a spelling no match of the password finds.
 */
export function basicCredentials(user: string, password: string): string {
  return Buffer.from(`${user}:${password}`).toString("base64");
}

/**
 * Every spelling of `user:password` and of each of `secrets` (the password, a call's key and
 * secret) the exec tool blanks: `secrets` as given first, in their order (the whole before its
 * parts), then the encoded spellings, longest first (hex of the whole before hex of its key).
 */
export function credentialSpellings(user: string, password: string, secrets: readonly string[]): string[] {
  const encoded = new Set<string>([basicCredentials(user, password)]);
  for (const s of secrets) {
    if (s === "") continue;
    for (const v of percentEncoded(s)) encoded.add(v);
    for (const v of base64Cores(s)) encoded.add(v);
    const hex = Buffer.from(s).toString("hex");
    encoded.add(hex);
    encoded.add(hex.toUpperCase());
  }
  const plain = secrets.filter((s) => s !== "");
  return [...new Set([...plain, ...[...encoded].sort((a, b) => b.length - a.length)])];
}

/**
 * `s` percent-encoded: every character but letters and digits (`quote(s, safe="")` keeps
 * `.-_~`, a hand-made encoding does not), or only its dots, each in upper- and lowercase hex.
 */
function percentEncoded(s: string): string[] {
  const encode = (re: RegExp) => (upper: boolean) =>
    s.replace(re, (c) => {
      const hex = Buffer.from(c)
        .toString("hex")
        .replace(/../g, (b) => `%${b}`);
      return upper ? hex.toUpperCase() : hex;
    });
  return [encode(/[^A-Za-z0-9]/g), encode(/\./g)].flatMap((f) => [f(true), f(false)]).filter((v) => v !== s);
}

/**
 * The base64 (and base64url) characters that only `s` determines, whichever of the three
 * byte offsets it starts at in what was encoded: so `s` inside a longer text (an environment,
 * a proxy URL) encoded on one line is found, leaving at most two characters at either end.
 */
function base64Cores(s: string): string[] {
  const bytes = Buffer.from(s);
  const cores: string[] = [];
  for (let start = 0; start < 3; start++) {
    const rest = bytes.subarray(start);
    const core = rest.subarray(0, rest.length - (rest.length % 3));
    if (core.length * (4 / 3) < MIN_CORE) continue;
    cores.push(core.toString("base64"), core.toString("base64url"));
  }
  return cores;
}

/**
 * A run of base64 (or base64url) characters, and of hex digits, long enough to hold a call's
 * credentials (76 characters: 102 in base64, 152 in hex). Shorter runs are not decoded: each
 * is a view of its own, and a text of many short ones (a listing of hashes) cost seconds.
 */
const BASE64_RUN = /[A-Za-z0-9+/_-]{100,}/g;
const HEX_RUN = /[0-9a-fA-F]{152,}/g;

/**
 * `text` and what it says decoded in each spelling credentialSpellings blanks: percent-decoded,
 * and each run of base64 (from each of its first four characters) or hex (from each of its
 * first two) decoded on its own. A credential found in one of them (egress/callers.ts
 * callCredentialsIn) is blanked in `text` through its spellings: before, another call's
 * credentials a file held as `env | base64 -w0` or hex printed reached a later call's model.
 */
export function decodedViews(text: string): string[] {
  const views = [text];
  if (text.includes("%")) views.push(percentDecoded(text));
  for (const [run] of text.matchAll(BASE64_RUN)) {
    for (let off = 0; off < 4; off++) views.push(Buffer.from(run.slice(off), "base64").toString("latin1"));
  }
  for (const [run] of text.matchAll(HEX_RUN)) {
    for (let off = 0; off < 2; off++) views.push(Buffer.from(run.slice(off), "hex").toString("latin1"));
  }
  return views;
}
