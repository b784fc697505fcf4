// security/grants.ts — the one parser for capability strings ("file_read: /workspace/**").
// Manifests, config ceilings, tokens and the gate all go through parseGrant; a second
// parser elsewhere is how capability checks drift apart, so there is none.

import { AidoError, ErrorCode } from "../errors.js";

export type PathGrantKind = "file_read" | "file_write";

export type Grant =
  | { kind: "tool"; name: string }
  | { kind: PathGrantKind; glob: string }
  | { kind: "exec"; pattern: string }
  | { kind: "network"; host: string; port?: NetworkPort }
  | { kind: "mcp"; server: string; tool: string }
  | { kind: "spawn_child"; names: readonly string[] | "*" };

/**
 * The port of a network grant: a number, "*" for every port, or absent for the web's two
 * (80 and 443): "network: pypi.org" reaches pypi.org over http and https, nothing else.
 */
export type NetworkPort = number | "*";

export type GrantKind = Grant["kind"];
export const GRANT_KINDS: readonly GrantKind[] = [
  "tool",
  "file_read",
  "file_write",
  "exec",
  "network",
  "mcp",
  "spawn_child",
];

const TOOL_NAME = /^[a-z][a-z0-9_]{0,63}$/;
const MANIFEST_NAME = /^[a-z][a-z0-9_-]{0,63}$/;
const HOST_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
/** An external MCP server's name as config and grants spell it ("__" would blur mcp__s__t). */
export const MCP_SERVER_NAME = /^[a-z][a-z0-9-]{0,31}$/;
/** A tool name pattern of an mcp grant: the characters MCP tool names use, and "*". */
const MCP_TOOL_GLOB = /^[A-Za-z0-9_.*-]{1,64}$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export class GrantSyntaxError extends AidoError {
  constructor(text: string, reason: string) {
    super(ErrorCode.grantInvalid, `invalid capability "${text}": ${reason}`, { grant: text, reason });
  }
}

export function parseGrant(text: string): Grant {
  const colon = text.indexOf(":");
  if (colon < 0)
    throw new GrantSyntaxError(text, `expected "<kind>: <value>" with kind one of ${GRANT_KINDS.join(", ")}`);
  const kind = text.slice(0, colon).trim();
  const value = text.slice(colon + 1).trim();
  if (value === "") throw new GrantSyntaxError(text, "empty value");
  switch (kind) {
    case "tool":
      if (value !== "*" && !TOOL_NAME.test(value))
        throw new GrantSyntaxError(text, "tool must be a tool name or *");
      return { kind, name: value };
    case "file_read":
    case "file_write":
      checkPathGlob(text, value);
      return { kind, glob: value };
    case "exec":
      checkExecPattern(text, value);
      return { kind, pattern: value.split(/\s+/).join(" ") };
    case "network":
      return parseNetwork(text, value);
    case "mcp":
      return parseMcp(text, value);
    case "spawn_child":
      return { kind, names: parseSpawnNames(text, value) };
    default:
      throw new GrantSyntaxError(text, `unknown kind "${kind}" (expected one of ${GRANT_KINDS.join(", ")})`);
  }
}

export function formatGrant(g: Grant): string {
  switch (g.kind) {
    case "tool":
      return `tool: ${g.name}`;
    case "file_read":
    case "file_write":
      return `${g.kind}: ${g.glob}`;
    case "exec":
      return `exec: ${g.pattern}`;
    case "network":
      return `network: ${g.host}${g.port === undefined ? "" : `:${g.port}`}`;
    case "mcp":
      return `mcp: ${g.server}/${g.tool}`;
    case "spawn_child":
      return `spawn_child: [${g.names === "*" ? "*" : g.names.join(", ")}]`;
  }
}

/**
 * Path globs are absolute, already canonical (no "." or ".." segments, no "//"), and use
 * only "*" (within one segment) and "**" (a whole segment: any depth, including none).
 * No "?", "[...]" or "{a,b}": a small grammar keeps subset checks exact.
 */
function checkPathGlob(text: string, glob: string): void {
  if (!glob.startsWith("/")) throw new GrantSyntaxError(text, "path glob must be absolute (start with /)");
  if (/[\0\n\r]/.test(glob)) throw new GrantSyntaxError(text, "path glob contains a control character");
  if (/[?[\]{}\\]/.test(glob)) throw new GrantSyntaxError(text, 'only "*" and "**" are allowed as wildcards');
  if (glob === "/") return;
  const segments = glob.slice(1).split("/");
  for (const [i, seg] of segments.entries()) {
    if (seg === "" && i !== segments.length - 1)
      throw new GrantSyntaxError(text, 'empty path segment ("//")');
    if (seg === "." || seg === "..") throw new GrantSyntaxError(text, `"${seg}" segments are not allowed`);
    if (seg.includes("**") && seg !== "**")
      throw new GrantSyntaxError(text, '"**" must be a whole path segment');
  }
}

function checkExecPattern(text: string, pattern: string): void {
  if (/[\0\n\r]/.test(pattern)) throw new GrantSyntaxError(text, "exec pattern contains a control character");
  if (/[|;&<>()`$'"\\]/.test(pattern)) {
    throw new GrantSyntaxError(
      text,
      "exec pattern names one command and its arguments; shell syntax is not allowed",
    );
  }
}

/** "host", "host:port", "host:*", "[v6]:port"; the port 1..65535. */
function parseNetwork(text: string, value: string): Grant {
  const m = /^(\[[^\]]*\]|[^:]*)(?::([^:]*))?$/.exec(value);
  if (!m) throw new GrantSyntaxError(text, "network grant is <host-glob>[:port] (IPv6 in brackets)");
  const host = checkHost(text, m[1] as string);
  const rawPort = m[2];
  if (rawPort === undefined) return { kind: "network", host };
  if (rawPort === "*") return { kind: "network", host, port: "*" };
  const port = /^[1-9]\d{0,4}$/.test(rawPort) ? Number(rawPort) : 0;
  if (port < 1 || port > 65535)
    throw new GrantSyntaxError(text, `port "${rawPort}" must be a number 1..65535 or *`);
  return { kind: "network", host, port };
}

/** "server/tool-glob": a declared server's name, then a tool name where "*" is a wildcard. */
function parseMcp(text: string, value: string): Grant {
  const slash = value.indexOf("/");
  const server = slash < 0 ? value : value.slice(0, slash);
  const tool = slash < 0 ? "" : value.slice(slash + 1);
  if (!MCP_SERVER_NAME.test(server))
    throw new GrantSyntaxError(
      text,
      `mcp grant is <server>/<tool-glob>; "${server}" is not a server name (a-z, 0-9, "-", at most 32)`,
    );
  if (!MCP_TOOL_GLOB.test(tool))
    throw new GrantSyntaxError(
      text,
      `mcp grant is <server>/<tool-glob>; "${tool}" is not a tool name or glob`,
    );
  return { kind: "mcp", server, tool };
}

function checkHost(text: string, raw: string): string {
  const host = raw.toLowerCase();
  if (host === "*") return host;
  if (IPV4.test(host)) return host;
  if (/^\[[0-9a-f:.]+\]$/.test(host)) return host;
  const body = host.startsWith("*.") ? host.slice(2) : host;
  const labels = body.split(".");
  if (labels.length < 1 || !labels.every((l) => HOST_LABEL.test(l))) {
    throw new GrantSyntaxError(
      text,
      "network grant must be a host name, *.domain, an IPv4 address, [IPv6] or *",
    );
  }
  return host;
}

function parseSpawnNames(text: string, value: string): readonly string[] | "*" {
  const inner = value.startsWith("[") && value.endsWith("]") ? value.slice(1, -1) : value;
  const names = inner
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (names.length === 0)
    throw new GrantSyntaxError(text, "spawn_child needs at least one manifest name or *");
  if (names.includes("*")) {
    if (names.length > 1) throw new GrantSyntaxError(text, "* cannot be combined with names");
    return "*";
  }
  for (const n of names) {
    if (!MANIFEST_NAME.test(n)) throw new GrantSyntaxError(text, `"${n}" is not a manifest name`);
  }
  return [...new Set(names)].sort();
}

export function isManifestName(name: string): boolean {
  return MANIFEST_NAME.test(name);
}
