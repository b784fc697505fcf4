// tools/mcp/request-time.ts — a request to an MCP server (connection.ts) timed in the server's
// own time. A stdio server's container is frozen with its goal's while the node is fenced
// (cluster/fence.ts, sandbox/frozen-goals.ts): nothing in it answers meanwhile. So a request is
// sent only once the server is not frozen (as a call on the goal's sandbox is), and its
// timeout_ms leaves out the time the server was frozen after it was sent. Before, a call that
// passed the gate's hold as the fence fell went to the frozen server with its timeout running:
// a fence longer than the timeout failed it, the ping after it timed out too, and the session
// was closed (the server started again on the next call, its state lost).
// The SDK's own timer cannot be held, so it is set past any request's life and the deadline
// here aborts the request instead, with the SDK's own timeout error (McpError RequestTimeout):
// what follows a timeout (the cancellation sent to the server, the ping) is the same.

import { performance } from "node:perf_hooks";
import type { RequestOptions } from "@modelcontextprotocol/sdk/shared/protocol.js";
import { McpError, ErrorCode as McpErrorCode } from "@modelcontextprotocol/sdk/types.js";
import type { FreezeClock } from "../../sandbox/mcp-container.js";

/** The SDK's timer for a request, off (setTimeout's longest): the deadline below times it. */
const SDK_TIMER_OFF_MS = 2_147_483_647;

/**
 * Run `send` (an SDK request given these options) once the server is not frozen, aborted with
 * the SDK's timeout error once it has run `timeoutMs` of the server's unfrozen time, or with
 * `signal`'s reason. Waiting for the thaw ends with `signal` too (its reason thrown).
 */
export async function timedRequest<T>(
  freezes: FreezeClock | undefined,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  send: (options: RequestOptions) => Promise<T>,
): Promise<T> {
  await untilThawed(freezes, signal);
  const request = new AbortController();
  const relay = () => request.abort(signal?.reason);
  if (signal?.aborted) relay();
  else signal?.addEventListener("abort", relay, { once: true });
  const deadline = startDeadline(timeoutMs, freezes, () =>
    request.abort(new McpError(McpErrorCode.RequestTimeout, "Request timed out", { timeout: timeoutMs })),
  );
  try {
    return await send({ timeout: SDK_TIMER_OFF_MS, signal: request.signal });
  } finally {
    deadline.cancel();
    signal?.removeEventListener("abort", relay);
  }
}

/**
 * Settles once the server is not frozen (at once when it is not); throws `signal`'s reason. The
 * wait leaves nothing behind on the freeze or the signal once it ends (FrozenGoals.untilThawed).
 */
async function untilThawed(freezes: FreezeClock | undefined, signal: AbortSignal | undefined): Promise<void> {
  if (freezes && !(await freezes.untilThawed(signal)) && signal) throw abortError(signal);
  if (signal?.aborted) throw abortError(signal);
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason));
}

/**
 * Calls `expired` once `timeoutMs` of unfrozen time has passed since now. Checked when that
 * much wall time has: the time frozen meanwhile is then run again, and a server frozen at that
 * moment is waited for first.
 */
function startDeadline(
  timeoutMs: number,
  freezes: FreezeClock | undefined,
  expired: () => void,
): { cancel(): void } {
  const start = performance.now();
  const frozenAtStart = freezes?.frozenMs() ?? 0;
  let timer: NodeJS.Timeout | undefined;
  let done = false;
  // Its wait for a thaw ends with the request too: nothing kept on the freeze past it.
  const ended = new AbortController();
  const check = (): void => {
    if (done) return;
    if (freezes?.thawed()) {
      void freezes.untilThawed(ended.signal).then((thawed) => thawed && check());
      return;
    }
    const ran = performance.now() - start - ((freezes?.frozenMs() ?? 0) - frozenAtStart);
    if (ran < timeoutMs) {
      timer = setTimeout(check, Math.ceil(timeoutMs - ran));
      return;
    }
    done = true;
    expired();
  };
  timer = setTimeout(check, timeoutMs);
  return {
    cancel: () => {
      done = true;
      clearTimeout(timer);
      ended.abort();
    },
  };
}
