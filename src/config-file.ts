// config-file.ts — what a config.yaml may say and how the files layer. The schema (every
// key enforced somewhere, an unknown key an error naming it and its line), the built-in
// value of each key no file sets, reading one file strictly, and tightenConfig: a
// project's .aido/config.yaml over the operator's $AIDO_HOME/config.yaml, where it may
// only tighten (lower numbers, more deny/confirm rules, protections turned on). The typed
// Config built from these and the environment is config.ts's.

import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { isMap, LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import { redisUrlProblem } from "./cluster/redis-url.js";
import { AidoError, ErrorCode, formatIssues, type Issue } from "./errors.js";
import { canonicalJson } from "./security/canonical-json.js";
import { GRANT_KINDS, MCP_SERVER_NAME, parseGrant } from "./security/grants.js";
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

/** An HTTP header name, and the environment variable its value is read from at connect. */
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/;
const ENV_VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** A tool name of an external MCP server, or a glob of them ("*" any characters). */
const MCP_TOOL_GLOB = /^[A-Za-z0-9_.*-]{1,64}$/;

const absolutePath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => p.startsWith("/") && !p.split("/").includes(".."), 'an absolute path without ".."');

/** Keys only one kind of server has: a remote one (url) or a stdio one (command). */
const REMOTE_ONLY = ["headers"] as const;
const STDIO_ONLY = ["image", "env", "workspace", "mounts"] as const;

/**
 * One `mcp_servers.<name>.network` entry: a network grant, written `host[:port]` or
 * `network: host[:port]` (security/grants.ts); an entry of another kind is refused. Returns
 * what is wrong with it, or undefined.
 */
export function mcpNetworkEntryProblem(entry: string): string | undefined {
  const kind = /^\s*([a-z_]+)\s*:/.exec(entry)?.[1];
  const named = kind !== undefined && (GRANT_KINDS as readonly string[]).includes(kind);
  if (named && kind !== "network")
    return `a server's network entries are network grants (host[:port]); "${kind}:" grants nothing here`;
  try {
    parseGrant(named ? entry : `network: ${entry}`);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * An external MCP server the operator declares (tools/mcp/): remote, over Streamable HTTP
 * (`url`), or stdio (`command`), run in a container of its own per goal
 * (sandbox/mcp-container.ts). A remote server's `headers` map a header to the NAME of an
 * environment variable of the daemon, whose value is read at connect and never logged,
 * shown or audited. A stdio server's `env` holds literal values (it sees nothing of the
 * daemon's environment), `workspace` whether the goal's /workspace is mounted, `mounts`
 * read-only host paths. `read_only_tools` are the tools the operator trusts to change
 * nothing: every other tool waits for a human by default.
 */
const mcpServer = z
  .strictObject({
    url: z
      .string()
      .max(2048)
      .refine(
        (u) => URL.canParse(u) && ["http:", "https:"].includes(new URL(u).protocol),
        "url must be an http:// or https:// URL",
      )
      .refine((u) => !URL.canParse(u) || (new URL(u).username === "" && new URL(u).password === ""), {
        message: "url must not carry credentials (put them in headers, read from the environment)",
      })
      .optional(),
    headers: z
      .record(
        z.string().regex(HEADER_NAME, "a header name (letters, digits, and !#$%&'*+.^_`|~-)"),
        z
          .string()
          .regex(
            ENV_VAR_NAME,
            "the NAME of an environment variable holding the value (e.g. GITHUB_TOKEN), not a value",
          ),
      )
      .optional(),
    command: z.array(z.string().min(1).max(4096)).min(1).max(64).optional(),
    image: z.string().min(1).max(256).optional(),
    env: z
      .record(z.string().regex(ENV_VAR_NAME, "an environment variable name"), z.string().max(4096))
      .optional(),
    workspace: z.enum(["none", "ro", "rw"]).optional(),
    mounts: z
      .array(z.strictObject({ source: absolutePath, target: absolutePath }))
      .max(16)
      .optional(),
    network: z
      .array(
        z
          .string()
          .max(300)
          .superRefine((entry, ctx) => {
            const problem = mcpNetworkEntryProblem(entry);
            if (problem) ctx.addIssue({ code: "custom", message: problem });
          }),
      )
      .max(64)
      .optional(),
    read_only_tools: z
      .array(z.string().regex(MCP_TOOL_GLOB, "a tool name or glob ([A-Za-z0-9_.-] and *)"))
      .optional(),
    timeout_ms: positiveInt.max(600_000).optional(),
  })
  .superRefine((s, ctx) => {
    if ((s.url === undefined) === (s.command === undefined)) {
      ctx.addIssue({
        code: "custom",
        message: "a server has either url (remote, Streamable HTTP) or command (stdio, in a container)",
      });
      return;
    }
    if (s.url !== undefined && s.network !== undefined)
      ctx.addIssue({
        code: "custom",
        path: ["network"],
        message:
          "network is for stdio servers (command): the daemon connects to a remote server itself, directly",
      });
    const wrong = s.url !== undefined ? STDIO_ONLY : REMOTE_ONLY;
    for (const key of wrong) {
      if (s[key] !== undefined)
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `${key} is for ${s.url !== undefined ? "stdio servers (command)" : "remote servers (url)"}`,
        });
    }
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
  mcp_servers: z
    .record(z.string(), mcpServer)
    .superRefine((servers, ctx) => {
      for (const name of Object.keys(servers)) {
        if (!MCP_SERVER_NAME.test(name))
          ctx.addIssue({
            code: "custom",
            path: [name],
            message: `"${name}" is not a server name: [a-z][a-z0-9-]*, at most 32 characters`,
          });
      }
    })
    .optional(),
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

/** A problem a check beyond the schema finds in a parsed file: its key path and why. */
export interface FileProblem {
  path: string[];
  message: string;
}

/**
 * Parse one YAML config file strictly; errors name the file, the key path and the line.
 * `check` looks further at what parsed (what needs the host: paths that must exist), its
 * problems reported the same way.
 */
export function readConfigFile(file: string, check?: (parsed: ConfigFile) => FileProblem[]): ConfigFile {
  const text = readFileSync(file, "utf8");
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((e) => ({ path: "", message: e.message, line: lc.linePos(e.pos[0]).line }));
    throw new AidoError(
      ErrorCode.configInvalid,
      `invalid config file ${file}:\n${formatIssues(file, issues)}`,
      { file },
    );
  }
  const data = doc.contents === null ? {} : doc.toJS();
  const parsed = ConfigFileSchema.safeParse(data);
  if (!parsed.success) {
    const issues: Issue[] = parsed.error.issues.map((i) => {
      const keys = i.code === "unrecognized_keys" ? i.keys : [];
      const path = [...i.path, ...keys.slice(0, 1)].map(String);
      const line = lineOf(doc, lc, path);
      const message = i.code === "unrecognized_keys" ? `unknown key "${keys.join('", "')}"` : i.message;
      return line === undefined ? { path: path.join("."), message } : { path: path.join("."), message, line };
    });
    throw new AidoError(
      ErrorCode.configInvalid,
      `invalid config file ${file}:\n${formatIssues(file, issues)}`,
      {
        file,
        issues,
      },
    );
  }
  const problems = check?.(parsed.data) ?? [];
  if (problems.length > 0) {
    const issues: Issue[] = problems.map((p) => {
      const line = lineOf(doc, lc, p.path);
      const path = p.path.join(".");
      return line === undefined ? { path, message: p.message } : { path, message: p.message, line };
    });
    throw new AidoError(
      ErrorCode.configInvalid,
      `invalid config file ${file}:\n${formatIssues(file, issues)}`,
      { file, issues },
    );
  }
  return parsed.data;
}

/** Line of a key path in a YAML document, for error messages. */
export function lineOf(
  doc: ReturnType<typeof parseDocument>,
  lc: LineCounter,
  path: readonly string[],
): number | undefined {
  let node: unknown = doc.contents;
  let line: number | undefined;
  for (const key of path) {
    if (!node || typeof node !== "object") break;
    const n = node as { items?: unknown[]; range?: [number, number, number] };
    if (isMap(node)) {
      const pair = node.items.find((p) => String((p.key as { value?: unknown })?.value ?? p.key) === key);
      if (!pair) break;
      const k = pair.key as { range?: [number, number, number] };
      if (k?.range) line = lc.linePos(k.range[0]).line;
      node = pair.value;
    } else if (Array.isArray(n.items)) {
      const item = n.items[Number(key)] as { range?: [number, number, number] } | undefined;
      if (!item) break;
      if (item.range) line = lc.linePos(item.range[0]).line;
      node = item;
    } else break;
  }
  return line;
}

const min = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined ? b : b === undefined ? a : Math.min(a, b);

/** The built-in default of a file key (`web_fetch.max_bytes` -> DEFAULTS.webFetch.maxBytes), if numeric. */
function defaultOf(section: string, key: string): number | undefined {
  const camel = (s: string): string => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  const v = (DEFAULTS as Record<string, Record<string, unknown> | undefined>)[camel(section)]?.[camel(key)];
  return typeof v === "number" ? v : undefined;
}

/** The value the operator's file implies for a number it does not set. */
function operatorDefault(base: ConfigFile, section: string, key: string): number | undefined {
  // The snapshot store's cap follows the workspace cap unless set on its own.
  if (section === "sandbox" && key === "snapshots_max_mb")
    return base.sandbox?.workspace_max_mb ?? DEFAULTS.sandbox.workspaceMaxMb;
  return defaultOf(section, key);
}

/**
 * Layer a project file over the operator's: numbers can only go down, deny/confirm
 * rules only accumulate, the grant ceiling only narrows (checked in security/ by
 * narrowGrants when the ceiling is used), booleans that protect can only turn on.
 */
export function tightenConfig(base: ConfigFile, project: ConfigFile, projectFile: string): ConfigFile {
  const out: ConfigFile = structuredClone(base);
  const numericSections = [
    "inference",
    "limits",
    "approvals",
    "sandbox",
    "web_fetch",
    "egress",
    "memory",
    "daemon",
    "ui",
  ] as const;
  for (const section of numericSections) {
    const p = project[section] as Record<string, unknown> | undefined;
    if (!p) continue;
    const sections = out as Record<string, Record<string, unknown> | undefined>;
    const o = sections[section] ?? {};
    sections[section] = o;
    for (const [k, v] of Object.entries(p)) {
      if (section === "ui" && k === "port") {
        // Where the dashboard listens is the operator's choice, not a limit to lower.
        throw new AidoError(
          ErrorCode.configInvalid,
          `${projectFile}: ui.port can only be set in the operator's config`,
          {
            file: projectFile,
            key: "ui.port",
          },
        );
      }
      // Where the operator set nothing, the default is what the project may only lower.
      if (typeof v === "number")
        o[k] = min((o[k] as number | undefined) ?? operatorDefault(base, section, k), v);
      else if (section === "sandbox" && k === "landlock" && v === "on")
        o[k] = v; // turning it on tightens
      else if (o[k] === undefined || JSON.stringify(o[k]) === JSON.stringify(v)) {
        // A project may restate the operator's choice, or choose where the operator did not...
        if (section === "sandbox" && k === "image") {
          throw new AidoError(
            ErrorCode.configInvalid,
            `${projectFile}: sandbox.image can only be set in the operator's config`,
            {
              file: projectFile,
              key: "sandbox.image",
            },
          );
        }
        if (section === "sandbox" && k === "landlock" && o[k] === undefined) {
          throw new AidoError(
            ErrorCode.configInvalid,
            `${projectFile}: sandbox.landlock can only be turned off in the operator's config`,
            { file: projectFile, key: "sandbox.landlock" },
          );
        }
        if (section === "egress" && k === "hosts") {
          // Pointing a name elsewhere is never tighter: the operator's resolution stands.
          throw new AidoError(
            ErrorCode.configInvalid,
            `${projectFile}: egress.hosts can only be set in the operator's config`,
            { file: projectFile, key: "egress.hosts" },
          );
        }
        if (section === "daemon" && k === "manifest_dirs") {
          throw new AidoError(
            ErrorCode.configInvalid,
            `${projectFile}: daemon.manifest_dirs can only be set in the operator's config`,
            { file: projectFile, key: "daemon.manifest_dirs" },
          );
        }
        o[k] = v;
      } else {
        // ...but never override it with something other than a lower number.
        throw new AidoError(
          ErrorCode.configInvalid,
          `${projectFile}: ${section}.${k} may only tighten the operator's config (it differs from it)`,
          { file: projectFile, key: `${section}.${k}` },
        );
      }
    }
  }
  if (project.policy) {
    out.policy ??= {};
    out.policy.deny = [...(out.policy.deny ?? []), ...(project.policy.deny ?? [])];
    out.policy.confirm = [...(out.policy.confirm ?? []), ...(project.policy.confirm ?? [])];
    if (project.policy.snapshot_before_mutation) out.policy.snapshot_before_mutation = true;
    // On by default: only an operator who turned snapshots off lets a project say off too.
    if (
      project.policy.snapshot_before_mutation === false &&
      base.policy?.snapshot_before_mutation !== false
    ) {
      throw new AidoError(
        ErrorCode.configInvalid,
        `${projectFile}: policy.snapshot_before_mutation cannot be turned off`,
        {
          file: projectFile,
          key: "policy.snapshot_before_mutation",
        },
      );
    }
  }
  if (project.mcp_servers) out.mcp_servers = keptServers(base, project, projectFile);
  if (project.cluster) {
    // Which cluster a daemon joins is the operator's choice, never a project's.
    throw new AidoError(
      ErrorCode.configInvalid,
      `${projectFile}: cluster can only be set in the operator's config`,
      {
        file: projectFile,
        key: "cluster",
      },
    );
  }
  // grants are not merged here: each file's list stays a separate ceiling (see loadConfig).
  return out;
}

/**
 * A project file's `mcp_servers`: the operator's servers the project keeps, each restated
 * exactly as the operator declared it but for `network`, whose entries it may only remove
 * (a subset; omitted: none); the operator's others are removed. A server the
 * operator did not declare, or one restated differently, is refused: a project can only
 * take servers away.
 */
function keptServers(base: ConfigFile, project: ConfigFile, projectFile: string): ConfigFile["mcp_servers"] {
  const kept: NonNullable<ConfigFile["mcp_servers"]> = {};
  for (const [name, server] of Object.entries(project.mcp_servers ?? {})) {
    const declared = base.mcp_servers?.[name];
    if (declared === undefined) {
      throw new AidoError(
        ErrorCode.configInvalid,
        `${projectFile}: mcp_servers.${name} is not a server the operator's config declares (a project may only remove servers)`,
        { file: projectFile, key: `mcp_servers.${name}` },
      );
    }
    // Its network entries may be fewer (omitted: none), never other.
    const { network: declaredNetwork, ...declaredRest } = declared;
    const { network, ...rest } = server;
    if (canonicalJson(declaredRest) !== canonicalJson(rest)) {
      throw new AidoError(
        ErrorCode.configInvalid,
        `${projectFile}: mcp_servers.${name} may only restate the operator's declaration (it differs from it)`,
        { file: projectFile, key: `mcp_servers.${name}` },
      );
    }
    const added = (network ?? []).find((n) => !(declaredNetwork ?? []).includes(n));
    if (added !== undefined) {
      throw new AidoError(
        ErrorCode.configInvalid,
        `${projectFile}: mcp_servers.${name}.network: "${added}" is not one of the operator's entries for it (a project may only remove entries)`,
        { file: projectFile, key: `mcp_servers.${name}.network` },
      );
    }
    kept[name] = network === undefined ? declaredRest : { ...declaredRest, network };
  }
  return kept;
}
