// test/mcp/egress-session.ts — what the MCP egress files share: a session whose commands reach
// plain.test and other.test on 8080, a daemon with those names on one Docker upstream of the
// file's own (its subnet and address, docker-upstream.ts) and a confirm rule on every host.

import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import type { Config } from "../../src/config.js";
import { type DockerUpstream, startDockerUpstream, type UpstreamNet } from "../egress/docker-upstream.js";
import { requireDocker } from "../support/docker.js";
import { useMcpSuite } from "./fixture.js";

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

  return { suite, start, sessionFile };
}
