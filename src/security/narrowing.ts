// security/narrowing.ts — what a set of grants allows, and when one set fits inside another.
// Three questions, one module so they cannot drift apart:
//   grantCovers / uncoveredGrants / narrowGrants: may a child hold this? (spawn, token issue)
//   grantsWithin:               does it fit under the operator's ceilings? (daemon)
//   grantsAllow:                does a concrete call's Need fit a grant? (gate)
// Every answer is conservative: when coverage cannot be shown, it is refused, and a refusal
// names each offending grant; nothing is silently dropped.
//
// Decisions, per kind:
//   tool         "tool: *" covers every tool; otherwise names must be equal.
//   file_read,   globs (security/glob.ts). Kinds stay separate: file_write does NOT imply
//   file_write   file_read, which keeps every grant meaning exactly one thing. A file_access
//                need (an exec argument whose direction is unknown) takes either kind.
//   exec         a pattern is space-separated tokens matched against argv element by element;
//                "*" inside a token matches any characters of that one argument ("/" too);
//                a final lone "*" matches any number of further arguments, none included:
//                "python3 *" allows ["python3"], ["python3","a.py"], ["python3","-c","x"].
//                argv[0] is compared by exact name, no path lookup: "python3" does not allow
//                "/usr/bin/python3". "exec: *" allows any command.
//   network      a host is allowed by its exact name; "*.example.com" allows any name strictly
//                below example.com (a.example.com, x.a.example.com) but not example.com; "*"
//                allows every host. IP literals match exactly. A port: "host:8080" that one,
//                "host:*" any, none the web's two (80 and 443); a grant covers another when
//                its host covers the other's and its ports include the other's.
//   mcp          "server/tool-glob": the same server, and a tool glob ("*" any characters)
//                covering the other's (wildcardCovers, as exec tokens).
//   spawn_child  a child name must be listed; "[*]" allows any name and is only covered by "[*]".

import { AidoError, ErrorCode } from "../errors.js";
import type { Need } from "../gate/types.js";
import { globCovers, matchPath, wildcardCovers, wildcardMatch } from "./glob.js";
import { formatGrant, type Grant, type NetworkPort, parseGrant } from "./grants.js";

/** Does `parent` allow everything `child` allows? */
export function grantCovers(parent: Grant, child: Grant): boolean {
  switch (child.kind) {
    case "tool":
      return parent.kind === "tool" && (parent.name === "*" || parent.name === child.name);
    case "file_read":
    case "file_write":
      return parent.kind === child.kind && globCovers(parent.glob, child.glob);
    case "exec":
      return parent.kind === "exec" && execCovers(parent.pattern, child.pattern);
    case "network":
      return (
        parent.kind === "network" &&
        hostCovers(parent.host, child.host) &&
        portCovers(parent.port, child.port)
      );
    case "mcp":
      return (
        parent.kind === "mcp" && parent.server === child.server && wildcardCovers(parent.tool, child.tool)
      );
    case "spawn_child":
      if (parent.kind !== "spawn_child") return false;
      if (parent.names === "*") return true;
      if (child.names === "*") return false;
      return child.names.every((n) => (parent.names as readonly string[]).includes(n));
  }
}

/** Each requested grant no parent grant covers, formatted (empty: the child fits). */
export function uncoveredGrants(parentGrants: readonly Grant[], requested: readonly Grant[]): string[] {
  return requested.filter((g) => !parentGrants.some((p) => grantCovers(p, g))).map(formatGrant);
}

/**
 * The grants a child may hold: `requested`, unchanged, when each is covered by some parent
 * grant. Otherwise capability_denied naming every offending grant (details.offending).
 */
export function narrowGrants(parentGrants: readonly Grant[], requested: readonly Grant[]): Grant[] {
  const offending = uncoveredGrants(parentGrants, requested);
  if (offending.length > 0) {
    throw new AidoError(
      ErrorCode.capabilityDenied,
      `requested capabilities exceed the parent's: ${offending.map((g) => `"${g}"`).join(", ")}`,
      { offending },
    );
  }
  return [...requested];
}

/**
 * The operator's ceilings (Config.grantCeilings): each list is parsed with parseGrant, and
 * every grant must be covered by some grant of EVERY list (user file and project file).
 */
export function grantsWithin(ceilings: readonly (readonly string[])[], grants: readonly Grant[]): Grant[] {
  const parsed = ceilings.map((list) => list.map((s) => parseGrant(s)));
  const offending = grants
    .filter((g) => !parsed.every((list) => list.some((c) => grantCovers(c, g))))
    .map(formatGrant);
  if (offending.length > 0) {
    throw new AidoError(
      ErrorCode.capabilityDenied,
      `capabilities exceed the operator's configured ceiling: ${offending.map((g) => `"${g}"`).join(", ")}`,
      { offending },
    );
  }
  return [...grants];
}

/** The first grant that allows `need`, or undefined (the caller denies). */
export function grantsAllow(grants: readonly Grant[], need: Need): Grant | undefined {
  switch (need.kind) {
    case "tool":
      return grants.find((g) => g.kind === "tool" && (g.name === "*" || g.name === need.name));
    case "file_read":
    case "file_write":
      // A need naming a subtree ("/workspace/**", e.g. a snapshot restore) is allowed only
      // by a grant covering all of it; a plain path by a grant matching it.
      return grants.find(
        (g) =>
          g.kind === need.kind &&
          (need.path.includes("*") ? globCovers(g.glob, need.path) : matchPath(g.glob, need.path)),
      );
    case "file_access":
      // A path whose direction is unknown: either kind of file grant covering it will do.
      return grants.find(
        (g) => (g.kind === "file_read" || g.kind === "file_write") && matchPath(g.glob, need.path),
      );
    case "exec":
      if (!Array.isArray(need.argv) || need.argv.length === 0) return undefined;
      if (!need.argv.every((a) => typeof a === "string" && !a.includes("\0"))) return undefined;
      return grants.find((g) => g.kind === "exec" && execMatch(g.pattern, need.argv));
    case "network": {
      const host = normalizeHost(need.host);
      if (host === undefined) return undefined;
      return grants.find(
        (g) => g.kind === "network" && hostMatch(g.host, host) && portMatch(g.port, need.port),
      );
    }
    case "mcp":
      return grants.find(
        (g) => g.kind === "mcp" && g.server === need.server && wildcardMatch(g.tool, need.tool),
      );
    case "spawn_child":
      return grants.find((g) => g.kind === "spawn_child" && (g.names === "*" || g.names.includes(need.name)));
  }
}

// --- exec --------------------------------------------------------------------------------

interface ExecPattern {
  /** One pattern per argument, in order. */
  args: string[];
  /** A final lone "*": any number of further arguments. */
  rest: boolean;
}

function parseExec(pattern: string): ExecPattern {
  const args = pattern.split(" ").filter((t) => t !== "");
  const rest = args.at(-1) === "*";
  if (rest) args.pop();
  return { args, rest };
}

export function execMatch(pattern: string, argv: readonly string[]): boolean {
  const p = parseExec(pattern);
  if (argv.length < p.args.length || (!p.rest && argv.length !== p.args.length)) return false;
  return p.args.every((tok, i) => wildcardMatch(tok, argv[i] as string));
}

/**
 * Does exec pattern `outer` allow every argv `inner` allows? Position by position with
 * wildcardCovers; an inner open tail ("... *") is only covered by an outer open tail that
 * starts no later.
 */
export function execCovers(outer: string, inner: string): boolean {
  const o = parseExec(outer);
  const n = parseExec(inner);
  if (n.args.length < o.args.length) return false;
  if (!o.rest && (n.rest || n.args.length !== o.args.length)) return false;
  return o.args.every((tok, i) => wildcardCovers(tok, n.args[i] as string));
}

// --- network -----------------------------------------------------------------------------

/** Lower-case, one trailing dot removed; undefined for anything that is not a host name. */
function normalizeHost(raw: string): string | undefined {
  if (typeof raw !== "string") return undefined;
  const host = (raw.endsWith(".") ? raw.slice(0, -1) : raw).toLowerCase();
  if (/^\[[0-9a-f:.]+\]$/.test(host)) return host;
  return /^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(host) ? host : undefined;
}

/** IP literals are matched exactly: "*.3.4" must not reach 1.2.3.4. */
function isIpLiteral(host: string): boolean {
  return host.startsWith("[") || /^\d+(\.\d+){3}$/.test(host);
}

/** Does a network grant allow the concrete host? */
function hostMatch(grant: string, host: string): boolean {
  if (grant === "*") return true;
  if (grant.startsWith("*.")) return !isIpLiteral(host) && host.endsWith(grant.slice(1));
  return grant === host;
}

/** The ports a grant names: "*" all, a number that one, none the web's two. */
function portMatch(grant: NetworkPort | undefined, port: number): boolean {
  if (grant === "*") return true;
  if (grant === undefined) return port === 80 || port === 443;
  return grant === port;
}

function portCovers(outer: NetworkPort | undefined, inner: NetworkPort | undefined): boolean {
  if (outer === "*") return true;
  if (inner === "*") return false;
  if (inner === undefined) return outer === undefined;
  return portMatch(outer, inner);
}

/** Does network grant `outer` allow every host `inner` allows? */
export function hostCovers(outer: string, inner: string): boolean {
  if (outer === "*") return true;
  if (inner === "*") return false;
  if (outer.startsWith("*.")) {
    if (isIpLiteral(inner)) return false;
    const suffix = outer.slice(1); // ".example.com"
    // "*.example.com" itself, "*.a.example.com" and "a.example.com" are inside; "example.com" is not.
    const base = inner.startsWith("*.") ? inner.slice(1) : inner;
    return base.endsWith(suffix);
  }
  return outer === inner;
}
