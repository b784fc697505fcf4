// config-secrets.ts — the secrets a config holds (its providers' API keys, its HTTP MCP
// servers' header values, its cluster's Redis password or token), and a text with them
// blanked ("***"). A refusal's reason is built from what a client or a Redis writer handed in
// (an input path, a manifest's grant, a job's goal id) and is audited, answered and, in a
// cluster, written to the goal's status that every node and client reads: a reason quoting
// one of these put it there. Before, goal.refused and agent.spawn_denied quoted them raw.
// Each secret comes with what it is in words (`kind`, never the value or a piece of it): a
// human asked to approve a call that carries one is told which (gate/call-secrets.ts).

import { redisSecrets } from "./cluster/redis-url.js";
import type { Config } from "./config.js";
import { blankSecrets } from "./security/blank-secrets.js";

/** A secret of the config and what it is, as a human is told it ("the API key of provider openai"). */
export interface ConfigSecret {
  value: string;
  kind: string;
}

/**
 * Every secret `config` holds, in each spelling its owner knows of (redis-url.ts), each once
 * with what it is (a value two owners share, one key for openai and openai-compat, names both).
 */
export function configSecretKinds(config: Pick<Config, "providers" | "mcp" | "cluster">): ConfigSecret[] {
  const owners = new Map<string, string[]>();
  const add = (value: string, owner: string) => {
    const list = owners.get(value) ?? [];
    if (!list.includes(owner)) list.push(owner);
    owners.set(value, list);
  };
  const providers = new Map<string, string[]>();
  for (const [name, p] of Object.entries(config.providers))
    if (p.apiKey) providers.set(p.apiKey, [...(providers.get(p.apiKey) ?? []), name]);
  for (const [key, names] of providers)
    add(key, `the API key of provider${names.length > 1 ? "s" : ""} ${names.join(", ")}`);
  for (const [name, s] of Object.entries(config.mcp.servers)) {
    if (s.transport !== "http") continue;
    for (const [header, variable] of Object.entries(s.headers)) {
      const v = config.mcp.headerValue(variable);
      if (v) add(v, `the ${header} header value of MCP server ${name} (from ${variable})`);
    }
  }
  if (config.cluster)
    for (const s of redisSecrets(config.cluster.redisUrl))
      add(s, "the cluster's Redis password (cluster.redis_url)");
  return Array.from(owners, ([value, kinds]) => ({ value, kind: kinds.join("; ") }));
}

/** Every secret `config` holds, in each spelling its owner knows of (redis-url.ts). */
export function configSecrets(config: Pick<Config, "providers" | "mcp" | "cluster">): string[] {
  return configSecretKinds(config).map((s) => s.value);
}

/** `text` with every secret of `config` blanked ("***"). */
export function withoutConfigSecrets(
  text: string,
  config: Pick<Config, "providers" | "mcp" | "cluster">,
): string {
  return blankSecrets(text, configSecrets(config), "***");
}
