// The spellings of a call's proxy credentials a command prints by itself, through the path a
// model takes: an exec an MCP call runs in the session's real container on its egress
// network, whose output reaches the model scrubbed (tools/hide-secrets.ts hideSecrets, the spellings
// of egress/secret-spellings.ts). The credentials are `<key>.<secret>`; the password was
// blanked as given and in the Basic value curl -v prints, not percent-encoded (`%2E` for the
// dot), base64 on one line on its own or inside an encoded environment, or hex.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { UPSTREAM_NETS } from "../egress/docker-upstream.js";
import { SESSION, useEgressSession } from "./egress-session.js";
import { textOf } from "./fixture.js";

const { suite, start, sessionFile } = useEgressSession(UPSTREAM_NETS.mcpSpellings);

/** The session with the file tools that show a file's text. */
const WITH_FILE_TOOLS = SESSION.replace(
  '  - "tool: file_read"\n',
  '  - "tool: file_read"\n  - "tool: file_read_many"\n  - "tool: grep"\n',
);

const py = (expr: string) => `$(python3 -c 'import os,sys,base64,urllib.parse as u; print(${expr})' "$p")`;

/** Each line one spelling, as a tool (or a one-line encoding) prints it. */
const PRINT = [
  'printf %s "$HTTP_PROXY" > /workspace/proxy-url',
  `p="\${HTTP_PROXY#http://*:}"; p="\${p%@*}"`,
  `echo "pct-dot=$(printf %s "$p" | sed 's/[.]/%2E/')"`,
  `echo "pct-low=$(printf %s "$p" | sed 's/[.]/%2e/')"`,
  `echo "pct-all=${py(`"".join(c if c.isalnum() else "%%%02X" % ord(c) for c in sys.argv[1])`)}"`,
  `echo "quoted=${py(`u.quote(os.environ["HTTP_PROXY"], safe="")`)}"`,
  `echo "b64-env=$(env | base64 -w0)"`,
  `echo "b64-key=$(printf %s "\${p%.*}" | base64 -w0)"`,
  `echo "b64-secret=$(printf %s "\${p#*.}" | base64 -w0)"`,
  `echo "b64url=${py(`base64.urlsafe_b64encode(os.environ["HTTP_PROXY"].encode()).decode()`)}"`,
  `echo "hex=${py(`os.environ["HTTP_PROXY"].encode().hex()`)}"`,
  `echo "HEX=${py(`os.environ["HTTP_PROXY"].encode().hex().upper()`)}"`,
].join("\n");

/** Every 10 characters of `creds` that `text` shows, as it is or decoded (percent, base64, hex). */
function revealed(text: string, creds: readonly string[]): string[] {
  const seen = [
    text,
    text.replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16))),
  ];
  for (const run of text.match(/[A-Za-z0-9+/_-]{12,}/g) ?? []) {
    for (let off = 0; off < 4; off++) {
      seen.push(Buffer.from(run.slice(off), "base64").toString("latin1"));
      seen.push(Buffer.from(run.slice(off), "base64url").toString("latin1"));
    }
  }
  for (const run of text.match(/[0-9a-f]{20,}/gi) ?? []) {
    for (let off = 0; off < 2; off++) seen.push(Buffer.from(run.slice(off), "hex").toString("latin1"));
  }
  const windows = creds.flatMap((c) => Array.from({ length: c.length - 9 }, (_, i) => c.slice(i, i + 10)));
  return [...new Set(windows.filter((w) => seen.some((s) => s.includes(w))))];
}

it("a call's credentials printed percent-encoded, base64 or hex on one line reach the model blanked", async () => {
  await start();
  const client = await suite.connect({ args: ["--manifest", sessionFile()] });
  const r = await client.callTool({ name: "exec", arguments: { command: PRINT } });
  const text = textOf(r);
  expect(r.isError ?? false, text).toBe(false);
  const url = new URL(readFileSync(join(suite.project, "proxy-url"), "utf8"));
  const password = decodeURIComponent(url.password);
  const [key, secret] = password.split(".") as [string, string];
  expect(secret.length).toBeGreaterThan(20);
  for (const name of [
    "pct-dot",
    "pct-low",
    "pct-all",
    "quoted",
    "b64-env",
    "b64-key",
    "b64-secret",
    "b64url",
    "hex",
    "HEX",
  ])
    expect(text).toMatch(new RegExp(`^${name}=.*\\[hidden\\]`, "m"));
  // The password with its dot percent-encoded holds the key and the secret, each a secret of
  // its own: it is blanked as one, not as two marks around a "%2E" (the loop that cut the
  // key and the secret first, listed before the encoded spellings, left it).
  expect(text).toMatch(/^pct-dot=\[hidden\]$/m);
  expect(text).toMatch(/^pct-low=\[hidden\]$/m);
  expect(revealed(text, [password, key, secret])).toEqual([]);
}, 180_000);

it("credentials one call wrote to a file reach the model blanked through the file tools of a later call", async () => {
  // Each call of the session has credentials of its own (egress/callers.ts openCall): before,
  // file_read and grep showed the file as written, and exec's own list would not have held
  // the earlier call's credentials either.
  await start();
  const client = await suite.connect({ args: ["--manifest", sessionFile(WITH_FILE_TOOLS)] });
  const wrote = await client.callTool({
    name: "exec",
    arguments: { command: 'printf "proxy=%s\\n" "$HTTP_PROXY" > /workspace/proxy-url' },
  });
  expect(wrote.isError ?? false, textOf(wrote)).toBe(false);
  const url = new URL(readFileSync(join(suite.project, "proxy-url"), "utf8").slice("proxy=".length));
  const password = decodeURIComponent(url.password);
  const [key, secret] = password.split(".") as [string, string];
  const calls = [
    { name: "file_read", arguments: { path: "/workspace/proxy-url" } },
    { name: "file_read_many", arguments: { paths: ["/workspace/proxy-url", "/workspace/README.md"] } },
    { name: "grep", arguments: { pattern: "proxy=", path: "/workspace" } },
    { name: "exec", arguments: { command: "cat /workspace/proxy-url" } },
  ];
  for (const call of calls) {
    const r = await client.callTool(call);
    const text = textOf(r);
    expect(r.isError ?? false, text).toBe(false);
    expect(text, call.name).toMatch(/proxy=http:\/\/[^:]+:\[hidden\]@/);
    expect(revealed(text, [password, key, secret]), call.name).toEqual([]);
  }
}, 180_000);

it("another call's credentials a file holds encoded, or touching other characters, reach a later call's model blanked", async () => {
  // Before, a later call found them only as written with no letter, digit, "-" or "_" on either
  // side (a decoy key before another dot hid them too), and never percent-encoded, base64 or hex:
  // the spellings its own exec's output is blanked in.
  await start();
  const client = await suite.connect({ args: ["--manifest", sessionFile(WITH_FILE_TOOLS)] });
  const decoy = "d".repeat(43);
  const wrote = await client.callTool({
    name: "exec",
    arguments: {
      command: [
        PRINT.split("\n").slice(0, 2).join("\n"),
        'printf "touching=x%sy\\n" "$p" > /workspace/f-touching',
        `printf "decoy=${decoy}.%s\\n" "$p" > /workspace/f-decoy`,
        `echo "pct-dot=$(printf %s "$p" | sed 's/[.]/%2E/')" > /workspace/f-pct`,
        'echo "b64-env=$(env | base64 -w0)" > /workspace/f-b64',
        `echo "hex=${py(`os.environ["HTTP_PROXY"].encode().hex()`)}" > /workspace/f-hex`,
      ].join("\n"),
    },
  });
  expect(wrote.isError ?? false, textOf(wrote)).toBe(false);
  const url = new URL(readFileSync(join(suite.project, "proxy-url"), "utf8"));
  const password = decodeURIComponent(url.password);
  const [key, secret] = password.split(".") as [string, string];
  // Each file alone: one spelling found blanks the credentials everywhere in the text.
  for (const [file, name] of [
    ["touching", "touching"],
    ["decoy", "decoy"],
    ["pct", "pct-dot"],
    ["b64", "b64-env"],
    ["hex", "hex"],
  ]) {
    const path = `/workspace/f-${file}`;
    for (const call of [
      { name: "file_read", arguments: { path } },
      { name: "exec", arguments: { command: `cat ${path}` } },
    ]) {
      const r = await client.callTool(call);
      const text = textOf(r);
      expect(r.isError ?? false, text).toBe(false);
      expect.soft(text, `${call.name} ${name}`).toMatch(new RegExp(`^${name}=.*\\[hidden\\]`, "m"));
      expect.soft(revealed(text, [password, key, secret]), `${call.name} ${name}`).toEqual([]);
    }
  }
}, 180_000);
