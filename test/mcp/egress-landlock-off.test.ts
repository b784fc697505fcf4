// sandbox.landlock: off drops an exec's file rules, not its domain: on an egress network it
// still runs in one (its relay-port TCP rule, ABI >= 4; its reaper's signal scoping, ABI >= 6),
// and Landlock's ptrace scoping closes other domains' /proc/<pid>/environ, so a command still
// cannot read another call's proxy credentials. Without Landlock in the kernel (or below ABI
// 4 with it off) nothing does: docs/egress.md, docs/security.md. Measured on Linux 6.18.
// Otherwise as egress.test.ts (its own upstream network).

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { UPSTREAM_NETS } from "../egress/docker-upstream.js";
import { useEgressSession } from "./egress-session.js";
import { textOf } from "./fixture.js";

const { suite, start, sessionFile } = useEgressSession({
  ...UPSTREAM_NETS.mcpLandlockOff,
  config: (c) => {
    c.sandbox = { ...c.sandbox, landlock: "off" };
  },
});

describe("with sandbox.landlock: off on a kernel with Landlock (ABI >= 4)", () => {
  it("each exec is still a domain of its own (its TCP rule, its reaper): another exec's environment stays closed (guard)", async () => {
    await start();
    const client = await suite.connect({ args: ["--manifest", sessionFile()] });
    await client.callTool({ name: "file_read", arguments: { path: "/workspace/README.md" } });
    // Call B holds its own credentials in its environment while it sleeps.
    const b = client.callTool({ name: "exec", arguments: { command: "sleep 8 # holder" } }, undefined, {
      timeout: 90_000,
    });
    await new Promise((r) => setTimeout(r, 2000));
    // Call A looks through every process's environment for proxy credentials not its own.
    const scan = [
      "import os, glob",
      "own = os.environ.get('HTTP_PROXY')",
      "seen = foreign = mine = 0",
      "for f in glob.glob('/proc/[0-9]*/environ'):",
      "    try: cmd = open(f[:-7] + 'cmdline', 'rb').read()",
      "    except OSError: continue",
      "    if b'holder' in cmd: seen += 1",
      "    try: env = open(f, 'rb').read().split(b'\\0')",
      "    except OSError: continue",
      "    for v in env:",
      "        if v.startswith(b'HTTP_PROXY='):",
      "            if v[11:].decode() == own: mine += 1",
      "            else: foreign += 1",
      "print(f'seen={seen} foreign={foreign} mine={min(mine, 1)}')",
    ].join("\n");
    writeFileSync(join(suite.project, "scan.py"), scan);
    const a = await client.callTool({ name: "exec", arguments: { command: "python3 /workspace/scan.py" } });
    expect(textOf(a)).toMatch(/seen=[1-9]\d* foreign=0 mine=1/);
    expect((await b).isError ?? false).toBe(false);
  }, 180_000);
});
