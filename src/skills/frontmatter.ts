// skills/frontmatter.ts — parses a SKILL.md: YAML front matter between "---" lines,
// validated with zod, then the Markdown body. Only `name` and `description` are
// required; other keys of the Agent Skills format (license, metadata, ...) are allowed
// and ignored, so skills written for other runtimes still load.

import { parseDocument } from "yaml";
import { z } from "zod";

export const SKILL_NAME = /^[a-z0-9-]{1,64}$/;
export const MAX_DESCRIPTION_CHARS = 1024;

export const SkillFrontMatter = z.looseObject({
  name: z.string().regex(SKILL_NAME, "name must be 1-64 characters of [a-z0-9-]"),
  description: z
    .string()
    .trim()
    .min(1, "description is empty")
    .max(MAX_DESCRIPTION_CHARS, `description is longer than ${MAX_DESCRIPTION_CHARS} characters`),
});
export type SkillFrontMatter = z.infer<typeof SkillFrontMatter>;

export type ParsedSkill = { ok: true; meta: SkillFrontMatter; body: string } | { ok: false; reason: string };

export function parseSkillMarkdown(text: string): ParsedSkill {
  const src = text.replace(/^\uFEFF/, "").replace(/\r\n/g, "\n");
  if (!src.startsWith("---\n"))
    return { ok: false, reason: 'no front matter: SKILL.md must start with a "---" line' };
  const end = src.indexOf("\n---", 3);
  if (end < 0) return { ok: false, reason: 'front matter is not closed by a "---" line' };
  const after = src.slice(end + 4);
  if (after !== "" && !after.startsWith("\n"))
    return { ok: false, reason: 'front matter is not closed by a "---" line' };
  const doc = parseDocument(src.slice(4, end + 1), { prettyErrors: false });
  if (doc.errors.length > 0)
    return { ok: false, reason: `front matter is not valid YAML: ${doc.errors[0]!.message}` };
  const parsed = SkillFrontMatter.safeParse(doc.toJS());
  if (!parsed.success) {
    const reason = parsed.error.issues
      .map((i) => `${i.path.join(".") || "(front matter)"}: ${i.message}`)
      .join("; ");
    return { ok: false, reason };
  }
  return { ok: true, meta: parsed.data, body: after.replace(/^\n/, "") };
}
