// cluster/command-replies.ts — what a sender takes of the answer to a routed command
// (command-sender.ts). An answer comes through Redis, and whoever can write there can put one
// on a node's reply stream: each is read as what it must be — the request it answers, then
// the result the command gives (the agents or audit entries of the goal asked about, the
// goal a cancel ended, the approval answered, a chain's verdict) — and one that is not is an
// error naming the command, the node and what was wrong, never handed on as if it were.

import { z } from "zod";
import { AidoError, ErrorCode } from "../errors.js";
import type { Command } from "./commands.js";

/** An answer as the owner writes it on its sender's reply stream (serveCommands). */
export type Reply = { request_id: string } & (
  | { ok: true; result: unknown }
  | { ok: false; error: { code: string; message: string } }
);

const text = z.string().max(1_000_000);
const id = z.string().min(1).max(200);
const count = z.number().int().min(0);

const ReplySchema = z.discriminatedUnion("ok", [
  z.looseObject({ request_id: id, ok: z.literal(true), result: z.unknown() }),
  z.looseObject({
    request_id: id,
    ok: z.literal(false),
    error: z.looseObject({ code: z.string().max(80), message: text }),
  }),
]);

const agent = (goalId: string) =>
  z.looseObject({
    agent_id: id,
    goal_id: z.literal(goalId),
    parent_id: id.nullable(),
    manifest: text,
    model: text,
    state: z.string().max(40),
    depth: count,
    children: z.array(id),
    created_at: text,
    description: text.optional(),
    stop_reason: text.optional(),
  });

const auditEntry = (goalId: string) =>
  z.looseObject({
    seq: count,
    time: text,
    goal_id: z.literal(goalId),
    agent_id: z.string().max(200).nullable(),
    kind: z.string().max(200),
    payload: z.unknown(),
    prev_hash: text,
    hash: text,
  });

const usage = z.looseObject({ input_tokens: count, output_tokens: count });

/** What each command's result must be. */
function resultSchema(c: Command): z.ZodType {
  switch (c.type) {
    case "agent.list":
      return z.looseObject({ agents: z.array(agent(c.goal_id)) });
    case "audit.query":
      return z.looseObject({ entries: z.array(auditEntry(c.query.goal_id)) });
    case "goal.cancel":
      return z.looseObject({
        goal_id: z.literal(c.goal_id),
        state: z.enum(["queued", "running", "succeeded", "failed", "cancelled"]),
        usage,
      });
    case "approval.respond":
      return z.looseObject({ id: z.literal(c.id), status: z.string().max(40) });
    case "audit.verify":
      return z.looseObject({ ok: z.boolean(), entries: count });
  }
}

/** The first few things wrong, each at its path under `at` ("reply", "result"). */
function problems(e: z.ZodError, at: string): string {
  return e.issues
    .slice(0, 3)
    .map((i) => `${[at, ...i.path].join(".")}: ${i.message}`)
    .join("; ");
}

function malformed(c: Command, node: string, what: string): AidoError {
  return new AidoError(
    ErrorCode.internal,
    `node ${node} answered ${c.type} with a reply that is not one: ${what}`,
    { node, command: c.type },
  );
}

/**
 * The request id an entry of a reply stream answers, or undefined when it names none (such
 * an entry answers nothing a sender waits for: it is dropped unread).
 */
export function replyRequestId(raw: string): string | undefined {
  try {
    const v = JSON.parse(raw) as { request_id?: unknown } | null;
    return typeof v?.request_id === "string" ? v.request_id : undefined;
  } catch {
    return undefined;
  }
}

/** The result of `c` in `raw`, its node's answer: checked, or the node's error rethrown. */
export function checkedReply(c: Command, node: string, raw: string): unknown {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw malformed(c, node, "not JSON");
  }
  const reply = ReplySchema.safeParse(v);
  if (!reply.success) throw malformed(c, node, problems(reply.error, "reply"));
  if (!reply.data.ok) {
    const { code, message } = reply.data.error;
    const known = (Object.values(ErrorCode) as string[]).includes(code)
      ? (code as ErrorCode)
      : ErrorCode.internal;
    throw new AidoError(known, `node ${node}: ${message}`, { node });
  }
  const result = resultSchema(c).safeParse(reply.data.result);
  if (!result.success) throw malformed(c, node, problems(result.error, "result"));
  return reply.data.result;
}
