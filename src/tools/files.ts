// tools/files.ts — file_read, file_read_many, file_write, file_edit, file_list, grep: the
// file tools, each a zod schema, the needs of a call (canonical paths, see paths.ts) and a
// run that only touches the container through ctx.sandbox, with output bounded.
// A tool that reaches below the path it was judged for narrows to the caller's
// confinement: grep opens only files the agent's read grants cover and no deny rule names
// (the executor prunes folders it cannot reach), file_list hides entries a deny rule names.
// Each honours the call's cancel (ctx.signal) where it waits: before, a call cancelled while its
// goal's container was frozen waited for the thaw and ran on.

import { posix } from "node:path";
import { z } from "zod";
import { AidoError, ErrorCode } from "../errors.js";
import { readViewOf } from "../gate/confinement.js";
import type { ToolContext, ToolDef } from "../gate/types.js";
import type { ReadView } from "../sandbox/types.js";
import { matchPath } from "../security/glob.js";
import { callerSecrets, hideCallerSecrets, hideCutText } from "./hide-secrets.js";
import { boundOutput } from "./output.js";
import { canonical, confirmJudged, pathSchema, WORKSPACE } from "./paths.js";

const CONTENT_MAX = 10 * 1024 * 1024;

/** What the caller may read below a judged path; refuses when the gate gave no confinement. */
function readView(ctx: ToolContext, tool: string): ReadView {
  const c = ctx.confinement;
  if (!c) throw new AidoError(ErrorCode.capabilityDenied, `${tool} needs the caller's confinement; refused`);
  return readViewOf(c);
}
/**
 * The call's cancel, for each sandbox call: it ends the call while it waits (the goal frozen by
 * its node's fence, the executor starting). A write or edit is given up only before it is sent:
 * it lands whole or not at all (sandbox/types.ts FileOpOptions.signal).
 */
/**
 * A text of the container as the model may see it: every proxy credential of the goal blanked
 * as in exec's output (hide-secrets.ts). A command can write them to a file (`printf %s
 * "$HTTP_PROXY" > f`), where file_read and grep showed them.
 */
const shown = (ctx: ToolContext, text: string, cap: number) =>
  boundOutput(hideCallerSecrets(text, ctx.egress), cap);
/**
 * A file's content as read, which a cap may have cut inside a credential: its start there is
 * blanked too (hide-secrets.ts hideCutText), before the note saying where it was cut.
 */
const cutRead = (ctx: ToolContext, content: string, truncated: boolean): string =>
  truncated ? hideCutText(content, callerSecrets(content, ctx.egress)) : content;
const cancel = (ctx: ToolContext): { signal?: AbortSignal } => (ctx.signal ? { signal: ctx.signal } : {});
const READ_MANY_MAX = 20;
const GREP_MAX_MATCHES = 500;
/** What the executor ends a grep line it cut with (executor/grep.ts LINE_MAX). */
const LINE_CUT = "…";
const noNul = (s: string) => !s.includes("\0");
/** Bytes of content that leave room for the truncation note within `cap`. */
const roomFor = (cap: number) => Math.max(64, cap - 120);

const readInput = z.strictObject({
  path: pathSchema,
  offset: z.number().int().min(0).optional(),
  limit: z.number().int().min(1).max(100_000).optional(),
});
export const fileRead: ToolDef<z.infer<typeof readInput>> = {
  name: "file_read",
  description: "Read a text file (offset/limit in lines). Relative paths are under /workspace.",
  input: readInput,
  mutates: false,
  needs: async (i, { sandbox, signal }) => [
    { kind: "tool", name: "file_read" },
    { kind: "file_read", path: await canonical(sandbox, i.path, signal) },
  ],
  async run(i, ctx) {
    const path = await confirmJudged(ctx, ["file_read"], i.path);
    const r = await ctx.sandbox.readFile(path, {
      offset: i.offset,
      limit: i.limit,
      maxBytes: roomFor(ctx.outputMaxBytes),
      expect: path,
      ...cancel(ctx),
    });
    const note = r.truncated
      ? `\n[file truncated: showed ${Buffer.byteLength(r.content)} of ${r.size} bytes]`
      : "";
    return {
      output: shown(ctx, cutRead(ctx, r.content, r.truncated) + note, ctx.outputMaxBytes),
      data: { path, size: r.size, truncated: r.truncated },
    };
  },
};

const readManyInput = z.strictObject({ paths: z.array(pathSchema).min(1).max(READ_MANY_MAX) });
export const fileReadMany: ToolDef<z.infer<typeof readManyInput>> = {
  name: "file_read_many",
  description: `Read up to ${READ_MANY_MAX} text files at once; output is shared between them.`,
  input: readManyInput,
  mutates: false,
  async needs(i, { sandbox, signal }) {
    const paths = await Promise.all(i.paths.map((p) => canonical(sandbox, p, signal)));
    return [
      { kind: "tool", name: "file_read_many" },
      ...paths.map((path) => ({ kind: "file_read" as const, path })),
    ];
  },
  async run(i, ctx) {
    const share = Math.max(256, Math.floor(ctx.outputMaxBytes / i.paths.length));
    const parts: string[] = [];
    for (const p of i.paths) {
      const path = await confirmJudged(ctx, ["file_read"], p);
      try {
        const r = await ctx.sandbox.readFile(path, {
          maxBytes: roomFor(share),
          expect: path,
          ...cancel(ctx),
        });
        const note = r.truncated
          ? `\n[file truncated: showed ${Buffer.byteLength(r.content)} of ${r.size} bytes]`
          : "";
        parts.push(`=== ${path} ===\n${cutRead(ctx, r.content, r.truncated)}${note}`);
      } catch (e) {
        if (ctx.signal?.aborted) throw e;
        parts.push(`=== ${path} ===\n[error: ${(e as Error).message}]`);
      }
    }
    return { output: shown(ctx, parts.join("\n"), ctx.outputMaxBytes) };
  },
};

const writeInput = z.strictObject({ path: pathSchema, content: z.string().max(CONTENT_MAX) });
export const fileWrite: ToolDef<z.infer<typeof writeInput>> = {
  name: "file_write",
  description: "Create or replace a file atomically (parent folders are made).",
  input: writeInput,
  mutates: true,
  needs: async (i, { sandbox, signal }) => [
    { kind: "tool", name: "file_write" },
    { kind: "file_write", path: await canonical(sandbox, i.path, signal) },
  ],
  async run(i, ctx) {
    const path = await confirmJudged(ctx, ["file_write"], i.path);
    const { bytes } = await ctx.sandbox.writeFile(path, i.content, { expect: path, ...cancel(ctx) });
    return { output: `wrote ${bytes} bytes to ${path}`, data: { path, bytes } };
  },
};

const editInput = z.strictObject({
  path: pathSchema,
  old_string: z.string().min(1).max(CONTENT_MAX).refine(noNul, "old_string must not contain NUL"),
  new_string: z.string().max(CONTENT_MAX),
  replace_all: z.boolean().optional(),
});
export const fileEdit: ToolDef<z.infer<typeof editInput>> = {
  name: "file_edit",
  description: "Replace old_string with new_string in a file; old_string must be unique unless replace_all.",
  input: editInput,
  mutates: true,
  async needs(i, { sandbox, signal }) {
    const path = await canonical(sandbox, i.path, signal);
    return [
      { kind: "tool", name: "file_edit" },
      { kind: "file_read", path },
      { kind: "file_write", path },
    ];
  },
  async run(i, ctx) {
    const path = await confirmJudged(ctx, ["file_read", "file_write"], i.path);
    const { replacements } = await ctx.sandbox.editFile(
      path,
      i.old_string,
      i.new_string,
      i.replace_all ?? false,
      { expect: path, ...cancel(ctx) },
    );
    return { output: `replaced ${replacements} occurrence(s) in ${path}`, data: { path, replacements } };
  },
};

const listInput = z.strictObject({ path: pathSchema });
export const fileList: ToolDef<z.infer<typeof listInput>> = {
  name: "file_list",
  description: "List a folder: type, size and name of each entry (links are not followed).",
  input: listInput,
  mutates: false,
  needs: async (i, { sandbox, signal }) => [
    { kind: "tool", name: "file_list" },
    { kind: "file_read", path: await canonical(sandbox, i.path, signal) },
  ],
  async run(i, ctx) {
    const path = await confirmJudged(ctx, ["file_read"], i.path);
    const { deny } = readView(ctx, "file_list");
    const entries = (await ctx.sandbox.list(path, { expect: path, ...cancel(ctx) })).filter(
      (e) => !deny.some((d) => matchPath(d, posix.join(path, e.name))),
    );
    const lines = entries.map((e) => `${e.type.padEnd(7)} ${String(e.size).padStart(10)}  ${e.name}`);
    return {
      output: shown(ctx, lines.join("\n") || "(empty)", ctx.outputMaxBytes),
      data: { path, entries: entries.length },
    };
  },
};

const grepInput = z.strictObject({
  pattern: z.string().min(1).max(1000).refine(noNul, "pattern must not contain NUL"),
  path: pathSchema.optional(),
  glob: z.string().min(1).max(500).refine(noNul, "glob must not contain NUL").optional(),
});
export const grep: ToolDef<z.infer<typeof grepInput>> = {
  name: "grep",
  description:
    "Search files under a folder (default /workspace) for a regular expression; links are not followed, and only files you may read are searched.",
  input: grepInput,
  mutates: false,
  needs: async (i, { sandbox, signal }) => [
    { kind: "tool", name: "grep" },
    { kind: "file_read", path: await canonical(sandbox, i.path ?? WORKSPACE, signal) },
  ],
  async run(i, ctx) {
    const root = await confirmJudged(ctx, ["file_read"], i.path ?? WORKSPACE);
    const view = readView(ctx, "grep");
    const matches = await ctx.sandbox.grep(i.pattern, root, i.glob, GREP_MAX_MATCHES, {
      expect: root,
      view,
      ...cancel(ctx),
    });
    // The executor cuts a long line at 500 characters and ends it with "…": a credential the
    // cut fell inside leaves its start there (hide-secrets.ts hideCutText).
    const secrets = callerSecrets(matches.map((m) => m.text).join("\n"), ctx.egress);
    const lines = matches.map((m) => {
      const text = m.text.endsWith(LINE_CUT)
        ? `${hideCutText(m.text.slice(0, -1), secrets)}${LINE_CUT}`
        : m.text;
      return `${m.path}:${m.line}: ${text}`;
    });
    const more = matches.length >= GREP_MAX_MATCHES ? `\n[stopped at ${GREP_MAX_MATCHES} matches]` : "";
    return {
      output: shown(ctx, (lines.join("\n") || "(no matches)") + more, ctx.outputMaxBytes),
      data: { matches: matches.length },
    };
  },
};

export const fileTools = [fileRead, fileReadMany, fileWrite, fileEdit, fileList, grep];
