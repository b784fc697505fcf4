// manifest/schema.ts — the agent manifest (DESIGN.md, "Manifest"). Strict: an unknown
// key is an error. Every key that parses is enforced somewhere; the comment on each
// says where, so that a key nobody reads is easy to spot.

import { z } from "zod";
import { type Grant, isManifestName, MCP_SERVER_NAME, parseGrant } from "../security/grants.js";
import { unknownToolProblem } from "../tools/names.js";

const grant = z.string().transform((s, ctx): Grant => {
  try {
    return parseGrant(s);
  } catch (e) {
    ctx.addIssue({ code: "custom", message: (e as Error).message });
    return z.NEVER;
  }
});

const PROVIDERS = ["anthropic", "openai", "deepseek", "ollama", "openai-compat"] as const;

const modelRef = z.string().refine(
  (s) => {
    const slash = s.indexOf("/");
    return slash > 0 && slash < s.length - 1 && (PROVIDERS as readonly string[]).includes(s.slice(0, slash));
  },
  { message: `model must be "provider/model" with provider one of ${PROVIDERS.join(", ")}` },
);

/** "128k", "1m" or a plain number of tokens. */
const tokenCount = z.union([
  z.number().int().positive(),
  z
    .string()
    .regex(/^\d+(\.\d+)?[kKmM]?$/, 'expected a token count such as 128000, "128k" or "1m"')
    .transform((s) => {
      const unit = s.slice(-1).toLowerCase();
      const n = Number.parseFloat(s);
      return Math.round(unit === "k" ? n * 1000 : unit === "m" ? n * 1_000_000 : n);
    }),
]);

export const ManifestSchema = z
  .strictObject({
    name: z.string().refine(isManifestName, "name must match [a-z][a-z0-9_-]* (at most 64 characters)"),
    /** llm/: provider adapter and model id. */
    model: modelRef.optional(),
    /** agent/: first part of the system prompt. */
    system_prompt: z.string().min(1).optional(),
    /** manifest/load.ts resolves it relative to the manifest, confined to its folder. */
    system_prompt_file: z.string().min(1).optional(),
    /** `aido agents`, the watch view and the role catalog (manifest/roles.ts) show it. */
    description: z
      .string()
      .max(500)
      // A model writes its children's: it reaches the operator's terminal, so no escapes.
      .refine(
        (d) => !/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/.test(d),
        "description must not hold control characters",
      )
      .optional(),
    /** kernel/: on-demand agents end with their task; persistent ones keep a message loop. */
    lifecycle: z.enum(["on-demand", "persistent"]).default("on-demand"),
    /** security/: signed into the agent's capability token; the gate checks every call against it. */
    capabilities: z.array(grant).default([]),
    /** gate/: these tools wait for a human decision. A name that is no tool is refused (tools/names.ts). */
    approval_required: z
      .array(
        z.string().superRefine((name, ctx) => {
          const problem = unknownToolProblem(name);
          if (problem) ctx.addIssue({ code: "custom", message: problem });
        }),
      )
      .default([]),
    /** security/budget: integer token budget, reset every period. */
    budget: z
      .strictObject({
        max_tokens: z.number().int().positive(),
        reset_period_seconds: z.number().int().positive().optional(),
      })
      .optional(),
    /** agent/ (iterations) and kernel/ (children, depth). */
    limits: z
      .strictObject({
        max_iterations: z.number().int().positive().optional(),
        max_children: z.number().int().min(0).optional(),
        max_depth: z.number().int().min(0).optional(),
      })
      .optional(),
    /** memory/ (episodic on/off) and agent/ (context window, summarisation threshold). */
    memory: z
      .strictObject({
        episodic: z.boolean().default(true),
        context_window: tokenCount.optional(),
        summarize_at: z.number().gt(0).lt(1).optional(),
      })
      .optional(),
    /** skills/: allow-list of skills this agent may read; absent means all it can see. */
    skills: z.array(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, "skill name")).optional(),
    /**
     * tools/mcp/: the external MCP servers whose tools this agent may see (each one the
     * operator declared: kernel/spawn.ts); its `mcp:` grants pick the tools. A child's list
     * is a subset of its parent's (kernel/narrow-manifest.ts); omitted: none for a root,
     * the parent's for a child.
     */
    mcp_servers: z
      .array(z.string().regex(MCP_SERVER_NAME, "an MCP server name: [a-z][a-z0-9-]*, at most 32 characters"))
      .optional(),
  })
  .superRefine((m, ctx) => {
    if (m.system_prompt !== undefined && m.system_prompt_file !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["system_prompt_file"],
        message: "give system_prompt or system_prompt_file, not both",
      });
    }
  });

export type Manifest = z.output<typeof ManifestSchema>;
