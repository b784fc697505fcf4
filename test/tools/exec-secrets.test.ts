// A proxy password cut by the executor's head/tail capture must not reach the model in pieces.
import { describe, expect, it } from "vitest";
import { Capture } from "../../src/sandbox/executor/exec.js";
import { hideSecrets } from "../../src/tools/hide-secrets.js";

const AGENT = "Qm9vbXRvd25Tb21lUGFzc3dvcmQxMjM0NTY3";
const SECRET = "c2VjcmV0LW9mLXRoZS1jYWxsLTEyMzQ1Njc4";
const WHOLE = `${AGENT}.${SECRET}`;
const SECRETS = [WHOLE, AGENT, SECRET];

/** What the executor returns for `out` under a capture of `cap` bytes. */
function captured(out: string, cap: number): string {
  const c = new Capture(cap);
  c.push(Buffer.from(out));
  return c.text();
}

describe("exec output: a secret the capture cut is blanked on both sides of the cut", () => {
  it("every cut through the printed proxy URL leaves no 4-character piece of either password", () => {
    const line = `HTTP_PROXY=http://a1:${WHOLE}@172.30.0.1:3128\n`;
    for (let pad = 0; pad < line.length; pad++) {
      // cap 64: head 32 bytes, tail 32 bytes; the padding moves the cut across the line.
      const out = `${"x".repeat(pad)}${line}${"y".repeat(200)}${line}`;
      const text = hideSecrets(captured(out, 2 * (pad + 20)), SECRETS);
      for (const s of [AGENT, SECRET]) {
        for (let i = 0; i + 4 <= s.length; i++) expect(text).not.toContain(s.slice(i, i + 4));
      }
    }
  });

  it("the head's end and the tail's start are each blanked, the rest kept", () => {
    const text = hideSecrets(
      `before ${AGENT.slice(0, 10)}\n[... truncated 99 bytes ...]\n${SECRET.slice(-12)} after`,
      SECRETS,
    );
    expect(text).toBe("before [hidden]\n[... truncated 99 bytes ...]\n[hidden] after");
  });

  it("ordinary text at a cut is left as it is, and an uncut output is only matched whole", () => {
    const cut = "ends with Qm9\n[... truncated 5 bytes ...]\nxyz";
    expect(hideSecrets(cut, SECRETS)).toBe(cut);
    expect(hideSecrets(`a ${AGENT.slice(0, 8)} b`, SECRETS)).toBe(`a ${AGENT.slice(0, 8)} b`);
    expect(hideSecrets(`a ${WHOLE} b ${SECRET}`, SECRETS)).toBe("a [hidden] b [hidden]");
  });

  it("a spelling holding the key and the secret is blanked as one, nothing of it left", () => {
    // The password with its dot percent-encoded: the key and the secret (listed before the
    // encoded spellings, egress/secret-spellings.ts) were cut first, leaving "%2E" between marks.
    const spelled = `${AGENT}%2E${SECRET}`;
    expect(hideSecrets(`p=${spelled}`, [...SECRETS, spelled])).toBe("p=[hidden]");
  });
});
