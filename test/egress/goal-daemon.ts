// test/egress/goal-daemon.ts — the daemon the goal-level egress attacks share: goals run in
// real containers on their egress networks (the runtime's own backend, not the harness's
// container-less one), under a ceiling wide enough for any manifest a test writes (every
// tool, the workspace, any command, any host, children), so what a test checks is the
// manifest's grants and the gate, never the ceiling. And the text a tool call returned to
// the model, as the scripted provider received it.

import type { Config } from "../../src/config.js";
import { type DaemonFixture, startFixture } from "../daemon/fixture.js";
import type { ProviderServer } from "../support/provider-server.js";

/** Every grant a test's manifest may ask for. */
export const WIDE_CEILING = [
  "tool: *",
  "file_read: /workspace/**",
  "file_write: /workspace/**",
  "exec: *",
  "network: *:*",
  "spawn_child: [*]",
];

/** A daemon whose goals get containers, under WIDE_CEILING; `config` adds what the suite needs. */
export function startGoalDaemon(
  server: ProviderServer,
  config?: (cfg: Config) => void,
): Promise<DaemonFixture> {
  return startFixture(server, {
    runtime: { backend: undefined },
    config: (cfg) => {
      cfg.grantCeilings = [[...WIDE_CEILING]];
      config?.(cfg);
    },
  });
}

/** The text of the tool result the n-th request of a script carried (the call before it). */
export function resultBefore(requests: { body: { messages: { content: unknown }[] } }[], n: number): string {
  const last = requests[n]?.body.messages.at(-1)?.content as { content?: unknown }[] | undefined;
  const c0 = last?.[0]?.content;
  return typeof c0 === "string" ? c0 : JSON.stringify(c0);
}
