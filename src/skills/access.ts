// skills/access.ts — what skill_read gets bound to per agent: the registry of discovered
// skills and the manifest's `skills:` allow-list. The agent loop puts one in
// ToolContext.services.skills; without it, skill_read refuses.

import type { SkillRegistry } from "./registry.js";

export interface SkillAccess {
  registry: SkillRegistry;
  /** manifest `skills:`; absent means every discovered skill. */
  allowed?: readonly string[];
}

export function isSkillAllowed(access: SkillAccess, name: string): boolean {
  return access.allowed === undefined || access.allowed.includes(name);
}
