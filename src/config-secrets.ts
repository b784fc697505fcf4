// config-secrets.ts — the secrets a config holds (its providers' API keys, its HTTP MCP
// servers' header values, its cluster's Redis password or token), and a text with them
// blanked ("***"). A refusal's reason is built from what a client or a Redis writer handed in
// (an input path, a manifest's grant, a job's goal id) and is audited, answered and, in a
// cluster, written to the goal's status that every node and client reads: a reason quoting
// one of these put it there. Before, goal.refused and agent.spawn_denied quoted them raw.

import { redisSecrets } from "./cluster/redis-url.js";
import type { Config } from "./config.js";
import { blankSecrets } from "./security/blank-secrets.js";

/** Every secret `config` holds, in each spelling its owner knows of (redis-url.ts). */
export function configSecrets(config: Pick<Config, "providers" | "mcp" | "cluster">): string[] {
  const secrets = new Set<string>();
  for (const p of Object.values(config.providers)) if (p.apiKey) secrets.add(p.apiKey);
  for (const s of Object.values(config.mcp.servers)) {
    if (s.transport !== "http") continue;
    for (const variable of Object.values(s.headers)) {
      const v = config.mcp.headerValue(variable);
      if (v) secrets.add(v);
    }
  }
  if (config.cluster) for (const s of redisSecrets(config.cluster.redisUrl)) secrets.add(s);
  return [...secrets];
}

/** `text` with every secret of `config` blanked ("***"). */
export function withoutConfigSecrets(
  text: string,
  config: Pick<Config, "providers" | "mcp" | "cluster">,
): string {
  return blankSecrets(text, configSecrets(config), "***");
}
