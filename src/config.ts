// config.ts — the one typed configuration. Built once from the environment,
// $AIDO_HOME/config.yaml (the operator's file) and an optional project-level
// .aido/config.yaml that may only tighten it: lower limits, more deny rules, a
// narrower grant ceiling, never more. No other module reads process.env.

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { isMap, LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import { AidoError, ErrorCode, formatIssues, type Issue } from "./errors.js";
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

/** What a config file may say. Every key is enforced somewhere; unknown keys are errors. */
export const ConfigFileSchema = z.strictObject({
  inference: z
    .strictObject({
      max_concurrent: positiveInt.optional(),
      max_retries: z.number().int().min(0).max(10).optional(),
      request_timeout_ms: positiveInt.optional(),
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
    })
    .optional(),
});
export type ConfigFile = z.infer<typeof ConfigFileSchema>;

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
  inference: { maxConcurrent: number; maxRetries: number; requestTimeoutMs: number };
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
  memory: {
    maxRecords: number;
    maxContentBytes: number;
    embedder: "local" | "openai";
    embeddingModel?: string;
  };
  daemon: { maxLineBytes: number; manifestDirs: string[] };
}

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
  memory: { maxRecords: 10_000, maxContentBytes: 16_384 },
  daemon: { maxLineBytes: 1024 * 1024 },
} as const;

export type Env = Readonly<Record<string, string | undefined>>;

export interface LoadConfigOptions {
  env?: Env;
  /** Working project folder whose .aido/config.yaml may tighten the config. */
  projectDir?: string;
  packageRoot?: string;
}

/** Parse one YAML config file strictly; errors name the file, the key path and the line. */
export function readConfigFile(file: string): ConfigFile {
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
    "memory",
    "daemon",
  ] as const;
  for (const section of numericSections) {
    const p = project[section] as Record<string, unknown> | undefined;
    if (!p) continue;
    const sections = out as Record<string, Record<string, unknown> | undefined>;
    const o = sections[section] ?? {};
    sections[section] = o;
    for (const [k, v] of Object.entries(p)) {
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
  // grants are not merged here: each file's list stays a separate ceiling (see loadConfig).
  return out;
}

export function loadConfig(opts: LoadConfigOptions = {}): Config {
  const env = opts.env ?? process.env;
  const home = resolve(env.AIDO_HOME && env.AIDO_HOME !== "" ? env.AIDO_HOME : join(homedir(), ".aido"));
  const userFile = join(home, "config.yaml");
  let file: ConfigFile = existsSync(userFile) ? readConfigFile(userFile) : {};
  const grantCeilings = file.grants ? [file.grants] : [];
  const packageRoot = opts.packageRoot ?? findPackageRoot();
  const modelsAllowed = [file.models?.allowed ?? shippedModels(packageRoot, env.AIDO_MODEL)];
  const projectDir = opts.projectDir ?? process.cwd();
  const projectFile = join(projectDir, ".aido", "config.yaml");
  if (existsSync(projectFile) && resolve(projectFile) !== resolve(userFile)) {
    const project = readConfigFile(projectFile);
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
    socketPath: join(home, "agentd.sock"),
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
    memory: {
      maxRecords: pick(f.memory?.max_records, DEFAULTS.memory.maxRecords),
      maxContentBytes: pick(f.memory?.max_content_bytes, DEFAULTS.memory.maxContentBytes),
      embedder: f.memory?.embedder ?? "local",
    },
    daemon: {
      maxLineBytes: pick(f.daemon?.max_line_bytes, DEFAULTS.daemon.maxLineBytes),
      manifestDirs: (f.daemon?.manifest_dirs ?? [join(packageRoot, "manifests")]).map((d) =>
        resolve(home, d),
      ),
    },
  };
  if (env.AIDO_MODEL) cfg.modelOverride = env.AIDO_MODEL;
  if (env.AIDO_RECORD) cfg.record = resolve(env.AIDO_RECORD);
  if (env.AIDO_REPLAY) cfg.replay = resolve(env.AIDO_REPLAY);
  if (f.memory?.embedding_model) cfg.memory.embeddingModel = f.memory.embedding_model;
  return cfg;
}

/**
 * The default `models.allowed`: the models the manifests shipped in manifests/ name, and
 * AIDO_MODEL when set. Only the `model:` key is read; a file that does not parse adds none.
 */
function shippedModels(packageRoot: string, override: string | undefined): string[] {
  const models = new Set<string>();
  const dir = join(packageRoot, "manifests");
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith(".yaml") || f.endsWith(".yml"));
  } catch {
    // no shipped manifests: only AIDO_MODEL
  }
  for (const f of files.sort()) {
    try {
      const model = (parseDocument(readFileSync(join(dir, f), "utf8")).toJS() as { model?: unknown })?.model;
      if (typeof model === "string" && model !== "") models.add(model);
    } catch {
      // not this file's model
    }
  }
  if (override) models.add(override);
  return [...models];
}

function findPackageRoot(): string {
  // src/config.ts and dist/config.js both sit one level below the package root.
  return resolve(new URL(".", import.meta.url).pathname, "..");
}
