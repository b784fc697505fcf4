// tools/hide-secrets.ts — a text of the goal's container as the model may see it: every proxy
// credential of the goal blanked ("[hidden]"), whole and where a cut fell inside one. The exec
// tool (a command's output), file_read, file_read_many and grep (what a file holds) show the
// container's texts through it; the secrets come from the call's egress access
// (egress/plumbing.ts: the caller's own, and those of every other caller of its goal a text
// holds, each in every spelling a tool prints).
//
// A tool cuts long texts: the executor keeps the head and the tail of a command's output, the
// file tools stop at a byte cap, grep at 500 characters a line. A secret the cut fell inside
// leaves its start before the cut (and, for exec, its end after it), which no whole-secret
// match finds; each such piece, from MIN_SECRET_LENGTH characters, is blanked too. Before,
// only exec's cut was looked at: a file read or grepped so that its cap fell inside a
// credential showed the credential's start.

import type { ToolContext } from "../gate/types.js";
import { blankSecrets, MIN_SECRET_LENGTH } from "../security/blank-secrets.js";

const MARK = "[hidden]";

/** The executor's mark where it cut a long output (executor/exec.ts, the head and tail it keeps). */
const EXEC_CUT = /(\n\[\.\.\. truncated \d+ bytes \.\.\.\]\n)/;

/**
 * The values never to show the model in `text`: the caller's own credentials' spellings, and
 * those of every other caller of its goal, or of one of the caller's other calls, that `text`
 * holds (a file a command of theirs wrote them to). None without egress access.
 */
export function callerSecrets(text: string, egress: ToolContext["egress"]): string[] {
  if (!egress) return [];
  return [...egress.secrets, ...(egress.secretsIn?.(text) ?? [])];
}

/** `text` (a command's output, a file's content) with callerSecrets blanked, exec's cuts included. */
export function hideCallerSecrets(text: string, egress: ToolContext["egress"]): string {
  if (!egress) return text;
  return hideSecrets(text, callerSecrets(text, egress));
}

/**
 * `text` with `secrets` blanked, and the pieces of one the executor's cuts fell inside. The
 * caller's proxy password never reaches the model: a command that prints its environment
 * (env) or the header it sends the proxy (curl -v: Basic base64(user:password), among the
 * spellings egress/plumbing.ts hands over) shows it blanked. A command that encodes it
 * otherwise is not caught; the password only works on its caller's own relay port anyway.
 */
export function hideSecrets(text: string, secrets: readonly string[]): string {
  const out = blankSecrets(text, secrets, MARK);
  if (!EXEC_CUT.test(out)) return out;
  const parts = out.split(EXEC_CUT); // text, cut, text, cut, text...
  for (let i = 1; i < parts.length; i += 2) {
    parts[i - 1] = hideStartAtEnd(parts[i - 1] as string, secrets);
    parts[i + 1] = hideEndAtStart(parts[i + 1] as string, secrets);
  }
  return parts.join("");
}

/**
 * `head`, a text cut at its end (a file read up to a byte cap, a line grep cut), with
 * `secrets` blanked, and the start of one its end holds (where the cut fell inside it).
 */
export function hideCutText(head: string, secrets: readonly string[]): string {
  return hideStartAtEnd(blankSecrets(head, secrets, MARK), secrets);
}

/** `text` with the longest proper start of any of `secrets` it ends with blanked. */
function hideStartAtEnd(text: string, secrets: readonly string[]): string {
  let n = 0;
  for (const s of secrets) n = Math.max(n, startAtEnd(text, s));
  return n === 0 ? text : `${text.slice(0, text.length - n)}${MARK}`;
}

/** `text` with the longest proper end of any of `secrets` it starts with blanked. */
function hideEndAtStart(text: string, secrets: readonly string[]): string {
  let n = 0;
  for (const s of secrets) {
    const head = text.slice(0, s.length - 1);
    n = Math.max(n, startAtEnd(reversed(head), reversed(s)));
  }
  return n === 0 ? text : `${MARK}${text.slice(n)}`;
}

/**
 * The length of the longest proper start of `secret` that `text` ends with (0 below
 * MIN_SECRET_LENGTH), in one pass over the last characters of `text` (the prefix function of
 * `secret`): a grep of 500 cut lines asks it of each line for every spelling of the goal's
 * credentials.
 */
function startAtEnd(text: string, secret: string): number {
  if (secret.length <= MIN_SECRET_LENGTH) return 0;
  const fail = prefixFunction(secret);
  let k = 0;
  for (let i = Math.max(0, text.length - (secret.length - 1)); i < text.length; i++) {
    const c = text.charCodeAt(i);
    while (k > 0 && secret.charCodeAt(k) !== c) k = fail[k - 1] as number;
    if (secret.charCodeAt(k) === c) k++;
  }
  return k >= MIN_SECRET_LENGTH ? k : 0;
}

/** fail[i]: the length of the longest proper start of s[0..i] that is also its end. */
function prefixFunction(s: string): Int32Array {
  const fail = new Int32Array(s.length);
  for (let i = 1, k = 0; i < s.length; i++) {
    while (k > 0 && s.charCodeAt(i) !== s.charCodeAt(k)) k = fail[k - 1] as number;
    if (s.charCodeAt(i) === s.charCodeAt(k)) k++;
    fail[i] = k;
  }
  return fail;
}

function reversed(s: string): string {
  let out = "";
  for (let i = s.length - 1; i >= 0; i--) out += s[i];
  return out;
}
