// config-schema.ts — what a config.yaml may say: the schema (every key enforced somewhere,
// an unknown key an error), the checks of the values that need more than a type (policy
// rule kinds, tool names, egress host names, the cluster's lease), and the built-in value
// of each key no file sets. External MCP servers' keys are config-mcp-servers.ts's;
// reading a file is config-file.ts's, layering two config-tighten.ts's.

import { isIP } from "node:net";
import { z } from "zod";
import { redisUrlProblem } from "./cluster/redis-url.js";
import { mcpServersSchema } from "./config-mcp-servers.js";
import { GRANT_KINDS, parseGrant } from "./security/grants.js";
import { unknownToolProblem } from "./tools/names.js";

const grantString = z.string().superRefine((s, ctx) => {
  try {
    parseGrant(s);
  } catch (e) {
    ctx.addIssue({ code: "custom", message: (e as Error).message });
  }
});

const positiveInt = z.number().int().positive();

/** The kinds a policy rule may start with (security/policy.ts); anything else is an exec pattern. */
const RULE_KINDS: readonly string[] = [...GRANT_KINDS, "path"];

/**
 * Why a rule that looks kinded names no kind: "Tool: x", "file-write: /x", "path /x". Such a
 * rule would be read as an exec pattern for a program called "Tool:" and match nothing,
 * silently. A program named like a kind is written with an explicit `exec:`.
 */
function ruleKindProblem(rule: string): string | undefined {
  const colon = /^\s*([A-Za-z_-]+)\s*:/.exec(rule);
  const word = colon?.[1] ?? /^\s*([A-Za-z_-]+)\s+\S/.exec(rule)?.[1];
  if (word === undefined || (colon && RULE_KINDS.includes(word))) return undefined;
  const plain = word.toLowerCase().replaceAll("-", "_");
  const near = RULE_KINDS.find((k) => k === plain || k === plain.replace(/s$/, ""));
  if (!colon && near === undefined) return undefined; // an exec pattern: "git push *"
  const kinds = RULE_KINDS.join(", ");
  return colon
    ? `unknown rule kind "${word}"${near ? ` (did you mean "${near}"?)` : ""}: a rule is "KIND: VALUE" with KIND one of ${kinds}, or an exec pattern`
    : `"${word}" is a rule kind without its ":" (write "${word}: ..."; a program of that name: "exec: ${rule.trim()}")`;
}

/**
 * A policy.deny / policy.confirm rule (parsed by security/policy.ts). A `tool: NAME` rule
 * must name a real tool, and a rule's kind a real kind: a typo would silently deny nothing,
 * or ask nobody.
 */
const policyRule = z
  .string()
  .min(1)
  .superRefine((rule, ctx) => {
    const kindProblem = ruleKindProblem(rule);
    if (kindProblem) {
      ctx.addIssue({ code: "custom", message: `"${rule}": ${kindProblem}` });
      return;
    }
    const m = /^\s*tool\s*:\s*(.*?)\s*$/.exec(rule);
    const problem = m && m[1] !== "*" ? unknownToolProblem(m[1] ?? "") : undefined;
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });

/** A host name a split-horizon `egress.hosts` entry may name (lower case, no trailing dot). */
const EGRESS_HOST_NAME = /^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$/;

/**
 * egress.hosts: the operator's static resolution (name -> address), used by the egress proxy
 * instead of DNS for those names. The address is still judged like any (an inward one needs
 * a grant naming it).
 */
const egressHosts = z.record(z.string(), z.string()).superRefine((hosts, ctx) => {
  for (const [name, address] of Object.entries(hosts)) {
    if (!EGRESS_HOST_NAME.test(name) || /^[0-9]+$/.test(name.split(".").at(-1) ?? ""))
      ctx.addIssue({
        code: "custom",
        path: [name],
        message: `"${name}" is not a host name (lower case letters, digits, "-" and dots)`,
      });
    else if (isIP(address) === 0)
      ctx.addIssue({
        code: "custom",
        path: [name],
        message: `"${address}" is not an IP address (egress.hosts maps a name to one IPv4 or IPv6 address)`,
      });
  }
});

const DEFAULT_LEASE_MS = 30_000;
const DEFAULT_HEARTBEAT_MS = 5_000;

/** What a config file may say. Every key is enforced somewhere; unknown keys are errors. */
export const ConfigFileSchema = z.strictObject({
  inference: z
    .strictObject({
      max_concurrent: positiveInt.optional(),
      max_retries: z.number().int().min(0).max(10).optional(),
      request_timeout_ms: positiveInt.optional(),
      /** Cluster mode: model calls in flight per provider across every node (cluster/inference-slots.ts). */
      cluster_max_concurrent: positiveInt.optional(),
    })
    .optional(),
  limits: z
    .strictObject({
      max_agents_per_goal: positiveInt.optional(),
      max_depth: positiveInt.optional(),
      max_children: positiveInt.optional(),
      max_iterations: positiveInt.optional(),
      goal_max_tokens: positiveInt.optional(),
      spawn_batch_cap: positiveInt.optional(),
      child_retries: z.number().int().min(0).max(5).optional(),
      max_concurrent_goals: positiveInt.optional(),
      tool_output_max_bytes: positiveInt.optional(),
    })
    .optional(),
  /** The operator's ceiling: nothing submitted over the socket may hold more than this. */
  grants: z.array(grantString).optional(),
  /** Which models agents may use: "provider/model" globs ("anthropic/*"); kernel/spawn checks every agent's. */
  models: z
    .strictObject({
      allowed: z
        .array(
          z
            .string()
            .regex(
              /^(\*|[a-z*][a-z0-9*-]*\/\S+)$/,
              'a model glob is "provider/model" ("anthropic/*", "openai/gpt-4o*") or "*"',
            ),
        )
        .min(1),
    })
    .optional(),
  policy: z
    .strictObject({
      deny: z.array(policyRule).optional(),
      confirm: z.array(policyRule).optional(),
      snapshot_before_mutation: z.boolean().optional(),
    })
    .optional(),
  approvals: z
    .strictObject({
      timeout_ms: positiveInt.optional(),
      allow_always_ttl_seconds: positiveInt.optional(),
    })
    .optional(),
  sandbox: z
    .strictObject({
      image: z.string().min(1).optional(),
      memory_mb: positiveInt.optional(),
      cpus: z.number().positive().optional(),
      pids: positiveInt.optional(),
      tmpfs_mb: positiveInt.optional(),
      ttl_seconds: positiveInt.optional(),
      warm_pool: z.number().int().min(0).max(16).optional(),
      exec_timeout_ms: positiveInt.optional(),
      /** Landlock per exec (on, the default); only the operator's file may turn it off. */
      landlock: z.enum(["on", "off"]).optional(),
      workspace_max_mb: positiveInt.optional(),
      /** Each goal's snapshot store; default the workspace cap (sandbox/snapshot-prune.ts). */
      snapshots_max_mb: positiveInt.optional(),
      inputs_max_mb: positiveInt.optional(),
      inputs_max_files: positiveInt.optional(),
    })
    .optional(),
  web_fetch: z
    .strictObject({
      max_bytes: positiveInt.optional(),
      timeout_ms: positiveInt.optional(),
      max_redirects: z.number().int().min(0).max(20).optional(),
    })
    .optional(),
  /** The egress proxy goal containers reach the network through (egress/proxy.ts). */
  egress: z
    .strictObject({
      hosts: egressHosts.optional(),
      connect_timeout_ms: positiveInt.optional(),
      idle_timeout_ms: positiveInt.optional(),
      max_connections: positiveInt.optional(),
      max_connections_per_agent: positiveInt.optional(),
    })
    .optional(),
  memory: z
    .strictObject({
      max_records: positiveInt.optional(),
      max_content_bytes: positiveInt.optional(),
      embedder: z.enum(["local", "openai"]).optional(),
      embedding_model: z.string().min(1).optional(),
    })
    .optional(),
  daemon: z
    .strictObject({
      max_line_bytes: positiveInt.optional(),
      manifest_dirs: z.array(z.string().min(1)).optional(),
      /** Socket connections open at once, all clients together; one more is refused (daemon/server.ts). */
      max_connections: positiveInt.max(65_536).optional(),
      /** `aido mcp serve --http`: MCP sessions open at once; one more is refused (mcp/http.ts). */
      mcp_max_http_sessions: positiveInt.max(65_536).optional(),
      /** `aido mcp serve`: a session's calls waiting for one of its daemon connections; one more is refused. */
      mcp_max_queued_calls: positiveInt.max(1_000_000).optional(),
    })
    .optional(),
  /** The dashboard the daemon serves on loopback (daemon/ui/, docs/ui.md). */
  ui: z
    .strictObject({
      /** 0 or unset: a free port chosen at the first `aido ui`; set: served from daemon start. */
      port: z.number().int().min(0).max(65535).optional(),
      /** Cap on one POST /api/goals body (the goal, manifest and input files together). */
      max_upload_mb: positiveInt.max(1024).optional(),
    })
    .optional(),
  /**
   * Cluster mode (cluster/, docs/scale-out.md): daemons sharing one goal queue on Redis.
   * Absent (and no AIDO_REDIS_URL): the daemon runs alone. Only the operator's file sets it.
   */
  cluster: z
    .strictObject({
      redis_url: z.string().superRefine((url, ctx) => {
        const problem = redisUrlProblem(url);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      }),
      /** This node's name in the cluster; default one generated once and kept in the home. */
      node_id: z
        .string()
        .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "a node id is lower case letters, digits and '-' (at most 63)")
        .optional(),
      /** How long a node's goals are its own without a heartbeat (BullMQ's lock duration). */
      lease_ms: z.number().int().min(1000).max(3_600_000).optional(),
      heartbeat_ms: z.number().int().min(100).max(600_000).optional(),
      /**
       * What the node does with its goals once it could not renew its lease for lease_ms less
       * a margin (cluster/fence.ts): "hold" them until a heartbeat has looked which are still
       * its own (default), or "finish" them as if Redis were down for every node.
       */
      on_redis_loss: z
        .enum(["hold", "finish"], {
          error: (issue) =>
            `must be "hold" or "finish" (got ${JSON.stringify(issue.input)}): "hold" pauses the node's goals once it cannot renew its lease, "finish" lets them run on`,
        })
        .optional(),
    })
    .refine((c) => (c.heartbeat_ms ?? DEFAULT_HEARTBEAT_MS) * 2 <= (c.lease_ms ?? DEFAULT_LEASE_MS), {
      message: "heartbeat_ms must be at most half of lease_ms (a lease must outlive a missed heartbeat)",
      path: ["heartbeat_ms"],
    })
    .optional(),
  /** External MCP servers by name (tools/mcp/); manifests name the ones their agents may use. */
  mcp_servers: mcpServersSchema.optional(),
});
export type ConfigFile = z.infer<typeof ConfigFileSchema>;

/** The value of each key no file sets (camelCase, as in Config). */
export const DEFAULTS = {
  inference: { maxConcurrent: 3, maxRetries: 4, requestTimeoutMs: 120_000 },
  limits: {
    maxAgentsPerGoal: 32,
    maxDepth: 3,
    maxChildren: 8,
    maxIterations: 40,
    goalMaxTokens: 2_000_000,
    spawnBatchCap: 3,
    childRetries: 1,
    maxConcurrentGoals: 4,
    toolOutputMaxBytes: 32_768,
  },
  approvals: { timeoutMs: 10 * 60_000, allowAlwaysTtlSeconds: 3600 },
  sandbox: {
    image: "aido-sandbox:latest",
    memoryMb: 1024,
    cpus: 1,
    pids: 256,
    tmpfsMb: 256,
    ttlSeconds: 24 * 3600,
    warmPool: 0,
    execTimeoutMs: 120_000,
    landlock: "on",
    workspaceMaxMb: 1024,
    inputsMaxMb: 512,
    inputsMaxFiles: 20_000,
  },
  webFetch: { maxBytes: 2 * 1024 * 1024, timeoutMs: 20_000, maxRedirects: 5 },
  egress: {
    connectTimeoutMs: 10_000,
    idleTimeoutMs: 300_000,
    maxConnections: 64,
    maxConnectionsPerAgent: 16,
  },
  memory: { maxRecords: 10_000, maxContentBytes: 16_384 },
  daemon: { maxLineBytes: 1024 * 1024, maxConnections: 1024, mcpMaxHttpSessions: 32, mcpMaxQueuedCalls: 256 },
  ui: { port: 0, maxUploadMb: 10 },
  mcp: { timeoutMs: 30_000 },
  cluster: { leaseMs: DEFAULT_LEASE_MS, heartbeatMs: DEFAULT_HEARTBEAT_MS, onRedisLoss: "hold" },
} as const;
