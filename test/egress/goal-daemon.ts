// test/egress/goal-daemon.ts — the daemon the goal-level egress attacks share: goals run in
// real containers on their egress networks (the runtime's own backend, not the harness's
// container-less one), under a ceiling wide enough for any manifest a test writes (every
// tool, the workspace, any command, any host, children), so what a test checks is the
// manifest's grants and the gate, never the ceiling. The text a tool call returned to the
// model, as the scripted provider received it, and the pieces of a secret to look for.

import type { Config } from "../../src/config.js";
import { MIN_SECRET_LENGTH } from "../../src/security/blank-secrets.js";
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

/**
 * Every piece of `secret` MIN_SECRET_LENGTH + 4 characters long, at every offset. Not the
 * shortest piece the blanking removes (MIN_SECRET_LENGTH): a 4-character piece of a random
 * base64url password turns up by chance in what a test searches, the audit's hashes and ids
 * and its English (one password in eleven against 80,000 hex characters), and a test failed
 * now and then with nothing leaked. Cuts inside a password are test/egress/file-secrets'.
 */
export function piecesOf(secret: string): string[] {
  const n = MIN_SECRET_LENGTH + 4;
  const pieces: string[] = [];
  for (let i = 0; i + n <= secret.length; i++) pieces.push(secret.slice(i, i + n));
  return pieces;
}
