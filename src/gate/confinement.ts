// gate/confinement.ts — what an agent's commands may touch, for the Landlock domain every
// exec runs in (and grep's read view): the agent's verified file_read / file_write globs,
// /skills/<name>/** for each skill it may read, minus the operator's `path:`,
// `file_read:` and `file_write:` deny rules. Computed by the gate from the token it has
// just verified, never from anything the model wrote.
// A `file_read:` deny rule is also a write deny for the domain: with write rights over a
// folder a command can rename what it holds (same-folder renames need no REFER right) or
// hard-link it elsewhere, and read it under a name no rule denies. Without a write rule
// on a denied path or any of its ancestors, nothing there can be moved, renamed or linked.

import type { Confinement } from "../sandbox/types.js";
import type { Grant } from "../security/grants.js";
import type { PathDenials } from "../security/policy.js";
import type { SkillAccess } from "../skills/access.js";

/** The private temp folder of an agent: one path segment, whatever its id holds. */
export function privateTmpOf(agentId: string): string {
  return `/tmp/agent-${agentId.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 100)}`;
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
    // Read-denied paths are not writable by commands either (see the header): this keeps
    // `mv secret/k.txt k.txt` and renaming the denied folder from dodging the rule.
    denyWrite: [...denials.denyWrite, ...denials.denyRead],
    tmp: privateTmpOf(agentId),
  };
}
