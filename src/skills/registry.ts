// skills/registry.ts — the discovered skills of one runtime: the catalog that goes into
// system prompts, reading a skill (its SKILL.md body or a file in its folder), and the
// mounts that put each skill read-only at /skills/<name> in a goal's container.

import type { Config } from "../config.js";
import { AidoError, ErrorCode } from "../errors.js";
import { readConfined } from "./confine.js";
import { type Discovery, discoverSkills, type Skill, type SkillProblem } from "./discover.js";
import { parseSkillMarkdown } from "./frontmatter.js";

export const CATALOG_MAX_BYTES = 8 * 1024;
export const SKILL_READ_MAX_BYTES = 64 * 1024;
export const SKILLS_CONTAINER_ROOT = "/skills";

export interface SkillMount {
  hostPath: string;
  containerPath: string;
}

export interface SkillFile {
  name: string;
  /** "SKILL.md" (body without front matter) or the relative path read. */
  file: string;
  content: string;
  truncated: boolean;
}

export class SkillRegistry {
  readonly skills: readonly Skill[];
  readonly problems: readonly SkillProblem[];
  private readonly byName: Map<string, Skill>;

  constructor(discovery: Discovery) {
    this.skills = discovery.skills;
    this.problems = discovery.problems;
    this.byName = new Map(discovery.skills.map((s) => [s.name, s]));
  }

  static fromDirs(dirs: readonly string[]): SkillRegistry {
    return new SkillRegistry(discoverSkills(dirs));
  }

  static fromConfig(config: Pick<Config, "skillsDirs">): SkillRegistry {
    return SkillRegistry.fromDirs(config.skillsDirs);
  }

  get(name: string): Skill | undefined {
    return this.byName.get(name);
  }

  /**
   * Name and description of each (allowed) skill, sorted by name, for the system prompt.
   * At most `maxBytes`; when skills do not fit, the last line says how many were left out.
   * "" when there is no skill to offer.
   */
  catalog(allowed?: readonly string[], maxBytes = CATALOG_MAX_BYTES): string {
    const visible = this.skills.filter((s) => allowed === undefined || allowed.includes(s.name));
    if (visible.length === 0) return "";
    const head = "Skills (instructions you can load with skill_read {name} when a task fits one):";
    const lines = [head];
    let used = Buffer.byteLength(head, "utf8");
    const reserve = 80; // room for the "left out" line
    for (const [i, s] of visible.entries()) {
      const line = `- ${s.name}: ${s.description}`;
      const bytes = Buffer.byteLength(line, "utf8") + 1;
      if (used + bytes > maxBytes - reserve) {
        lines.push(`(${visible.length - i} more skills left out to keep this list under ${maxBytes} bytes)`);
        break;
      }
      lines.push(line);
      used += bytes;
    }
    return lines.join("\n");
  }

  /** SKILL.md's body (no front matter) or `file` inside the skill's folder, confined to it. */
  read(name: string, file?: string, maxBytes = SKILL_READ_MAX_BYTES): SkillFile {
    const skill = this.byName.get(name);
    if (!skill) throw new AidoError(ErrorCode.notFound, `skill "${name}" not found`, { skill: name });
    if (file === undefined || file === "SKILL.md") {
      const raw = readConfined(name, skill.dir, "SKILL.md", maxBytes + 16 * 1024);
      const parsed = parseSkillMarkdown(raw.content);
      if (!parsed.ok) {
        throw new AidoError(
          ErrorCode.toolFailed,
          `skill "${name}": SKILL.md changed and no longer parses: ${parsed.reason}`,
          {
            skill: name,
          },
        );
      }
      const body = Buffer.from(parsed.body, "utf8");
      const truncated = raw.truncated || body.length > maxBytes;
      return { name, file: "SKILL.md", content: body.subarray(0, maxBytes).toString("utf8"), truncated };
    }
    const r = readConfined(name, skill.dir, file, maxBytes);
    return { name, file, content: r.content, truncated: r.truncated };
  }

  /** Each skill mounted read-only at /skills/<name> in the goal container. */
  skillMounts(): SkillMount[] {
    return this.skills.map((s) => ({ hostPath: s.dir, containerPath: `${SKILLS_CONTAINER_ROOT}/${s.name}` }));
  }
}

/**
 * The mounts for every skill discovered from the skills dirs (for sandbox/): the same
 * discovery, validation and shadowing rule as skill_read, so /skills/<name> in the
 * container is always the skill the catalog describes.
 */
export function skillMounts(from: readonly string[] | Pick<Config, "skillsDirs">): SkillMount[] {
  const dirs = Array.isArray(from)
    ? (from as readonly string[])
    : (from as Pick<Config, "skillsDirs">).skillsDirs;
  return SkillRegistry.fromDirs(dirs).skillMounts();
}
