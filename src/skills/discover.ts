// skills/discover.ts — finds skills: every folder with a SKILL.md directly under one of
// config.skillsDirs. A bad skill is reported (file + reason) and skipped, never fatal. When
// two dirs hold a skill of the same name, the earlier dir wins (bundled before user before
// project), and the later one is reported as shadowed: a project folder cannot quietly
// replace a skill the operator relies on.

import { lstatSync, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { join } from "node:path";
import { isWithin } from "../fs/within.js";
import { parseSkillMarkdown } from "./frontmatter.js";

/** A SKILL.md larger than this is refused: it is meant to be read into a prompt. */
export const MAX_SKILL_MD_BYTES = 256 * 1024;

export interface Skill {
  name: string;
  description: string;
  /** Real path of the skill's folder: reads are confined to it. */
  dir: string;
  /** The skills dir it was found in. */
  root: string;
}

export interface SkillProblem {
  file: string;
  reason: string;
}

export interface Discovery {
  skills: Skill[];
  problems: SkillProblem[];
}

export function discoverSkills(dirs: readonly string[]): Discovery {
  const byName = new Map<string, Skill>();
  const problems: SkillProblem[] = [];
  for (const root of dirs) {
    let entries: string[];
    try {
      if (!statSync(root).isDirectory()) continue;
      entries = readdirSync(root).sort();
    } catch {
      continue; // a configured dir that does not exist is normal (no project skills)
    }
    for (const entry of entries) {
      if (entry.startsWith(".")) continue;
      const folder = join(root, entry);
      let dir: string;
      try {
        if (!statSync(folder).isDirectory()) continue;
        dir = realpathSync(folder);
      } catch {
        continue;
      }
      // A skill folder that is a symlink out of its skills dir would make the target (a
      // project root with its .env, a home folder) readable by skill_read and mounted at
      // /skills. Point AIDO_SKILLS_DIR at such a folder's parent instead.
      if (!isWithin(realpathSync(root), dir)) {
        problems.push({ file: folder, reason: `skill folder is a symlink leading outside ${root}` });
        continue;
      }
      const found = loadSkill(folder, dir, entry);
      if ("reason" in found) {
        problems.push(found);
        continue;
      }
      const earlier = byName.get(found.name);
      if (earlier) {
        problems.push({
          file: join(folder, "SKILL.md"),
          reason: `skill "${found.name}" is shadowed by ${join(earlier.dir, "SKILL.md")} (an earlier skills dir wins)`,
        });
        continue;
      }
      byName.set(found.name, { ...found, root });
    }
  }
  const skills = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { skills, problems };
}

function loadSkill(folder: string, dir: string, entry: string): Omit<Skill, "root"> | SkillProblem {
  const file = join(folder, "SKILL.md");
  let text: string;
  try {
    const st = lstatSync(join(dir, "SKILL.md"));
    if (st.isSymbolicLink()) {
      const real = realpathSync(join(dir, "SKILL.md"));
      if (!isWithin(dir, real))
        return { file, reason: "SKILL.md is a symlink that leads outside the skill folder" };
    }
    const real = statSync(join(dir, "SKILL.md"));
    if (!real.isFile()) return { file, reason: "SKILL.md is not a regular file" };
    if (real.size > MAX_SKILL_MD_BYTES)
      return { file, reason: `SKILL.md is larger than ${MAX_SKILL_MD_BYTES} bytes` };
    text = readFileSync(join(dir, "SKILL.md"), "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return {
      file,
      reason: code === "ENOENT" ? "folder has no SKILL.md" : `cannot read SKILL.md (${code ?? "error"})`,
    };
  }
  const parsed = parseSkillMarkdown(text);
  if (!parsed.ok) return { file, reason: parsed.reason };
  if (parsed.meta.name !== entry) {
    return { file, reason: `name "${parsed.meta.name}" does not match the folder name "${entry}"` };
  }
  return { name: parsed.meta.name, description: parsed.meta.description.replace(/\s+/g, " "), dir };
}
