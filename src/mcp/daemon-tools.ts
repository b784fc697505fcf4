// mcp/daemon-tools.ts — how an orchestrator tool of `aido mcp serve` (a daemon operation,
// not a gated tool call: orchestrator-tools.ts holds the table) is defined and served: a
// name, a description, a strict zod input (its JSON Schema is what tools/list shows),
// annotations and a run over the daemon client. Serving one parses its input strictly
// (a malformed one is an isError result naming the field), and a refusal decided here,
// before the daemon was asked (RefusedHere), is recorded on the daemon's audit log as
// session.call_refused before the client reads it.

import type { CallToolResult, ToolAnnotations } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { type CallContext, errorResult, type McpTool, textResult } from "./tool-types.js";

export interface DaemonTool<S extends z.ZodType> {
  name: string;
  description: string;
  input: S;
  annotations: ToolAnnotations;
  run(input: z.output<S>, ctx: CallContext): Promise<unknown>;
}

export const id = z.string().min(1).max(200);
export const READ: ToolAnnotations = {
  readOnlyHint: true,
  destructiveHint: false,
  idempotentHint: true,
  openWorldHint: false,
};
export const ACT: ToolAnnotations = {
  readOnlyHint: false,
  destructiveHint: false,
  idempotentHint: false,
  openWorldHint: false,
};
/** A simulation in a shadow copy or a plan's run may take long; the daemon's own limits end it first. */
export const LONG_MS = 24 * 3600 * 1000;

const json = (value: unknown): CallToolResult => textResult(JSON.stringify(value, null, 2));

export function tool<S extends z.ZodType>(t: DaemonTool<S>): DaemonTool<S> {
  return t;
}

/** A call refused here, before the daemon was asked: recorded as the session's refusal. */
export class RefusedHere extends Error {}

/** "field: problem; …" for a zod error, naming each field. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      if (i.code === "unrecognized_keys") {
        const at = i.path.length > 0 ? `${i.path.join(".")}: ` : "";
        return `${at}unknown key${i.keys.length > 1 ? "s" : ""} ${i.keys.map((k) => `"${k}"`).join(", ")}`;
      }
      return `${i.path.length > 0 ? i.path.join(".") : "input"}: ${i.message}`;
    })
    .join("; ");
}

/**
 * A call refused here, before the daemon was asked (its input malformed, or out of the
 * session's reach): the daemon's log records it all the same, as session.call_refused.
 */
async function recordRefusal(ctx: CallContext, tool: string, reason: string): Promise<void> {
  await ctx.link.client
    .call("session.refused", { session_id: ctx.session.session_id, tool, reason: reason.slice(0, 4000) })
    .catch((e) => ctx.log(`recording a refusal of ${tool}: ${String(e)}`));
}

/** The table as MCP tools: JSON Schema from the zod input, strict parsing, refusals as isError. */
export function asMcpTools(table: readonly DaemonTool<z.ZodType>[]): McpTool[] {
  return table.map((t) => {
    const schema = z.toJSONSchema(t.input as z.ZodType, { io: "input" }) as Record<string, unknown>;
    delete schema.$schema;
    return {
      name: t.name,
      description: t.description,
      inputSchema: schema,
      annotations: t.annotations,
      async call(input, ctx) {
        const parsed = (t.input as z.ZodType).safeParse(input);
        if (!parsed.success) {
          const reason = `invalid input for ${t.name}: ${describeIssues(parsed.error)}`;
          await recordRefusal(ctx, t.name, reason);
          return textResult(reason, true);
        }
        try {
          return json(await (t.run as (p: unknown, c: CallContext) => Promise<unknown>)(parsed.data, ctx));
        } catch (e) {
          if (e instanceof RefusedHere) {
            await recordRefusal(ctx, t.name, e.message);
            return textResult(`refused: ${e.message}`, true);
          }
          return errorResult(e);
        }
      },
    };
  });
}
