// gate/confinement.ts — what an agent's commands may touch, for the Landlock domain every
// exec runs in (and grep's read view): the agent's verified file_read / file_write globs,
// /skills/<name>/** for each skill it may read, minus the operator's `path:`,
// `file_read:` and `file_write:` deny rules and the confirm rules of those kinds that no
// human confirmed for this call (PolicyEngine.closedPaths), and whether it may run programs
// from the goal's folders at all (`execute`: only when an exec grant names one there).
// Computed by the gate from the token it has just verified, never from anything the model
// wrote.
// Each list goes to the domain as it is: a `file_read:` deny rule is not also a write deny.
// A command that may write where reads are denied still cannot rename, move or link a
// denied file to a name it may read, because the expansion never gives a write hierarchy
// rule to a folder whose reads are mixed (sandbox/executor/confinement.ts) and Landlock
// refuses a move that gains read rights; so the domain writes exactly where file_write may.

import { posix } from "node:path";
import { isWithin } from "../fs/within.js";
import type { Confinement, ReadView } from "../sandbox/types.js";
import type { Grant } from "../security/grants.js";
import type { PathDenials } from "../security/policy.js";
import type { SkillAccess } from "../skills/access.js";
import { MOUNT_ROOTS } from "../tools/exec-paths.js";

/** The private temp folder of an agent: one path segment, whatever its id holds. */
export function privateTmpOf(agentId: string): string {
  return `/tmp/agent-${agentId.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 100)}`;
}

/**
 * Whether an exec grant's program lets the agent run a program by a path in the goal's
 * folders. A grant matches argv[0] as written (security/narrowing.ts): a bare name
 * (`python3`) only a name, which dash looks up in PATH (the system's folders; PATH cannot be
 * set); an absolute path outside the folders only itself. Any other — `*` or any wildcard
 * (`*` spans `/` and `..`: `py*` matches `py/../a.out`), a relative path (`./build.sh`),
 * an absolute path in the folders (`/workspace/bin/tool`) — names programs there.
 */
function namesProgramInFolders(program: string): boolean {
  if (program.includes("*")) return true;
  if (!program.includes("/")) return false;
  if (!program.startsWith("/")) return true;
  const p = posix.normalize(program);
  return MOUNT_ROOTS.some((root) => isWithin(root, p));
}

/**
 * The agent may run programs from the goal's folders: one of its exec grants names a program
 * there (namesProgramInFolders). Every other agent's Landlock domain gives no execute right
 * there, so what it writes, copies, compiles or is handed (a copy of setsid, a.out, a git
 * hook) does not run, whatever runs it.
 */
function mayExecuteInFolders(grants: readonly Grant[]): boolean {
  return grants.some((g) => g.kind === "exec" && namesProgramInFolders(g.pattern.split(" ")[0]!));
}

export function confinementFor(
  grants: readonly Grant[],
  denials: PathDenials,
  agentId: string,
  skills: SkillAccess | undefined,
): Confinement {
  const read: string[] = [];
  const write: string[] = [];
  for (const g of grants) {
    if (g.kind === "file_read") read.push(g.glob);
    else if (g.kind === "file_write") write.push(g.glob);
  }
  if (skills) {
    const names = skills.allowed ?? skills.registry.skills.map((s) => s.name);
    for (const name of names) read.push(`/skills/${name}/**`);
  }
  return {
    read,
    write,
    deny: [...denials.deny],
    denyRead: [...denials.denyRead],
    denyWrite: [...denials.denyWrite],
    tmp: privateTmpOf(agentId),
    execute: mayExecuteInFolders(grants),
  };
}

/** What a confinement lets its holder read: its read globs, less every path it shuts to reads. */
export function readViewOf(c: Confinement): ReadView {
  return { read: c.read, deny: [...c.deny, ...c.denyRead] };
}
