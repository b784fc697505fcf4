// gate/types.ts — what a tool is, what it needs, and what the gate hands it. A tool
// declares the capabilities a call needs (`needs`), the gate checks them and only then
// calls `run` with the sandbox handle. Tools never see tokens.

import type { z } from "zod";
import type { AidoError } from "../errors.js";
import type { MemoryScope } from "../memory/scope.js";
import type { Confinement, SandboxHandle } from "../sandbox/types.js";
import type { ApprovalScope } from "../security/approval-scope.js";
import type { CommandAnalysis } from "../security/shell.js";
import type { SkillAccess } from "../skills/access.js";
import type { TraceSpan } from "../telemetry/tracer.js";

/** A need naming one path (file tools, and paths a running tool asks about). */
export type PathNeed = { kind: "file_read" | "file_write"; path: string };

/** One capability a concrete call needs, checked against the agent's grants. */
export type Need =
  | { kind: "tool"; name: string }
  /** `via` says where the path came from, for the refusal (`argument 1 of cat: "../k.txt"`). */
  | { kind: "file_read"; path: string; via?: string }
  | { kind: "file_write"; path: string; via?: string }
  /**
   * A path an exec argument names where the command's direction is unknown (`cat X`,
   * `python3 gen.py X`): a file_read or a file_write grant covering it will do.
   */
  | { kind: "file_access"; path: string; via?: string }
  /** One simple command after the policy engine unfolded the shell string. */
  | { kind: "exec"; argv: string[] }
  /** A connection to host:port (web_fetch: the URL's port, 443 or 80 when it names none). */
  | { kind: "network"; host: string; port: number }
  /** A call of an external MCP server's tool (`mcp__<server>__<tool>`). */
  | { kind: "mcp"; server: string; tool: string }
  | { kind: "spawn_child"; name: string };

export interface ToolResult {
  /** What the model sees (already bounded by the tool). */
  output: string;
  /** Structured result for socket clients and tests. */
  data?: unknown;
  isError?: boolean;
}

/** Context for working out a call's needs: path canonicalisation happens in the container. */
export interface NeedsContext {
  sandbox: SandboxHandle;
  /**
   * For a tool that must read a file to work out its needs (exec: the scripts a command
   * runs): undefined when the agent may read the canonical `path` (its grants, the policy),
   * else the refusal to throw. Asked before reading, so nothing the agent may not read is
   * read on its behalf, not even to judge it.
   */
  readRefusal(path: string): AidoError | undefined;
  /**
   * The caller's private temp folder (gate/confinement.ts privateTmpOf), which its confined
   * execs get as HOME and TMPDIR when the sandbox says so (SandboxHandle.confinesWithPrivateTmp).
   */
  privateTmp?: string;
  /**
   * The call's cancel: a tool that waits on the container while it works out its needs (a
   * frozen goal's realpath) ends the wait with it; the gate then refuses the call as cancelled.
   */
  signal?: AbortSignal;
}

export interface ToolContext {
  sandbox: SandboxHandle;
  goalId: string;
  agentId: string;
  signal?: AbortSignal;
  /** Byte cap for what the model sees. */
  outputMaxBytes: number;
  /** Per-agent services some tools need; absent means the agent has none of them. */
  services?: ToolServices;
  /**
   * The needs the gate checked for this call. Tools that resolve paths resolve them again in
   * run() and refuse unless the result is among these (a symlink swapped in between the
   * check and the action, e.g. while an approval waited, is refused). Absent: such tools refuse.
   */
  judged?: readonly Need[];
  /**
   * What the calling agent's commands may touch (its verified file grants, its skills, the
   * operator's deny rules): exec runs inside a Landlock domain made from it, grep opens only
   * files it allows. The gate fills it (gate/confinement.ts). Absent: exec and grep refuse.
   */
  confinement?: Confinement;
  /**
   * On a goal with a network (egress/plumbing.ts): the proxy variables the caller's execs
   * get, and the values (its proxy password) never shown to the model. Absent: none.
   */
  egress?: {
    env: Record<string, string>;
    secrets: string[];
    /** Every other credential of the goal to blank in `text`, in every spelling (plumbing.ts EgressAccess). */
    secretsIn?(text: string): string[];
    /**
     * The call was cancelled (its signal's reason): a question its commands' connections put
     * to a human ends saying so, before the command is stopped (egress/callers.ts).
     */
    cancelled?(reason: string): void;
  };
  /**
   * Network check for hosts a tool reaches beyond its declared needs (web_fetch's redirect
   * hops; an address the tool's address rules refuse). True when the agent's grants and the
   * policy allow `host`; with { literal: true } only a grant naming exactly that host counts
   * ("*" and "*.domain" do not). The gate fills it and audits a denial. Absent: refuse.
   */
  allowNetwork?(host: string, port: number, opts?: { literal?: boolean }): boolean;
  /**
   * For paths a tool touches beyond its declared needs, known only as it runs (a snapshot
   * restore): undefined when the agent's grants and the policy allow `need`, else the
   * reason. The gate audits the refusals when the call ends, unless { record: false } (a
   * question whose answer changes only what the tool reports). Absent: refuse.
   */
  allowPath?(need: PathNeed, opts?: { record?: boolean }): string | undefined;
  /** The call's execute_tool span, when tracing is on: spans the tool starts nest under it (a spawned child's run). */
  trace?: TraceSpan;
}

/**
 * Bound per agent by whoever builds the ToolContext (agent loop / kernel): memory_* tools
 * read `memory` (store + identity + episodic switch), skill_read reads `skills` (registry +
 * the manifest's allow-list). Tools refuse to run when the service they need is absent.
 */
export interface ToolServices {
  memory?: MemoryScope;
  skills?: SkillAccess;
}

export interface ToolDef<I = unknown> {
  name: string;
  description: string;
  input: z.ZodType<I>;
  /**
   * The input's JSON Schema as the model is shown it, when the tool has one of its own (an
   * external MCP tool: its pinned inputSchema); absent: made from `input`.
   */
  inputJsonSchema?: Record<string, unknown>;
  /**
   * The need that stands for calling this tool at all, checked against the grants before
   * anything else and deciding whether the tool is offered: default `{kind: "tool", name}`;
   * an external MCP tool's is `{kind: "mcp", server, tool}`.
   */
  grantNeed?: Need;
  /**
   * Why every call waits for a human unless a standing decision covers it, beside the
   * manifest's approval_required and the policy's confirm rules (an external MCP tool the
   * operator did not mark read-only). Absent: no such reason.
   */
  approvalReason?: string;
  /**
   * true when a call can change files the goal's container sees (/workspace, /output): the
   * gate snapshots both before the first such call of a turn. Tools that change only the
   * runtime's own state (memory, spawning) say false: a snapshot would not cover it.
   */
  mutates: boolean;
  /**
   * The needs a call states without the container being looked at (exec: the tool and every
   * simple command the string unfolds to). The gate checks them against the grants, with the
   * policy and the budget, before needs() may start the goal's container, so a call refused
   * for what it says touches nothing. Absent: the tool need alone.
   */
  staticNeeds?(input: I): Need[];
  /**
   * Snapshots that the snapshot taken before this call must not prune to make room
   * (snapshot_restore: the one it is about to restore). Absent: none.
   */
  keepsSnapshots?(input: I): string[];
  needs(input: I, ctx: NeedsContext): Promise<Need[]>;
  /**
   * The analysed shell command the policy judges for this call, when the tool knows more
   * than its input's `command` says (exec: the command merged with the script files it
   * runs). Called after needs(); absent or undefined: the policy analyses input.command.
   */
  policyCommand?(input: I): CommandAnalysis | undefined;
  /**
   * What a human's Allow Session / Allow Always on this call covers (security/approval-scope.ts),
   * when the judged needs do not say it all (exec: the command that runs and the files its
   * words lead to, resolved in the container). Called after needs(), only for calls that
   * reach the approval stage, and again after a human's answer (gate/invoke.ts); absent:
   * approvalScopeOf(tool, input, needs).
   */
  approvalScope?(input: I, needs: readonly Need[], ctx: NeedsContext): ApprovalScope | Promise<ApprovalScope>;
  run(input: I, ctx: ToolContext): Promise<ToolResult>;
}

/** What a call's beforeRun hook is told (ToolCall.beforeRun). */
export interface BeforeRun {
  /** The gate's snapshot before this mutation; absent when none was taken. */
  snapshotId: string | undefined;
  /** Snapshots the call's input names (snapshot_restore's id). */
  keep: readonly string[];
  /**
   * The paths the gate judged the call to write, canonical as the container resolved them
   * (a file tool's own path: confirmJudged holds the tool to it).
   */
  writes: readonly string[];
}
