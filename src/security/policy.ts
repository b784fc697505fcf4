// security/policy.ts — the policy step of the gate. Capabilities say what an agent may
// do at all (default deny lives in the gate: no covering grant, no call); the policy
// engine then refuses what nobody may do (built-in rules in policy-rules.ts) and what the
// operator's config denies or wants a human to confirm. Deny beats confirm beats allow.
//
// Config rules (`policy.deny`, `policy.confirm`) are capability-shaped strings, parsed
// once when the engine is built; a bad one is a config error that names it:
//   "git push *"  or "exec: git push *"  every simple command matching the exec pattern
//   "tool: file_write"                   any call of that tool ("tool: *" for all)
//   "path: /workspace/secrets/**"        file tools reading or writing there, and exec
//                                         arguments, redirections and cd targets there;
//                                         as a confirm rule also shut in the Landlock domain
//                                         of a call no human confirmed (closedPaths)
//   "file_read: <glob>" / "file_write: <glob>"   the same, for one direction
//   "network: *.example.com"             network needs for that host (and the bare domain)
//   "spawn_child: [writer]"              spawning those manifests
//   "mcp: github/create_*"               calls of those tools of that external MCP server
// Exec patterns: the first word matches the command's basename (or its full path when it
// holds a "/"), "*" inside a word matches any characters, a final "*" matches any number
// of remaining arguments (also none). An argument only known at run time matches any word,
// so a rule cannot be dodged by computing the argument it names.

import { posix } from "node:path";
import type { Config } from "../config.js";
import { AidoError, ErrorCode, errorMessage, isAidoError } from "../errors.js";
import type { Need } from "../gate/types.js";
import { globsOverlap, matchPath, wildcardMatch } from "./glob.js";
import { type Grant, parseGrant } from "./grants.js";
import { BUILTIN_RULES, SYSTEM_PATHS } from "./policy-rules.js";
import { analyzeCommand, basename, type CommandAnalysis, type SimpleCommand } from "./shell.js";
import { isShellStateBuiltin } from "./shell-builtins.js";
import { gitSubcommandArgv } from "./shell-git.js";
import { isDashedGit } from "./shell-programs.js";

export interface PolicyCall {
  tool: string;
  input: unknown;
  needs: Need[];
  /** The analysed `exec` command; worked out here from input.command when absent. */
  command?: CommandAnalysis;
}

export type PolicyDecision =
  | { decision: "allow" }
  | { decision: "deny"; rule: string; reason: string }
  /** `rules`: every confirm rule the call matched (a human's yes opens their paths to it). */
  | { decision: "confirm"; rule: string; text: string; reason: string; rules: string[] };

type ConfigRule = { id: string; text: string; grant: Grant } | { id: string; text: string; path: string };

const KINDED = /^\s*(tool|file_read|file_write|exec|network|mcp|spawn_child|path)\s*:/;

/** Parse one `policy.deny` / `policy.confirm` entry; `where` names it in errors ("policy.deny[2]"). */
export function parsePolicyRule(text: string, where: string): ConfigRule {
  const kinded = KINDED.exec(text);
  try {
    if (kinded?.[1] === "path") {
      const glob = text.slice(kinded[0].length).trim();
      parseGrant(`file_read: ${glob}`);
      return { id: where, text, path: glob };
    }
    return { id: where, text, grant: parseGrant(kinded ? text : `exec: ${text}`) };
  } catch (e) {
    throw new AidoError(
      ErrorCode.configInvalid,
      `${where} "${text}" is not a valid policy rule: ${errorMessage(e)}`,
      {
        key: where,
        rule: text,
      },
    );
  }
}

/**
 * One exec Need per simple command (after unfolding), so the gate checks every inner
 * command. Builtins that only change the shell's own state (cd, export, set, read...) need
 * none: what they touch is judged on its own (cd targets as paths, variables by the rules).
 */
export function execNeeds(analysis: CommandAnalysis): Need[] {
  const seen = new Set<string>();
  const needs: Need[] = [];
  for (const c of analysis.commands) {
    const key = JSON.stringify(c.argv);
    if (c.argv.length === 0 || seen.has(key)) continue;
    if (!c.dynamic && isShellStateBuiltin(c.argv[0]!)) continue;
    seen.add(key);
    needs.push({ kind: "exec", argv: [...c.argv] });
  }
  return needs;
}

/** Path rules as globs, for the Landlock domain of an exec and grep's read view (closedPaths). */
export interface PathDenials {
  /** `path:` rules: neither read nor write. */
  deny: readonly string[];
  /** `file_read:` rules. */
  denyRead: readonly string[];
  /** `file_write:` rules. */
  denyWrite: readonly string[];
}

/** The path globs of some rules, by direction. */
function pathGlobs(rules: readonly ConfigRule[]): PathDenials {
  const globs = (kind: "file_read" | "file_write") =>
    rules.flatMap((r) => ("grant" in r && r.grant.kind === kind ? [r.grant.glob] : []));
  return {
    deny: rules.flatMap((r) => ("path" in r ? [r.path] : [])),
    denyRead: globs("file_read"),
    denyWrite: globs("file_write"),
  };
}

export class PolicyEngine {
  private readonly deny: ConfigRule[];
  private readonly confirm: ConfigRule[];
  private readonly pathDenials: PathDenials;

  constructor(config: Pick<Config, "policy">) {
    this.deny = config.policy.deny.map((t, i) => parsePolicyRule(t, `policy.deny[${i}]`));
    this.confirm = config.policy.confirm.map((t, i) => parsePolicyRule(t, `policy.confirm[${i}]`));
    this.pathDenials = pathGlobs(this.deny);
  }

  /**
   * What a call's Landlock domain and grep's read view leave out: the path deny rules, and
   * every path confirm rule (`path:`, `file_read:`, `file_write:`) that a human did not
   * confirm for this very call. `confirmed` holds the ids of the confirm rules the call
   * matched (PolicyDecision.rules) once a human allowed it. The early check only sees the
   * paths a command names; without this, a glob (`cat /workspace/va*`) or a walk (`grep -r
   * x /workspace`) reads below a confirm rule that nobody was asked about.
   */
  closedPaths(confirmed: ReadonlySet<string>): PathDenials {
    const unconfirmed = pathGlobs(this.confirm.filter((r) => !confirmed.has(r.id)));
    return {
      deny: [...this.pathDenials.deny, ...unconfirmed.deny],
      denyRead: [...this.pathDenials.denyRead, ...unconfirmed.denyRead],
      denyWrite: [...this.pathDenials.denyWrite, ...unconfirmed.denyWrite],
    };
  }

  decide(call: PolicyCall): PolicyDecision {
    const input = (call.input ?? {}) as { command?: unknown; cwd?: unknown };
    // exec's cwd as the exec tool takes it: relative to /workspace, which is the default.
    const given = typeof input.cwd === "string" ? input.cwd : undefined;
    const cwd =
      given?.startsWith("/") === true
        ? given
        : call.tool === "exec"
          ? posix.join("/workspace", given ?? ".")
          : undefined;
    let analysis = call.command;
    if (analysis === undefined && call.tool === "exec") {
      if (typeof input.command !== "string") {
        return { decision: "deny", rule: "unparseable", reason: "exec call without a command string" };
      }
      try {
        analysis = analyzeCommand(input.command);
      } catch (e) {
        if (!isAidoError(e, ErrorCode.policyDenied)) throw e;
        const rule = typeof e.details.rule === "string" ? e.details.rule : "unparseable";
        return { decision: "deny", rule, reason: e.message };
      }
    }
    if (analysis) {
      for (const rule of BUILTIN_RULES) {
        const what = rule.checkCommand?.({ analysis, cwd });
        if (what !== undefined) return { decision: "deny", rule: rule.id, reason: `${rule.reason}: ${what}` };
      }
    }
    for (const need of fileNeeds(call.needs, analysis)) {
      // A direction nobody knows (an exec argument) is judged as a read: writes to system
      // paths by known writers are caught by the command rules, the rest by the read-only
      // root file system and the exec's Landlock domain.
      const kind = need.kind === "file_write" ? "file_write" : "file_read";
      // A subtree need is judged by every system path it could reach.
      const paths = need.path.includes("*")
        ? SYSTEM_PATHS.filter((p) => globsOverlap(`${p}/**`, need.path))
        : [need.path];
      const rule = BUILTIN_RULES.find((r) => paths.some((p) => r.checkPath?.(kind, p)));
      if (rule) return { decision: "deny", rule: rule.id, reason: `${rule.reason}: ${describe(need)}` };
    }
    const denied = this.firstMatch(this.deny, call, analysis, cwd);
    if (denied)
      return {
        decision: "deny",
        rule: denied.rule.id,
        reason: `denied by policy rule "${denied.rule.text}": ${denied.what}`,
      };
    const confirm = this.firstMatch(this.confirm, call, analysis, cwd);
    if (confirm) {
      return {
        decision: "confirm",
        rule: confirm.rule.id,
        text: confirm.rule.text,
        reason: `policy rule "${confirm.rule.text}" asks a human to confirm: ${confirm.what}`,
        rules: this.confirm.filter((r) => ruleMatch(r, call, analysis, cwd) !== undefined).map((r) => r.id),
      };
    }
    return { decision: "allow" };
  }

  /**
   * The operator's network rules on one host:port, alone: an egress connection (egress/) is
   * no tool call, so tool, exec and path rules say nothing about it. Deny beats confirm.
   */
  decideNetwork(need: Extract<Need, { kind: "network" }>): PolicyDecision {
    const call: PolicyCall = { tool: "", input: {}, needs: [need] };
    const network = (r: ConfigRule) => "grant" in r && r.grant.kind === "network";
    const denied = this.firstMatch(this.deny.filter(network), call, undefined, undefined);
    if (denied)
      return {
        decision: "deny",
        rule: denied.rule.id,
        reason: `denied by policy rule "${denied.rule.text}": ${denied.what}`,
      };
    const confirm = this.firstMatch(this.confirm.filter(network), call, undefined, undefined);
    if (confirm)
      return {
        decision: "confirm",
        rule: confirm.rule.id,
        text: confirm.rule.text,
        reason: `policy rule "${confirm.rule.text}" asks a human to confirm: ${confirm.what}`,
        rules: [confirm.rule.id],
      };
    return { decision: "allow" };
  }

  private firstMatch(
    rules: ConfigRule[],
    call: PolicyCall,
    analysis: CommandAnalysis | undefined,
    cwd: string | undefined,
  ): { rule: ConfigRule; what: string } | undefined {
    for (const rule of rules) {
      const what = ruleMatch(rule, call, analysis, cwd);
      if (what !== undefined) return { rule, what };
    }
    return undefined;
  }
}

type FileNeed = { kind: "file_read" | "file_write" | "file_access"; path: string; via?: string };

/**
 * The file needs of a call, and the paths the exec tool resolved outside the goal's mounts
 * (which need no grant, but are judged by the rules like any other).
 */
function fileNeeds(needs: readonly Need[], analysis: CommandAnalysis | undefined): FileNeed[] {
  const out: FileNeed[] = needs.filter(
    (n): n is FileNeed => n.kind === "file_read" || n.kind === "file_write" || n.kind === "file_access",
  );
  for (const p of analysis?.paths ?? []) {
    const kind = p.access === "read" ? "file_read" : p.access === "write" ? "file_write" : "file_access";
    out.push({ kind, path: p.path, via: p.via });
  }
  return out;
}

function describe(n: FileNeed): string {
  return `${n.kind} ${n.path}${n.via ? ` (${n.via})` : ""}`;
}

function ruleMatch(
  rule: ConfigRule,
  call: PolicyCall,
  analysis: CommandAnalysis | undefined,
  cwd: string | undefined,
): string | undefined {
  const files = fileNeeds(call.needs, analysis);
  if ("path" in rule) {
    const need = files.find((n) => pathHits(rule.path, n.path));
    if (need) return describe(need);
    return analysis?.paths ? undefined : redirectMatch(rule.path, analysis, cwd, false);
  }
  const g = rule.grant;
  switch (g.kind) {
    case "tool":
      if (g.name === "*" || g.name === call.tool) return `tool ${call.tool}`;
      return call.needs.some((n) => n.kind === "tool" && n.name === g.name) ? `tool ${g.name}` : undefined;
    case "exec": {
      const hit = analysis?.commands.find((c) => execPatternMatch(g.pattern, c));
      return hit ? hit.argv.join(" ") : undefined;
    }
    case "file_read":
    case "file_write": {
      // An argument of unknown direction may be either: rules of both kinds apply to it.
      const need = files.find(
        (n) => (n.kind === g.kind || n.kind === "file_access") && pathHits(g.glob, n.path),
      );
      if (need) return describe(need);
      if (analysis?.paths || g.kind === "file_read") return undefined;
      return redirectMatch(g.glob, analysis, cwd, true);
    }
    case "network": {
      const need = call.needs.find((n) => n.kind === "network" && hostMatch(g.host, n.host));
      return need ? `network ${(need as { host: string }).host}` : undefined;
    }
    case "spawn_child": {
      const need = call.needs.find(
        (n) => n.kind === "spawn_child" && (g.names === "*" || g.names.includes(n.name)),
      );
      return need ? `spawn_child ${(need as { name: string }).name}` : undefined;
    }
    case "mcp": {
      const need = call.needs.find(
        (n): n is Extract<Need, { kind: "mcp" }> =>
          n.kind === "mcp" && n.server === g.server && wildcardMatch(g.tool, n.tool),
      );
      return need ? `tool ${need.tool} of MCP server ${need.server}` : undefined;
    }
  }
}

function redirectMatch(
  glob: string,
  analysis: CommandAnalysis | undefined,
  cwd: string | undefined,
  writesOnly: boolean,
): string | undefined {
  const r = analysis?.redirects.find((x) => {
    if (writesOnly && !x.write) return false;
    const target = x.target.startsWith("/") ? x.target : cwd === undefined ? undefined : `${cwd}/${x.target}`;
    return target !== undefined && matchPath(glob, normalizePath(target));
  });
  return r ? `${r.op} ${r.target}` : undefined;
}

function normalizePath(p: string): string {
  const out: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") out.pop();
    else out.push(seg);
  }
  return `/${out.join("/")}`;
}

/**
 * Does an exec pattern (grant grammar) cover this command? Run-time arguments match
 * anything, and a git command also matches as its subcommand argv (without the global
 * options before it), so `git -C x push` is the `git push` a rule names; so is git's dashed
 * program (`/usr/lib/git-core/git-push`), and `git send-pack`, the push without its porcelain.
 */
export function execPatternMatch(pattern: string, c: SimpleCommand): boolean {
  if (argvMatch(pattern, c.argv, c.argDynamic, c.openArgs)) return true;
  return gitForms(c).some((f) => argvMatch(pattern, f.argv, f.dynamic, c.openArgs));
}

/** A git command as `git SUB ARGS...` (and `git push ARGS...` for send-pack); none for other commands. */
function gitForms(c: SimpleCommand): { argv: string[]; dynamic: boolean[] }[] {
  if (c.dynamic) return [];
  const program = basename(c.argv[0] ?? "");
  let argv: string[] | undefined;
  let dynamic: boolean[] = [];
  if (isDashedGit(program)) {
    argv = ["git", program.slice("git-".length), ...c.argv.slice(1)];
    dynamic = [false, false, ...c.argDynamic.slice(1)];
  } else if (program === "git") {
    argv = gitSubcommandArgv(c.argv);
    if (argv) dynamic = [false, ...c.argDynamic.slice(c.argv.length - argv.length + 1)];
  }
  if (!argv) return [];
  const forms = [{ argv, dynamic }];
  if (argv[1] === "send-pack") forms.push({ argv: ["git", "push", ...argv.slice(2)], dynamic });
  return forms;
}

function argvMatch(
  pattern: string,
  argv: readonly string[],
  dynamic: readonly boolean[],
  open: boolean,
): boolean {
  const c = { argv, argDynamic: dynamic, openArgs: open };
  const tokens = pattern.split(" ");
  const head = tokens[0]!;
  const cmd = c.argv[0] ?? "";
  if (!c.argDynamic[0] && !wildcardMatch(head, head.includes("/") ? cmd : basename(cmd))) return false;
  for (let i = 1; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t === "*" && i === tokens.length - 1) return true;
    if (i >= c.argv.length) return c.openArgs;
    if (!c.argDynamic[i] && !wildcardMatch(t, c.argv[i]!)) return false;
  }
  return tokens.length === c.argv.length;
}

function hostMatch(rule: string, host: string): boolean {
  const h = host.toLowerCase();
  if (rule === "*" || rule === h) return true;
  return rule.startsWith("*.") && (h === rule.slice(2) || h.endsWith(rule.slice(1)));
}

/** A rule glob hits a need path, or, for a need naming a subtree, overlaps it anywhere. */
function pathHits(ruleGlob: string, needPath: string): boolean {
  return needPath.includes("*") ? globsOverlap(ruleGlob, needPath) : matchPath(ruleGlob, needPath);
}
