// skills/tools.ts — skill_read as a gate ToolDef. Reads happen on the host through the
// registry (confined to the skill's folder) and only for skills the agent's manifest
// allows; the same skills are mounted read-only at /skills/<name> for exec to use.

import { z } from "zod";
import { AidoError, ErrorCode } from "../errors.js";
import type { Need, ToolContext, ToolDef, ToolResult } from "../gate/types.js";
import { isSkillAllowed, type SkillAccess } from "./access.js";
import { SKILL_NAME } from "./frontmatter.js";
import { SKILL_READ_MAX_BYTES, SKILLS_CONTAINER_ROOT } from "./registry.js";

export const SkillReadInput = z.strictObject({
  name: z.string().regex(SKILL_NAME, "skill name: 1-64 characters of [a-z0-9-]"),
  file: z.string().min(1).max(512).optional(),
});
export type SkillReadInput = z.infer<typeof SkillReadInput>;

function requireSkills(ctx: ToolContext): SkillAccess {
  const skills = ctx.services?.skills;
  if (!skills) {
    throw new AidoError(ErrorCode.capabilityDenied, "skills are not available to this agent", {
      agent: ctx.agentId,
    });
  }
  return skills;
}

export function createSkillTools(): ToolDef[] {
  const read: ToolDef<SkillReadInput> = {
    name: "skill_read",
    description:
      "Load a skill's instructions (SKILL.md) by name, or a file inside the skill's folder with file " +
      `(e.g. "scripts/x.py"). Skill folders are also mounted read-only at ${SKILLS_CONTAINER_ROOT}/<name>.`,
    input: SkillReadInput,
    mutates: false,
    needs: async (): Promise<Need[]> => [{ kind: "tool", name: "skill_read" }],
    async run(input, ctx): Promise<ToolResult> {
      const access = requireSkills(ctx);
      // Not allowed and not present look the same: the allow-list also hides what exists.
      if (!isSkillAllowed(access, input.name) || !access.registry.get(input.name)) {
        throw new AidoError(ErrorCode.notFound, `skill "${input.name}" not found`, { skill: input.name });
      }
      const max = Math.min(SKILL_READ_MAX_BYTES, ctx.outputMaxBytes);
      const f = access.registry.read(input.name, input.file, Math.max(256, max - 128));
      const note = f.truncated
        ? `\n(cut at ${max} bytes; read the rest from ${SKILLS_CONTAINER_ROOT}/${f.name}/${f.file})`
        : "";
      return { output: `${f.content}${note}`, data: { name: f.name, file: f.file, truncated: f.truncated } };
    },
  };
  return [read] as ToolDef[];
}
