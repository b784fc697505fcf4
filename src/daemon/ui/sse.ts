// daemon/ui/sse.ts — GET /api/events: the socket's events.subscribe (the same handler,
// so the page sees exactly what a socket subscriber sees) written as Server-Sent Events.
// One `data:` line per event with an `id:` sequence, a comment heartbeat every 15 s.
// A stream for one goal ends after its goal.finished. A reader that lets more than
// MAX_UNREAD_BYTES pile up is dropped, never buffered for. The UI server ends every
// stream when the daemon stops (close()).

import type { ServerResponse } from "node:http";
import type { MethodRunner, RequestClient } from "../methods.js";
import { DECIDED_BY, httpClient } from "./rpc.js";

export const HEARTBEAT_MS = 15_000;
export const MAX_UNREAD_BYTES = 4 * 1024 * 1024;

/**
 * Open the stream on `res`. Throws (before any header is written) what events.subscribe
 * throws: not_found for an unknown goal.
 */
export async function openEventStream(
  res: ServerResponse,
  goalId: string | undefined,
  run: MethodRunner,
  log: (m: string) => void,
): Promise<void> {
  let seq = 0;
  const base = httpClient(res);
  const end = () => {
    if (!res.writableEnded) res.end();
  };
  const client: RequestClient = {
    onClose: base.onClose,
    notify(method, params) {
      if (method !== "event" || res.writableEnded || res.destroyed) return false;
      if (res.writableLength > MAX_UNREAD_BYTES) {
        log(`ui: dropping an event stream with ${res.writableLength} bytes unread`);
        res.destroy();
        return false;
      }
      seq++;
      res.write(`id: ${seq}\ndata: ${JSON.stringify(params)}\n\n`);
      if (goalId !== undefined && (params as { type?: unknown }).type === "goal.finished") end();
      return true;
    },
  };
  const after: (() => void)[] = [];
  await run(
    "events.subscribe",
    goalId === undefined ? {} : { goal_id: goalId },
    client,
    (fn) => after.push(fn),
    DECIDED_BY,
  );
  res.writeHead(200, {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-store",
    Connection: "keep-alive",
    "X-Accel-Buffering": "no",
  });
  res.write(": stream open\n\n");
  const beat = setInterval(() => {
    if (!res.writableEnded) res.write(": heartbeat\n\n");
  }, HEARTBEAT_MS);
  beat.unref();
  res.once("close", () => clearInterval(beat));
  for (const fn of after) fn();
}
