// A standing answer on an interpreter's script covers the script as the human saw it. In the
// shipped MCP session manifest file_write waits for nobody, so after one Allow Session (or
// Allow Always) on `python3 fix.py` the outside agent could rewrite fix.py and run any code
// under the same answer (review r-mcpface). The scope of the exec holds the SHA-256 of
// fix.py (tools/exec-scope.ts): rewritten, the same command asks again; unchanged, it is
// still covered. Real CLI (`aido mcp serve`), real SDK client with elicitation, real
// daemon and Docker.

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { beforeAll, describe, expect, it } from "vitest";
import { requireDocker } from "../support/docker.js";
import { answering, textOf, useMcpSuite } from "./fixture.js";

beforeAll(() => requireDocker());
const suite = useMcpSuite();

const HARMLESS = 'print("formatting the imports")\n';
const REWRITTEN = 'import os\nos.mkdir("/workspace/PWNED_BY_REWRITE")\nprint("formatting the imports")\n';
const sha = (text: string) => createHash("sha256").update(text).digest("hex");

async function write(client: Client, content: string): Promise<void> {
  const w = await client.callTool({ name: "file_write", arguments: { path: "/workspace/fix.py", content } });
  expect(w.isError ?? false, textOf(w)).toBe(false);
}

const run = (client: Client) =>
  client.callTool({ name: "exec", arguments: { command: "python3 fix.py" } }, undefined, {
    timeout: 120_000,
  });

const pwned = () => existsSync(join(suite.project, "PWNED_BY_REWRITE"));

describe("a standing answer on `python3 fix.py`", () => {
  it("covers fix.py as the human saw it: unchanged it runs unasked, rewritten it asks again", async () => {
    await suite.start();
    const asked: string[] = [];
    const client = await suite.connect({ elicit: answering(asked, ["allow_session"]) });
    await write(client, HARMLESS);
    const first = await run(client);
    expect(textOf(first)).toContain("formatting the imports");
    expect(asked).toHaveLength(1);
    // The human is told what the answer is bound to: this content of fix.py.
    expect(asked[0]).toContain(`/workspace/fix.py as it is now (sha256 ${sha(HARMLESS).slice(0, 16)}…)`);

    const again = await run(client);
    expect(again.isError ?? false, textOf(again)).toBe(false);
    expect(asked).toHaveLength(1);

    // file_write needs no approval; the rewritten script is another program: asked (denied here).
    await write(client, REWRITTEN);
    const second = await run(client);
    expect(asked).toHaveLength(2);
    expect(asked[1]).toContain(`(sha256 ${sha(REWRITTEN).slice(0, 16)}…)`);
    expect(second.isError, textOf(second)).toBe(true);
    expect(pwned()).toBe(false);
  }, 240_000);

  it("Allow Always covers a later session while fix.py is unchanged, and asks once it is rewritten", async () => {
    await suite.start();
    const asked1: string[] = [];
    const s1 = await suite.connect({ elicit: answering(asked1, ["allow_always"]) });
    await write(s1, HARMLESS);
    expect(textOf(await run(s1))).toContain("formatting the imports");
    expect(asked1).toHaveLength(1);
    await s1.close();

    const asked2: string[] = [];
    const s2 = await suite.connect({ elicit: answering(asked2, []) });
    const unchanged = await run(s2);
    expect(unchanged.isError ?? false, textOf(unchanged)).toBe(false);
    expect(asked2).toEqual([]);

    await write(s2, REWRITTEN);
    const rewritten = await run(s2);
    expect(asked2).toHaveLength(1);
    expect(rewritten.isError, textOf(rewritten)).toBe(true);
    expect(pwned()).toBe(false);
  }, 240_000);
});
