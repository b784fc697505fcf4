// daemon/ui/rpc.ts — POST /api/rpc: the socket's methods the page needs, through the
// socket's own schemas and handlers (MethodRunner), and nothing else. The allowlist is
// explicit: a method that starts agents or tools on its own (agent.run, tool.invoke,
// session.open...) or that streams (events.subscribe) is not reachable from a browser
// tab. Decisions taken here are recorded as made by "dashboard". A request is tied to its
// HTTP exchange: a goal.wait whose tab went away ends (the goal does not). goal.submit
// takes no `inputs` here: those are host paths the daemon copies with its own rights, so
// a stolen cookie or a script in the page could pull any file of the user's into a goal
// and download it from the goal's outputs; the page uploads files (POST /api/goals).

import type { ServerResponse } from "node:http";
import { RpcCode, RpcError, type RpcErrorObject, toRpcError } from "../errors.js";
import type { MethodRunner, RequestClient } from "../methods.js";
import type { MethodName } from "../schemas.js";

export const UI_METHODS: ReadonlySet<MethodName> = new Set<MethodName>([
  "goal.submit",
  "goal.status",
  "goal.list",
  "goal.cancel",
  "goal.wait",
  "agent.list",
  "agent.status",
  "approval.list",
  "approval.respond",
  "approval.grants",
  "approval.revoke",
  "audit.query",
  "audit.verify",
  "intent.status",
  "plan.list",
  "snapshot.list",
  "snapshot.restore",
  "mcp.list",
  "tool.list",
  "cluster.status",
]);

/** goal.wait from a page is a poll, not a hold: at most this long. */
export const UI_WAIT_MAX_MS = 30_000;

export const DECIDED_BY = "dashboard";

export type RpcAnswer = { result: unknown } | { error: RpcErrorObject };

/** The client behind one HTTP exchange: it leaves when the response closes. */
export function httpClient(res: ServerResponse): RequestClient {
  return {
    onClose(fn) {
      if (res.closed) {
        fn();
        return () => {};
      }
      res.once("close", fn);
      return () => res.off("close", fn);
    },
    notify: () => false,
  };
}

/**
 * Answer one /api/rpc body. `refused` is called for a method outside the allowlist or a
 * param the dashboard may not give (the caller audits it).
 */
export async function answerRpc(
  body: unknown,
  run: MethodRunner,
  res: ServerResponse,
  log: (m: string) => void,
  refused: (reason: "method" | "params") => void,
): Promise<RpcAnswer> {
  try {
    const { method, params } = parseBody(body);
    if (!(UI_METHODS as ReadonlySet<string>).has(method)) {
      refused("method");
      throw new RpcError(RpcCode.methodNotFound, `method "${method}" is not available to the dashboard`, {
        code: "not_found",
        details: { methods: [...UI_METHODS] },
      });
    }
    capWait(method, params);
    if (method === "goal.submit" && hasKey(params, "inputs")) {
      refused("params");
      throw new RpcError(
        RpcCode.invalidParams,
        "invalid params for goal.submit: inputs: host paths are not taken from the dashboard; upload the files with POST /api/goals",
        { code: "invalid_input", details: { field: "inputs" } },
      );
    }
    const result = await run(method as MethodName, params, httpClient(res), () => {}, DECIDED_BY);
    return { result };
  } catch (e) {
    return { error: toRpcError(e, log) };
  }
}

function parseBody(body: unknown): { method: string; params: unknown } {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new RpcError(RpcCode.invalidRequest, 'invalid request: the body must be {"method", "params"}', {
      code: "invalid_input",
      details: { field: "body" },
    });
  }
  const b = body as Record<string, unknown>;
  const extra = Object.keys(b).filter((k) => k !== "method" && k !== "params");
  if (extra.length > 0) {
    throw new RpcError(RpcCode.invalidRequest, `invalid request: unknown key "${extra[0]}"`, {
      code: "invalid_input",
      details: { field: extra[0] },
    });
  }
  if (typeof b.method !== "string" || b.method === "") {
    throw new RpcError(RpcCode.invalidRequest, "invalid request: method must be a non-empty string", {
      code: "invalid_input",
      details: { field: "method" },
    });
  }
  return { method: b.method, params: b.params ?? {} };
}

function hasKey(params: unknown, key: string): boolean {
  return typeof params === "object" && params !== null && Object.hasOwn(params, key);
}

function capWait(method: string, params: unknown): void {
  if (method !== "goal.wait") return;
  const t = (params as { timeout_ms?: unknown } | null)?.timeout_ms;
  if (typeof t === "number" && t > UI_WAIT_MAX_MS) {
    throw new RpcError(
      RpcCode.invalidParams,
      `invalid params for goal.wait: timeout_ms: at most ${UI_WAIT_MAX_MS} from the dashboard`,
      { code: "invalid_input", details: { field: "timeout_ms" } },
    );
  }
}
