// test/mcp/egress-session.ts — what the MCP egress files share: a session whose commands reach
// plain.test and other.test on 8080, a daemon with those names on one Docker upstream of the
// file's own (its subnet and address, docker-upstream.ts) and a confirm rule on every host;
// and the scan of every process's environment for another call's proxy credentials.

import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import type { Config } from "../../src/config.js";
import { type DockerUpstream, startDockerUpstream, type UpstreamNet } from "../egress/docker-upstream.js";
import { requireDocker } from "../support/docker.js";
import { textOf, useMcpSuite } from "./fixture.js";

export const SESSION = `name: mcp-egress
description: A session whose commands reach the network.
lifecycle: on-demand
system_prompt: "You are the principal of an MCP session."
capabilities:
  - "tool: exec"
  - "tool: file_read"
  - "file_read: /workspace/**"
  - "file_write: /workspace/**"
  - "exec: *"
  - "network: plain.test:8080"
  - "network: other.test:8080"
approval_required: []
limits: { max_iterations: 1, max_children: 0, max_depth: 1 }
`;

export function useEgressSession(
  upstreamOf: UpstreamNet & {
    /** More of the daemon's config, after the egress names and confirm rule. */
    config?: (c: Config) => void;
  },
) {
  let upstream: DockerUpstream | undefined;
  beforeAll(() => requireDocker());
  afterAll(() => upstream?.close());
  const suite = useMcpSuite();

  /** The daemon with the upstream's names and a confirm rule on every host; the session's client. */
  async function start(): Promise<void> {
    await suite.start({
      config: (c) => {
        c.grantCeilings = [
          ["tool: *", "file_read: /**", "file_write: /workspace/**", "exec: *", "network: *:*"],
        ];
        c.egress = { ...c.egress, hosts: { "plain.test": upstreamOf.ip, "other.test": upstreamOf.ip } };
        c.policy.confirm = ["network: *"];
        upstreamOf.config?.(c);
      },
    });
    upstream ??= await startDockerUpstream(upstreamOf, suite.fx.home.config.sandbox.image);
  }

  function sessionFile(manifest = SESSION): string {
    const file = join(dirname(suite.project), "egress-session.yaml");
    writeFileSync(file, manifest);
    return file;
  }

  /**
   * On the session's own client: call B sleeps (`sleep 8 # holder`) holding its proxy
   * credentials in its environment while call A reads every process's /proc/<pid>/environ
   * for proxy credentials not its own. What A printed, "seen=<holder's processes it saw>
   * foreign=<credentials not its own it read> mine=<its own read: 0 or 1>", and B's result.
   */
  async function scanEnvironments() {
    const client = await suite.connect({ args: ["--manifest", sessionFile()] });
    await client.callTool({ name: "file_read", arguments: { path: "/workspace/README.md" } });
    const b = client.callTool({ name: "exec", arguments: { command: "sleep 8 # holder" } }, undefined, {
      timeout: 90_000,
    });
    await new Promise((r) => setTimeout(r, 2000));
    writeFileSync(join(suite.project, "scan.py"), ENVIRON_SCAN);
    const a = await client.callTool({ name: "exec", arguments: { command: "python3 /workspace/scan.py" } });
    return { scan: textOf(a), holder: await b };
  }

  return { suite, start, sessionFile, scanEnvironments };
}

/** scanEnvironments' call A: every process's environment, its own proxy credentials told apart. */
const ENVIRON_SCAN = [
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
