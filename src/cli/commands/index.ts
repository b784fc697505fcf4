// cli/commands/index.ts — the list of commands `aido` knows, in help order: each one's
// name, summary, usage and example, and where its implementation lives. The table is
// all `aido` loads before it dispatches (help, the overview, finding the command); the
// command's module, with whatever it needs (the kernel, SDKs, sqlite, Docker), is
// imported only when that command runs. Command modules take their texts from here
// (commandSpec), so the overview and a command's own help cannot drift apart.

import type { Command } from "../command.js";

export type CommandSpec = Pick<Command, "name" | "summary" | "usage" | "example">;

export interface CommandEntry extends CommandSpec {
  /** The implementation, imported on first use. */
  load(): Promise<Command>;
}

export const commands: readonly CommandEntry[] = [
  {
    name: "daemon start",
    summary: "start agentd (detached; --foreground keeps it attached)",
    usage: "aido daemon start [--foreground]",
    example: "aido daemon start && aido daemon status",
    load: async () => (await import("./daemon.js")).daemonStart,
  },
  {
    name: "daemon stop",
    summary: "stop agentd cleanly (running goals end failed, queued goals stay queued)",
    usage: "aido daemon stop [--timeout SECONDS]",
    example: "aido daemon stop --timeout 60",
    load: async () => (await import("./daemon.js")).daemonStop,
  },
  {
    name: "daemon status",
    summary: "is agentd running? (pid, socket; exit 1 when not)",
    usage: "aido daemon status [--json]",
    example: "aido daemon status || aido daemon start",
    load: async () => (await import("./daemon.js")).daemonStatus,
  },
  {
    name: "submit",
    summary: "give the daemon a goal (--wait: exit with its outcome; --follow: watch it)",
    usage:
      'aido submit "GOAL" [--manifest FILE] [--input FILE]... [--wait | --follow] [--id-file FILE] [--json]',
    example: 'aido submit "summarise /inputs/notes.md into /output/summary.md" --input notes.md --wait',
    load: async () => (await import("./goals.js")).submit,
  },
  {
    name: "goals",
    summary: "list goals, newest first",
    usage: "aido goals [--state queued|running|succeeded|failed|cancelled] [--limit N] [--json]",
    example: "aido goals --state running",
    load: async () => (await import("./goals.js")).goals,
  },
  {
    name: "status",
    summary: "show one goal: state, tokens, result or error, output folder",
    usage: "aido status GOAL_ID [--json]",
    example: "aido status g-20250101-ab12cd --json",
    load: async () => (await import("./goals.js")).status,
  },
  {
    name: "cancel",
    summary: "cancel a queued or running goal (its agents are stopped); prints how it ended",
    usage: "aido cancel GOAL_ID [--json]",
    example: "aido cancel g-20250101-ab12cd",
    load: async () => (await import("./goals.js")).cancel,
  },
  {
    name: "output",
    summary: "copy a goal's deliverables into a folder (files and folders only, no setuid bits, no links)",
    usage:
      "aido output GOAL_ID --to DIR [--owner UID:GID] [--json] | aido output --from DIR --to DIR [--json]",
    example: "aido output g_m3x1a2b3c4d5e6f7 --to ./output",
    load: async () => (await import("./output.js")).output,
  },
  {
    name: "cluster status",
    summary: "the cluster's nodes: up or down, load, running goals, last heartbeat (cluster mode)",
    usage: "aido cluster status [--json]",
    example: "aido cluster status --json",
    load: async () => (await import("./cluster.js")).clusterStatus,
  },
  {
    name: "watch",
    summary: "live view of a goal (or all): agents, tokens, inference queue, tools, approvals",
    usage: "aido watch [GOAL_ID] [--json]",
    example: "aido watch g-20250101-ab12cd   # exits 0 if the goal succeeds, 1 if not",
    load: async () => (await import("./watch.js")).watch,
  },
  {
    name: "demo",
    summary: "run the bundled multi-agent demo with no key: a recorded run replayed through the real runtime",
    usage: "aido demo [--yes] [--home DIR] [--bundle DIR]",
    example: "aido demo --yes   # answers the demo's approval with Allow Once; deliverables in ./output",
    load: async () => (await import("./demo.js")).demo,
  },
  {
    name: "agents",
    summary: "list the daemon's agents as a tree (live ones; --all for stopped too)",
    usage: "aido agents [--goal GOAL_ID] [--all] [--json]",
    example: "aido agents --goal g-20250101-ab12cd --all",
    load: async () => (await import("./agents.js")).agents,
  },
  {
    name: "approvals",
    summary: "list tool calls waiting for a human and what each answer covers; on a terminal, answer them",
    usage: "aido approvals [--json]   (scripts: aido approvals respond ID DECISION)",
    example: "aido approvals",
    load: async () => (await import("./approvals.js")).approvals,
  },
  {
    name: "approvals respond",
    summary: "answer one approval request",
    usage: "aido approvals respond ID allow_once|allow_session|allow_always|deny [--json]",
    example: "aido approvals respond apr_7f3c2a deny",
    load: async () => (await import("./approvals.js")).approvalsRespond,
  },
  {
    name: "approvals grants",
    summary: "list the Allow Always grants in force (--all: also expired, revoked and invalid ones)",
    usage: "aido approvals grants [--all] [--json]",
    example: "aido approvals grants",
    load: async () => (await import("./approvals.js")).approvalsGrants,
  },
  {
    name: "approvals revoke",
    summary: "revoke an Allow Always grant: the calls it covered ask a human again",
    usage: "aido approvals revoke GRANT_ID [--json]",
    example: "aido approvals revoke grt_5d1e…",
    load: async () => (await import("./approvals.js")).approvalsRevoke,
  },
  {
    name: "intent set",
    summary:
      "set the standing objective of this folder (replaces the active one; goals submitted here carry it)",
    usage: 'aido intent set "OBJECTIVE" [--budget TOKENS] [--check COMMAND] [--workspace DIR] [--json]',
    example: 'aido intent set "all tests green on the new parser" --budget 2000000 --check "npm test"',
    load: async () => (await import("./intent.js")).intentSet,
  },
  {
    name: "intent step",
    summary: "record a step towards this folder's objective, with a note",
    usage: 'aido intent step "NOTE" [--workspace DIR] [--json]',
    example: 'aido intent step "lexer rewritten, 40 of 52 tests pass"',
    load: async () => (await import("./intent.js")).intentStep,
  },
  {
    name: "intent status",
    summary:
      "show this folder's objective: steps, tokens spent of its budget, the last check (--history: earlier ones)",
    usage: "aido intent status [--workspace DIR] [--history] [--json]",
    example: "aido intent status --json",
    load: async () => (await import("./intent.js")).intentStatus,
  },
  {
    name: "intent clear",
    summary: "clear this folder's objective (kept as history)",
    usage: "aido intent clear [--workspace DIR] [--json]",
    example: "aido intent clear",
    load: async () => (await import("./intent.js")).intentClear,
  },
  {
    name: "plan simulate",
    summary:
      "what the gate would decide about each step of a plan file, running nothing (exit 1: a step denied)",
    usage: "aido plan simulate FILE --agent ID [--shadow] [--json]",
    example: "aido plan simulate refactor.yaml --agent a_3f9c…",
    load: async () => (await import("./plan.js")).planSimulate,
  },
  {
    name: "plan create",
    summary: "simulate a plan file and record it in the ledger with its hash (exit 1: a step denied)",
    usage: "aido plan create FILE --agent ID [--json]",
    example: "aido plan create refactor.yaml --agent a_3f9c…",
    load: async () => (await import("./plan.js")).planCreate,
  },
  {
    name: "plan execute",
    summary: "run a recorded plan's steps through the gate, once (exit 1: it failed or was refused)",
    usage: "aido plan execute PLAN_ID [--agent ID] [--on-failure stop|restore] [--json]",
    example: "aido plan execute plan_5d1e… --on-failure restore",
    load: async () => (await import("./plan.js")).planExecute,
  },
  {
    name: "plan list",
    summary: "the plans in the ledger with their status",
    usage: "aido plan list [--agent ID] [--json]",
    example: "aido plan list",
    load: async () => (await import("./plan.js")).planList,
  },
  {
    name: "manifest validate",
    summary: "check agent manifests against the schema (strict)",
    usage: "aido manifest validate FILE... [--json]",
    example: "aido manifest validate manifests/*.yaml",
    load: async () => (await import("./manifest.js")).manifestValidate,
  },
  {
    name: "audit verify",
    summary:
      "check the audit hash chain, its signed checkpoints and its signed head (and an anchor); --cluster: every node's, over the daemon",
    usage: "aido audit verify [--anchor SEQ:HASH | --cluster] [--json]",
    example: "aido audit verify --anchor \"$(cat ~/audit-anchor.txt)\" || echo 'audit log was tampered with'",
    load: async () => (await import("./audit.js")).auditVerify,
  },
  {
    name: "audit anchor",
    summary: "print the signed head of a verified audit log, to keep somewhere the host cannot rewrite",
    usage: "aido audit anchor [--json]",
    example: "aido audit anchor >> /mnt/elsewhere/aido-anchors.txt",
    load: async () => (await import("./audit.js")).auditAnchor,
  },
  {
    name: "audit tail",
    summary: "show the newest audit entries",
    usage: "aido audit tail [-n N] [--json]",
    example: "aido audit tail -n 50",
    load: async () => (await import("./audit.js")).auditTail,
  },
  {
    name: "audit query",
    summary: "find audit entries by goal, agent or kind",
    usage: "aido audit query [--goal ID] [--agent ID] [--kind KIND] [--limit N] [--json]",
    example: "aido audit query --kind tool.denied --limit 20",
    load: async () => (await import("./audit.js")).auditQuery,
  },
  {
    name: "image build",
    summary: "build the sandbox image goal containers run (skipped when up to date)",
    usage: "aido image build [--force] [--offline] [--mirror URL] [--json]",
    example: "aido image build --offline   # no registry: debootstrap from the Debian mirror",
    load: async () => (await import("./image.js")).imageBuild,
  },
  {
    name: "memory list",
    summary: "list what agents remember, newest first",
    usage: "aido memory list [--identity ID] [--goal GOAL_ID] [--superseded] [--limit N] [--json]",
    example: "aido memory list --identity agent:researcher --limit 20",
    load: async () => (await import("./memory.js")).memoryList,
  },
  {
    name: "memory search",
    summary: "find memories nearest in meaning to a query (every identity)",
    usage: "aido memory search QUERY [--limit N] [--json]",
    example: 'aido memory search "vendor contract renewal" --limit 5',
    load: async () => (await import("./memory.js")).memorySearch,
  },
  {
    name: "memory delete",
    summary: "delete one memory by id",
    usage: "aido memory delete ID [--json]",
    example: "aido memory delete 42",
    load: async () => (await import("./memory.js")).memoryDelete,
  },
  {
    name: "memory reset",
    summary: "delete every memory, or every memory of one identity",
    usage: "aido memory reset --yes [--identity ID] [--json]",
    example: "aido memory reset --identity agent:researcher --yes",
    load: async () => (await import("./memory.js")).memoryReset,
  },
  {
    name: "sandbox up",
    summary: "create a disposable, locked-down sandbox from sandbox.yaml and print its id",
    usage: "aido sandbox up [-f sandbox.yaml] [--network] [--dangerous-allow-mutations] [--yes] [--json]",
    example: "ID=$(aido sandbox up -f sandbox.yaml) && aido run migration.py && aido sandbox destroy $ID",
    load: async () => (await import("./sandbox.js")).sandboxUpCommand,
  },
  {
    name: "sandbox list",
    summary: "list this project's sandboxes (running and destroyed, with their evidence folders)",
    usage: "aido sandbox list [--json]",
    example: "aido sandbox list --json | jq '.[] | select(.state==\"running\") | .id'",
    load: async () => (await import("./sandbox.js")).sandboxList,
  },
  {
    name: "sandbox destroy",
    summary: "remove a sandbox's container and work folders (default: the latest running one)",
    usage: "aido sandbox destroy [ID] [--purge] [--json]",
    example: "aido sandbox destroy            # the latest; --purge also deletes its evidence",
    load: async () => (await import("./sandbox.js")).sandboxDestroy,
  },
  {
    name: "run",
    summary: "run a script file or a command in the active sandbox, output live, with evidence",
    usage: "aido run [--sandbox ID] [--json] TASK [ARGS...]",
    example: "aido run migration.py --dry-run   # copies migration.py in, runs python3 on it",
    load: async () => (await import("./sandbox-run.js")).runCommand,
  },
  {
    name: "logs",
    summary: "show a run's output (default: the latest run of the active sandbox)",
    usage: "aido logs [--sandbox ID] [--run RUN_ID] [--follow | --network] [--json]",
    example: "aido logs --follow            # while `aido run` is still going elsewhere",
    load: async () => (await import("./sandbox-run.js")).logsCommand,
  },
  {
    name: "mcp serve",
    summary: "serve Aido to MCP clients (Claude Code, Cursor, Claude Desktop): stdio, or --http on loopback",
    usage:
      "aido mcp serve [--workspace DIR] [--manifest FILE] [--allow-approve] [--http [--port N] [--host 127.0.0.1] [--allow-remote] [--idle-timeout S]]",
    example: "aido mcp serve --workspace ~/src/my-project",
    load: async () => (await import("./mcp.js")).mcpServe,
  },
  {
    name: "mcp config",
    summary: "print the JSON that plugs `aido mcp serve` into claude-code, claude-desktop or cursor",
    usage: "aido mcp config claude-code|claude-desktop|cursor [--workspace DIR]",
    example: "aido mcp config claude-code --workspace . > .mcp.json",
    load: async () => (await import("./mcp.js")).mcpConfig,
  },
  {
    name: "mcp list",
    summary:
      "list the external MCP servers, their tools, pins and state (approved, changed, new, unreachable)",
    usage: "aido mcp list [SERVER] [--json]",
    example: "aido mcp list",
    load: async () => (await import("./mcp-servers.js")).mcpList,
  },
  {
    name: "mcp approve",
    summary: "pin the tool definitions an external MCP server offers now (shows them, asks unless --yes)",
    usage: "aido mcp approve SERVER [--yes] [--json]",
    example: "aido mcp approve github",
    load: async () => (await import("./mcp-servers.js")).mcpApprove,
  },
  {
    name: "ui",
    summary: "open the web dashboard: prints a one-time sign-in link (--rotate: a new token)",
    usage: "aido ui [--rotate] [--open] [--json]",
    example: "aido ui   # then open the printed http://127.0.0.1:PORT/?code=… link",
    load: async () => (await import("./ui.js")).ui,
  },
];

/** The texts of the command named `name` (a command module's own entry). */
export function commandSpec(name: string): CommandSpec {
  const entry = commands.find((c) => c.name === name);
  if (!entry) throw new Error(`cli/commands/index.ts has no command "${name}"`);
  return { name: entry.name, summary: entry.summary, usage: entry.usage, example: entry.example };
}
