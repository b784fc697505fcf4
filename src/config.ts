// config.ts — the one typed configuration. Built once from the environment,
// $AIDO_HOME/config.yaml (the operator's file) and an optional project-level
// .aido/config.yaml that may only tighten it (config-schema.ts: what a file may say and the
// defaults; config-file.ts: reading one; config-tighten.ts: the layering). No other module
// reads process.env.

import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { checkedRedisUrl } from "./cluster/redis-url.js";
import { readConfigFile } from "./config-file.js";
import { mcpNetworkGrant, mountProblems } from "./config-mcp-servers.js";
import { findPackageRoot, shippedModels } from "./config-package.js";
import { type ConfigFile, DEFAULTS } from "./config-schema.js";
import { tightenConfig } from "./config-tighten.js";
import { AidoError, ErrorCode } from "./errors.js";
import { aidoHome, socketPathIn } from "./home.js";
import type { Grant } from "./security/grants.js";
import { type TelemetryConfig, telemetryFromEnv } from "./telemetry/config.js";

export type NetworkGrant = Extract<Grant, { kind: "network" }>;

export type ProviderName = "anthropic" | "openai" | "deepseek" | "ollama" | "openai-compat";

export interface ProviderEnv {
  apiKey?: string;
  baseURL?: string;
}

export interface Config {
  home: string;
  dbPath: string;
  /** The audit log's signed head, kept outside the database (security/audit-head.ts). */
  auditHeadPath: string;
  socketPath: string;
  pidPath: string;
  keysDir: string;
  goalsDir: string;
  /** Folder of the Aido package: bundled manifests/, skills/, sandbox-image/. */
  packageRoot: string;
  modelOverride?: string;
  providers: Record<ProviderName, ProviderEnv>;
  record?: string;
  replay?: string;
  persistentMemory: boolean;
  skillsDirs: string[];
  inference: {
    maxConcurrent: number;
    maxRetries: number;
    requestTimeoutMs: number;
    /** Cluster mode only: calls in flight per provider across every node. */
    clusterMaxConcurrent?: number;
  };
  limits: {
    maxAgentsPerGoal: number;
    maxDepth: number;
    maxChildren: number;
    maxIterations: number;
    goalMaxTokens: number;
    spawnBatchCap: number;
    childRetries: number;
    maxConcurrentGoals: number;
    toolOutputMaxBytes: number;
  };
  /**
   * The operator's grant ceilings: a grant held by anything started over the socket must be
   * covered by every list here (user file, then project file). Empty: no ceiling configured.
   */
  grantCeilings: string[][];
  /**
   * Which models agents may use: a model must match a glob of EVERY list (the operator's
   * `models.allowed`, else the models of the shipped manifests plus AIDO_MODEL; then the
   * project file's, which can only narrow).
   */
  models: { allowed: string[][] };
  policy: { deny: string[]; confirm: string[]; snapshotBeforeMutation: boolean };
  approvals: { timeoutMs: number; allowAlwaysTtlSeconds: number };
  sandbox: {
    image: string;
    memoryMb: number;
    cpus: number;
    pids: number;
    tmpfsMb: number;
    ttlSeconds: number;
    warmPool: number;
    execTimeoutMs: number;
    /** "off": execs run without a Landlock domain (audited at start-up as sandbox.landlock_off). */
    landlock: "on" | "off";
    /** Cap on each goal's files on the host (workspace + output); see sandbox/quota.ts. */
    workspaceMaxMb: number;
    /**
     * Cap on each goal's snapshot store (goals/<id>/snapshots); the oldest snapshots are
     * pruned to stay under it. Default: workspaceMaxMb. See sandbox/snapshot-prune.ts.
     */
    snapshotsMaxMb: number;
    /** goal.submit `inputs`: total size and number of files, folders and links, all inputs together. */
    inputsMaxMb: number;
    inputsMaxFiles: number;
  };
  webFetch: { maxBytes: number; timeoutMs: number; maxRedirects: number };
  /** The egress proxy (egress/proxy.ts, docs/egress.md). */
  egress: {
    /** Static resolution, name -> address, instead of DNS for these names (operator only). */
    hosts: Readonly<Record<string, string>>;
    /** Connecting to an upstream address. */
    connectTimeoutMs: number;
    /** A connection with no byte either way for this long is closed. */
    idleTimeoutMs: number;
    /** Connections open at once per goal (or human sandbox). */
    maxConnections: number;
    /**
     * Connections open at once per caller (an agent, or an MCP server), so that one agent
     * cannot hold all of its goal's and starve its siblings.
     */
    maxConnectionsPerAgent: number;
  };
  memory: {
    maxRecords: number;
    maxContentBytes: number;
    embedder: "local" | "openai";
    embeddingModel?: string;
  };
  daemon: {
    maxLineBytes: number;
    manifestDirs: string[];
    /** Socket connections open at once (daemon.max_connections). */
    maxConnections: number;
    /** `aido mcp serve --http` sessions open at once (daemon.mcp_max_http_sessions). */
    mcpMaxHttpSessions: number;
    /** Calls of one MCP session waiting for a daemon connection (daemon.mcp_max_queued_calls). */
    mcpMaxQueuedCalls: number;
  };
  /**
   * The dashboard (daemon/ui/): port 0 = a free one chosen at the first `ui.open`;
   * assetsDir: the built page, <package>/dist/ui (scripts/build-ui.mjs writes it).
   */
  ui: { port: number; maxUploadMb: number; assetsDir: string };
  /** External MCP servers the operator declared (config `mcp_servers`; tools/mcp/). */
  mcp: {
    servers: Record<string, McpServerConfig>;
    /**
     * The value of an environment variable a server's header names, read when the server is
     * connected (undefined: not set). Never logged, shown or audited.
     */
    headerValue(variable: string): string | undefined;
  };
  /** OpenTelemetry trace export (telemetry/config.ts); absent: tracing is off. */
  telemetry?: TelemetryConfig;
  /** Cluster mode (cluster/, docs/scale-out.md); absent: this daemon runs alone. */
  cluster?: ClusterConfig;
}

export interface ClusterConfig {
  /** Never logged, shown or audited as is: redactRedisUrl (cluster/redis-url.ts). */
  redisUrl: string;
  /** From the config; absent: generated once and kept in the home (cluster/identity.ts). */
  nodeId?: string;
  leaseMs: number;
  heartbeatMs: number;
  /**
   * cluster.on_redis_loss: "hold" fences the node's goals once it could not renew its lease
   * for lease_ms less a margin (cluster/fence.ts); "finish" lets them run on.
   */
  onRedisLoss: "hold" | "finish";
}

/** One external MCP server: remote (Streamable HTTP) or stdio (a container of its own per goal). */
export type McpServerConfig = {
  name: string;
  /** Tool globs the operator marked read-only: only these run without a human's approval. */
  readOnlyTools: string[];
  /** Cap on connecting, listing and each call. */
  timeoutMs: number;
} & (
  | {
      transport: "http";
      url: string;
      /** Header name -> the environment variable holding its value. */
      headers: Record<string, string>;
    }
  | {
      transport: "stdio";
      command: string[];
      /** Default: the sandbox image. */
      image?: string;
      /** Literal values: the server sees nothing of the daemon's environment. */
      env: Record<string, string>;
      workspace: "none" | "ro" | "rw";
      /** Read-only host paths. */
      mounts: { source: string; target: string }[];
      /**
       * The hosts the server may reach through the egress proxy (config `network`): none,
       * the default, keeps its container on network none.
       */
      network?: NetworkGrant[];
    }
);

export type Env = Readonly<Record<string, string | undefined>>;

export interface LoadConfigOptions {
  env?: Env;
  /** Working project folder whose .aido/config.yaml may tighten the config. */
  projectDir?: string;
  packageRoot?: string;
}

function envInt(env: Env, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) <= 0) {
    throw new AidoError(
      ErrorCode.configInvalid,
      `environment variable ${name}="${raw}" must be a positive integer`,
      {
        variable: name,
      },
    );
  }
  return Number(raw);
}

function envFlag(env: Env, name: string): boolean {
  const raw = env[name];
  if (raw === undefined || raw === "" || raw === "0" || raw === "false") return false;
  if (raw === "1" || raw === "true") return true;
  throw new AidoError(
    ErrorCode.configInvalid,
    `environment variable ${name}="${raw}" must be 1/0 or true/false`,
    {
      variable: name,
    },
  );
}

export function loadConfig(opts: LoadConfigOptions = {}): Config {
  const env = opts.env ?? process.env;
  const home = aidoHome(env);
  const userFile = join(home, "config.yaml");
  const check = (f: ConfigFile) => mountProblems(f.mcp_servers, home);
  let file: ConfigFile = existsSync(userFile) ? readConfigFile(userFile, check) : {};
  const grantCeilings = file.grants ? [file.grants] : [];
  const packageRoot = opts.packageRoot ?? findPackageRoot();
  const modelsAllowed = [file.models?.allowed ?? shippedModels(packageRoot, env.AIDO_MODEL)];
  const projectDir = opts.projectDir ?? process.cwd();
  const projectFile = join(projectDir, ".aido", "config.yaml");
  if (existsSync(projectFile) && resolve(projectFile) !== resolve(userFile)) {
    const project = readConfigFile(projectFile, check);
    if (project.grants) grantCeilings.push(project.grants);
    if (project.models) modelsAllowed.push(project.models.allowed);
    file = tightenConfig(file, project, projectFile);
  }
  const maxConcurrent = envInt(env, "AIDO_MAX_CONCURRENT_INFERENCE") ?? file.inference?.max_concurrent;
  const spawnBatchCap = envInt(env, "AIDO_SPAWN_BATCH_CAP") ?? file.limits?.spawn_batch_cap;
  const f = file;
  const pick = <T>(v: T | undefined, d: T): T => (v === undefined ? d : v);
  const skillsDirs = [
    join(packageRoot, "skills"),
    join(home, "skills"),
    join(projectDir, ".agents", "skills"),
  ];
  if (env.AIDO_SKILLS_DIR) skillsDirs.push(resolve(env.AIDO_SKILLS_DIR));
  const cfg: Config = {
    home,
    dbPath: join(home, "aido.db"),
    auditHeadPath: join(home, "audit.head"),
    socketPath: socketPathIn(home),
    pidPath: join(home, "agentd.pid"),
    keysDir: join(home, "keys"),
    goalsDir: join(home, "goals"),
    packageRoot,
    grantCeilings,
    models: { allowed: modelsAllowed },
    providers: {
      anthropic: { apiKey: env.ANTHROPIC_API_KEY, baseURL: env.ANTHROPIC_BASE_URL },
      openai: { apiKey: env.OPENAI_API_KEY, baseURL: env.OPENAI_BASE_URL },
      deepseek: { apiKey: env.DEEPSEEK_API_KEY, baseURL: env.DEEPSEEK_BASE_URL },
      ollama: { baseURL: env.OLLAMA_HOST },
      "openai-compat": { apiKey: env.OPENAI_API_KEY, baseURL: env.AIDO_OPENAI_COMPAT_BASE_URL },
    },
    persistentMemory: envFlag(env, "AIDO_PERSISTENT_MEMORY"),
    skillsDirs,
    inference: {
      maxConcurrent: pick(maxConcurrent, DEFAULTS.inference.maxConcurrent),
      maxRetries: pick(f.inference?.max_retries, DEFAULTS.inference.maxRetries),
      requestTimeoutMs: pick(f.inference?.request_timeout_ms, DEFAULTS.inference.requestTimeoutMs),
    },
    limits: {
      maxAgentsPerGoal: pick(f.limits?.max_agents_per_goal, DEFAULTS.limits.maxAgentsPerGoal),
      maxDepth: pick(f.limits?.max_depth, DEFAULTS.limits.maxDepth),
      maxChildren: pick(f.limits?.max_children, DEFAULTS.limits.maxChildren),
      maxIterations: pick(f.limits?.max_iterations, DEFAULTS.limits.maxIterations),
      goalMaxTokens: pick(f.limits?.goal_max_tokens, DEFAULTS.limits.goalMaxTokens),
      spawnBatchCap: pick(spawnBatchCap, DEFAULTS.limits.spawnBatchCap),
      childRetries: pick(f.limits?.child_retries, DEFAULTS.limits.childRetries),
      maxConcurrentGoals: pick(f.limits?.max_concurrent_goals, DEFAULTS.limits.maxConcurrentGoals),
      toolOutputMaxBytes: pick(f.limits?.tool_output_max_bytes, DEFAULTS.limits.toolOutputMaxBytes),
    },
    policy: {
      deny: f.policy?.deny ?? [],
      confirm: f.policy?.confirm ?? [],
      snapshotBeforeMutation: f.policy?.snapshot_before_mutation ?? true,
    },
    approvals: {
      timeoutMs: pick(f.approvals?.timeout_ms, DEFAULTS.approvals.timeoutMs),
      allowAlwaysTtlSeconds: pick(
        f.approvals?.allow_always_ttl_seconds,
        DEFAULTS.approvals.allowAlwaysTtlSeconds,
      ),
    },
    sandbox: {
      image: env.AIDO_SANDBOX_IMAGE || pick(f.sandbox?.image, DEFAULTS.sandbox.image),
      memoryMb: pick(f.sandbox?.memory_mb, DEFAULTS.sandbox.memoryMb),
      cpus: pick(f.sandbox?.cpus, DEFAULTS.sandbox.cpus),
      pids: pick(f.sandbox?.pids, DEFAULTS.sandbox.pids),
      tmpfsMb: pick(f.sandbox?.tmpfs_mb, DEFAULTS.sandbox.tmpfsMb),
      ttlSeconds: pick(f.sandbox?.ttl_seconds, DEFAULTS.sandbox.ttlSeconds),
      warmPool: pick(f.sandbox?.warm_pool, DEFAULTS.sandbox.warmPool),
      execTimeoutMs: pick(f.sandbox?.exec_timeout_ms, DEFAULTS.sandbox.execTimeoutMs),
      landlock: pick(f.sandbox?.landlock, DEFAULTS.sandbox.landlock),
      workspaceMaxMb: pick(f.sandbox?.workspace_max_mb, DEFAULTS.sandbox.workspaceMaxMb),
      snapshotsMaxMb: pick(
        f.sandbox?.snapshots_max_mb,
        pick(f.sandbox?.workspace_max_mb, DEFAULTS.sandbox.workspaceMaxMb),
      ),
      inputsMaxMb: pick(f.sandbox?.inputs_max_mb, DEFAULTS.sandbox.inputsMaxMb),
      inputsMaxFiles: pick(f.sandbox?.inputs_max_files, DEFAULTS.sandbox.inputsMaxFiles),
    },
    webFetch: {
      maxBytes: pick(f.web_fetch?.max_bytes, DEFAULTS.webFetch.maxBytes),
      timeoutMs: pick(f.web_fetch?.timeout_ms, DEFAULTS.webFetch.timeoutMs),
      maxRedirects: pick(f.web_fetch?.max_redirects, DEFAULTS.webFetch.maxRedirects),
    },
    egress: {
      hosts: { ...(f.egress?.hosts ?? {}) },
      connectTimeoutMs: pick(f.egress?.connect_timeout_ms, DEFAULTS.egress.connectTimeoutMs),
      idleTimeoutMs: pick(f.egress?.idle_timeout_ms, DEFAULTS.egress.idleTimeoutMs),
      maxConnections: pick(f.egress?.max_connections, DEFAULTS.egress.maxConnections),
      maxConnectionsPerAgent: pick(
        f.egress?.max_connections_per_agent,
        DEFAULTS.egress.maxConnectionsPerAgent,
      ),
    },
    memory: {
      maxRecords: pick(f.memory?.max_records, DEFAULTS.memory.maxRecords),
      maxContentBytes: pick(f.memory?.max_content_bytes, DEFAULTS.memory.maxContentBytes),
      embedder: f.memory?.embedder ?? "local",
    },
    daemon: {
      maxLineBytes: pick(f.daemon?.max_line_bytes, DEFAULTS.daemon.maxLineBytes),
      maxConnections: pick(f.daemon?.max_connections, DEFAULTS.daemon.maxConnections),
      mcpMaxHttpSessions: pick(f.daemon?.mcp_max_http_sessions, DEFAULTS.daemon.mcpMaxHttpSessions),
      mcpMaxQueuedCalls: pick(f.daemon?.mcp_max_queued_calls, DEFAULTS.daemon.mcpMaxQueuedCalls),
      manifestDirs: (f.daemon?.manifest_dirs ?? [join(packageRoot, "manifests")]).map((d) =>
        resolve(home, d),
      ),
    },
    ui: {
      port: pick(f.ui?.port, DEFAULTS.ui.port),
      maxUploadMb: pick(f.ui?.max_upload_mb, DEFAULTS.ui.maxUploadMb),
      assetsDir: join(packageRoot, "dist", "ui"),
    },
    mcp: { servers: {}, headerValue: (variable) => env[variable] },
  };
  for (const [name, s] of Object.entries(f.mcp_servers ?? {})) {
    const common = {
      name,
      readOnlyTools: [...(s.read_only_tools ?? [])],
      timeoutMs: s.timeout_ms ?? DEFAULTS.mcp.timeoutMs,
    };
    cfg.mcp.servers[name] =
      s.url !== undefined
        ? { ...common, transport: "http", url: s.url, headers: { ...(s.headers ?? {}) } }
        : {
            ...common,
            transport: "stdio",
            command: [...(s.command ?? [])],
            ...(s.image !== undefined ? { image: s.image } : {}),
            env: { ...(s.env ?? {}) },
            workspace: s.workspace ?? "none",
            mounts: (s.mounts ?? []).map((m) => ({ ...m })),
            network: (s.network ?? []).map(mcpNetworkGrant),
          };
  }
  const redisUrl = env.AIDO_REDIS_URL
    ? checkedRedisUrl(env.AIDO_REDIS_URL, "AIDO_REDIS_URL")
    : f.cluster?.redis_url;
  if (f.inference?.cluster_max_concurrent !== undefined) {
    if (redisUrl === undefined) {
      throw new AidoError(
        ErrorCode.configInvalid,
        "inference.cluster_max_concurrent caps model calls across a cluster: it needs cluster.redis_url (or AIDO_REDIS_URL)",
        { key: "inference.cluster_max_concurrent" },
      );
    }
    cfg.inference.clusterMaxConcurrent = f.inference.cluster_max_concurrent;
  }
  if (redisUrl !== undefined) {
    cfg.cluster = {
      redisUrl,
      leaseMs: pick(f.cluster?.lease_ms, DEFAULTS.cluster.leaseMs),
      heartbeatMs: pick(f.cluster?.heartbeat_ms, DEFAULTS.cluster.heartbeatMs),
      onRedisLoss: pick(f.cluster?.on_redis_loss, DEFAULTS.cluster.onRedisLoss),
      ...(f.cluster?.node_id !== undefined ? { nodeId: f.cluster.node_id } : {}),
    };
  }
  const telemetry = telemetryFromEnv(env);
  if (telemetry) cfg.telemetry = telemetry;
  if (env.AIDO_MODEL) cfg.modelOverride = env.AIDO_MODEL;
  if (env.AIDO_RECORD) cfg.record = resolve(env.AIDO_RECORD);
  if (env.AIDO_REPLAY) cfg.replay = resolve(env.AIDO_REPLAY);
  if (f.memory?.embedding_model) cfg.memory.embeddingModel = f.memory.embedding_model;
  return cfg;
}
