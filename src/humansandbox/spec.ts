// humansandbox/spec.ts — sandbox.yaml: what a person declares about the disposable
// container an AI-written script runs in. Strict like a manifest: an unknown key, a bad
// duration or a limit above the operator's config is an error naming the key and the
// line. Parsing is the only place these values are checked; inside they are trusted.

import { closeSync, constants, fstatSync, openSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import type { Config } from "../config.js";
import { lineOf } from "../config-file.js";
import { AidoError, ErrorCode, errorMessage, formatIssues, type Issue } from "../errors.js";
import { formatGrant, parseGrant } from "../security/grants.js";

export class SandboxSpecError extends AidoError {
  readonly issues: readonly Issue[];
  constructor(source: string, issues: readonly Issue[]) {
    super(ErrorCode.configInvalid, `invalid sandbox file ${source}:\n${formatIssues(source, issues)}`, {
      source,
      issues,
    });
    this.issues = issues;
  }
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "15m", "2h", "1s", "500ms" -> milliseconds; undefined when not a duration. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) return undefined;
  const ms = Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  return ms > 0 && Number.isSafeInteger(ms) ? ms : undefined;
}

/** "512m", "1g", "256mb" (binary units) or a bare number of MB -> MB; undefined when not one. */
export function parseMemoryMb(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value > 0 ? value : undefined;
  const m = /^(\d+(?:\.\d+)?)\s*(k|m|g)i?b?$/i.exec(value.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = (m[2] as string).toLowerCase();
  const mb = unit === "k" ? n / 1024 : unit === "g" ? n * 1024 : n;
  return mb > 0 ? mb : undefined;
}

const duration = z.string().refine((s) => parseDuration(s) !== undefined, {
  message: 'must be a duration such as "90s", "15m" or "2h"',
});

/** A path or glob relative to the project (or absolute, for an input): no ".." segments. */
const projectPattern = (allowAbsolute: boolean) =>
  z
    .string()
    .min(1)
    .refine((s) => !s.includes("\0") && !s.split(/[\\/]/).includes(".."), {
      message: 'must not contain ".." (declare paths inside the project)',
    })
    .refine((s) => allowAbsolute || !s.startsWith("/"), {
      message: "must be relative to the project (outputs land at the same path in the project)",
    });

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const SandboxFileSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "use letters, digits, '_', '-' or '.' (up to 64)")
    .optional(),
  runtime: z
    .string()
    .regex(
      /^(python|node):[0-9][0-9.]*$|^docker:\/\/[^\s]+$/,
      'must be "python:VERSION", "node:VERSION" or "docker://IMAGE"',
    )
    .optional(),
  ttl: duration.optional(),
  inputs: z.array(projectPattern(true)).optional(),
  outputs: z.array(projectPattern(false)).optional(),
  permissions: z
    .strictObject({
      filesystem: z.enum(["readonly", "readwrite", "none"]).optional(),
      network: z
        .union([z.boolean(), z.array(z.string().min(1)).min(1, "a host list names at least one host")], {
          message: "must be false, true (all), or a list of hosts (host, host:port, host:*, *.domain, an IP)",
        })
        .optional(),
      unix_sockets: z
        .enum(["deny", "allow"], {
          message:
            'must be "deny" (the default: the script makes no Unix socket, so it reaches none in its inputs) or "allow"',
        })
        .optional(),
    })
    .optional(),
  env: z
    .record(
      z.string().regex(ENV_NAME, "env names are letters, digits and '_', not starting with a digit"),
      z.union([z.string(), z.number(), z.boolean()]).transform(String),
    )
    .optional(),
  resources: z
    .strictObject({
      cpu: z.number().positive().optional(),
      memory: z
        .union([z.string(), z.number()])
        .refine((v) => parseMemoryMb(v) !== undefined, { message: 'must be a size such as "512m" or "1g"' })
        .optional(),
      timeout: duration.optional(),
    })
    .optional(),
});

/** A validated sandbox.yaml with defaults applied and units resolved. */
export interface SandboxSpec {
  source: string;
  name: string;
  runtime: string;
  ttlMs: number;
  inputs: string[];
  outputs: string[];
  filesystem: "readonly" | "readwrite" | "none";
  /**
   * false: no network; true: all (the engine's default bridge, an escape hatch); a list:
   * only these hosts, through the egress proxy (humansandbox/egress.ts), as network grants
   * spell them ("pypi.org", "host:8080", "host:*", "*.domain", an IP literal).
   */
  network: SandboxNetwork;
  /**
   * "deny" (the default): the task makes no Unix socket of its own (aido-landlock
   * --no-unix-sockets), so it connects to none it finds in its inputs or work folder, an
   * ssh-agent's, a D-Bus bus's or the Docker engine's: a read-only bind does not stop a
   * connect, and the task runs as the person's uid. "allow": it may.
   */
  unixSockets: UnixSockets;
  env: Record<string, string>;
  cpus: number;
  memoryMb: number;
  timeoutMs: number;
}

export type SandboxNetwork = boolean | string[];
export type UnixSockets = "deny" | "allow";

export const DEFAULT_TTL_MS = 3_600_000;

/** Parse sandbox.yaml text; `caps` (the operator's config) bounds ttl, cpu and memory. */
export function parseSandboxSpec(
  text: string,
  source: string,
  config: Pick<Config, "sandbox">,
  defaultName: string,
): SandboxSpec {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new SandboxSpecError(
      source,
      doc.errors.map((e) => ({
        path: "",
        message: e.message.split("\n")[0] ?? e.message,
        line: lc.linePos(e.pos[0]).line,
      })),
    );
  }
  const at = (path: string[], message: string): Issue => {
    const line = lineOf(doc, lc, path);
    return line === undefined ? { path: path.join("."), message } : { path: path.join("."), message, line };
  };
  const parsed = SandboxFileSchema.safeParse(doc.toJS({ maxAliasCount: 50 }) ?? {});
  if (!parsed.success) {
    throw new SandboxSpecError(
      source,
      parsed.error.issues.map((i) => {
        const keys = i.code === "unrecognized_keys" ? i.keys : [];
        const path = [...i.path.map(String), ...keys.slice(0, 1)];
        return at(path, i.code === "unrecognized_keys" ? `unknown key "${keys.join('", "')}"` : i.message);
      }),
    );
  }
  const f = parsed.data;
  const s = config.sandbox;
  const spec: SandboxSpec = {
    source,
    name: f.name ?? defaultName,
    runtime: f.runtime ?? `docker://${s.image}`,
    ttlMs:
      f.ttl === undefined ? Math.min(DEFAULT_TTL_MS, s.ttlSeconds * 1000) : (parseDuration(f.ttl) as number),
    inputs: f.inputs ?? [],
    outputs: f.outputs ?? [],
    filesystem: f.permissions?.filesystem ?? "readwrite",
    network: f.permissions?.network ?? false,
    unixSockets: f.permissions?.unix_sockets ?? "deny",
    env: f.env ?? {},
    cpus: f.resources?.cpu ?? s.cpus,
    memoryMb: f.resources?.memory === undefined ? s.memoryMb : (parseMemoryMb(f.resources.memory) as number),
    timeoutMs:
      f.resources?.timeout === undefined ? s.execTimeoutMs : (parseDuration(f.resources.timeout) as number),
  };
  // The operator's config is a ceiling: a sandbox file may ask for less, never for more.
  const issues: Issue[] = [];
  if (spec.ttlMs > s.ttlSeconds * 1000)
    issues.push(
      at(["ttl"], `${f.ttl} is above the operator's limit of ${s.ttlSeconds} s (sandbox.ttl_seconds)`),
    );
  if (spec.cpus > s.cpus)
    issues.push(
      at(["resources", "cpu"], `${spec.cpus} is above the operator's limit of ${s.cpus} (sandbox.cpus)`),
    );
  if (spec.memoryMb > s.memoryMb)
    issues.push(
      at(
        ["resources", "memory"],
        `${spec.memoryMb} MB is above the operator's limit of ${s.memoryMb} MB (sandbox.memory_mb)`,
      ),
    );
  if (Array.isArray(spec.network)) spec.network = hostList(spec.network, at, issues);
  if (issues.length > 0) throw new SandboxSpecError(source, issues);
  return spec;
}

/**
 * A host list in network grant syntax, parsed by the one grant parser (so an entry is
 * refused with the words a manifest's grant would be), spelled as that parser spells it.
 */
function hostList(
  entries: readonly string[],
  at: (path: string[], message: string) => Issue,
  issues: Issue[],
): string[] {
  const hosts: string[] = [];
  for (const [i, entry] of entries.entries()) {
    try {
      const grant = parseGrant(`network: ${entry}`);
      hosts.push(formatGrant(grant).slice("network: ".length));
    } catch (e) {
      issues.push(at(["permissions", "network", String(i)], `"${entry}": ${errorMessage(e)}`));
    }
  }
  return [...new Set(hosts)];
}

/** A sandbox file is YAML a person writes: one larger than this is not one. */
export const MAX_SANDBOX_FILE_BYTES = 1024 * 1024;

/**
 * The text of the sandbox file at `file`: a regular file only, opened without blocking. It is
 * read at each run, destroy and TTL sweep, and a task given the folder that holds it (an
 * input, with --dangerous-allow-mutations) can put a FIFO at its name: read as it came, that
 * waited for a writer forever, and once the sandbox expired so did every aido command.
 */
function readSandboxFile(file: string): string {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error("not a regular file");
    if (st.size > MAX_SANDBOX_FILE_BYTES) throw new Error(`larger than ${MAX_SANDBOX_FILE_BYTES} bytes`);
    return readFileSync(fd, "utf8");
  } finally {
    closeSync(fd);
  }
}

/** Read and parse a sandbox file; a missing file is a configuration error naming it. */
export function loadSandboxSpec(
  file: string,
  config: Pick<Config, "sandbox">,
  defaultName: string,
): SandboxSpec {
  const abs = resolve(file);
  let text: string;
  try {
    text = readSandboxFile(abs);
  } catch (e) {
    throw new AidoError(ErrorCode.configInvalid, `cannot read sandbox file ${abs}: ${(e as Error).message}`, {
      file: abs,
    });
  }
  return parseSandboxSpec(text, abs, config, defaultName);
}

/**
 * The `env` values of the sandbox file as it is now (Aido never stores them), for the
 * scrubber of what is said outside a run: destroy's and the TTL sweep's errors, which name
 * entries a task left by the names it chose. Read leniently: a file whose other keys no
 * longer pass still gives its env; one that cannot be read or parsed gives none.
 */
export function sandboxEnvValues(file: string | null): Record<string, string> {
  if (file === null) return {};
  try {
    return envValuesOf(readSandboxFile(file));
  } catch {
    return {};
  }
}

/** sandboxEnvValues for a sandbox file's text. */
export function envValuesOf(text: string): Record<string, string> {
  try {
    const doc = parseDocument(text, { prettyErrors: false });
    if (doc.errors.length > 0) return {};
    const js = doc.toJS({ maxAliasCount: 50 }) as { env?: unknown } | null;
    const env = SandboxFileSchema.shape.env.safeParse(js?.env);
    return env.success ? (env.data ?? {}) : {};
  } catch {
    return {};
  }
}
