// ui/web/api.ts — the page's only way to the daemon: POST /api/rpc (the socket's methods
// the server allows), POST /api/goals (a submission with files), the outputs (listed, and
// downloaded by the browser from a one-time address the page asks for), and the /api/events stream
// (read through fetch, reconnected here). Requests carry the session cookie the sign-in
// link set (same origin) and, in the X-Aido-Key header, the page key the sign-in page kept
// in this origin's localStorage (signin.ts): browsers send the cookie to every port of
// 127.0.0.1, and the server takes it for nothing past the page's own files without the
// key. Nothing here holds or sends the token itself.

import type { OutputFile, WireEvent } from "./wire.js";

/** A JSON-RPC error object as the daemon answered it; `message` names what is wrong. */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

/** The localStorage item the page key is kept in (written by signin.ts). */
export const PAGE_KEY_STORAGE = "aido-page-key";

/** The page key header (PAGE_KEY_HEADER in daemon/ui/guard.ts), when this origin holds a key. */
function keyHeader(): Record<string, string> {
  const key = localStorage.getItem(PAGE_KEY_STORAGE);
  return key ? { "x-aido-key": key } : {};
}

/** A request of the API, with the cookie and the page key. */
function apiFetch(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(path, {
    ...init,
    headers: { ...keyHeader(), ...(init.headers as Record<string, string> | undefined) },
    credentials: "same-origin",
  });
}

/** A refused answer's text (the server names what is wrong) as an error. */
async function httpError(what: string, res: Response): Promise<RpcError> {
  return new RpcError(res.status, `${what}: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
}

async function postJson(path: string, body: unknown, signal?: AbortSignal): Promise<unknown> {
  const res = await apiFetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
  const text = await res.text();
  let answer: { result?: unknown; error?: { code: number; message: string; data?: unknown } };
  try {
    answer = JSON.parse(text);
  } catch {
    throw new RpcError(res.status, `${path}: HTTP ${res.status} ${text.slice(0, 200)}`);
  }
  if (answer.error) throw new RpcError(answer.error.code, answer.error.message, answer.error.data);
  if (!res.ok) throw new RpcError(res.status, `${path}: HTTP ${res.status}`);
  return "result" in answer ? answer.result : answer;
}

/**
 * One socket method through /api/rpc. With `timeoutMs`, a request not answered within it is
 * aborted and fails saying so: a request the socket or HTTP never answers (a daemon stalled,
 * a connection held) otherwise leaves its caller waiting until the page is reloaded.
 */
export async function rpc<T>(
  method: string,
  params: Record<string, unknown> = {},
  opts: { timeoutMs?: number } = {},
): Promise<T> {
  if (opts.timeoutMs === undefined) return (await postJson("/api/rpc", { method, params })) as T;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), opts.timeoutMs);
  try {
    return (await postJson("/api/rpc", { method, params }, abort.signal)) as T;
  } catch (e) {
    if (abort.signal.aborted)
      throw new RpcError(
        0,
        `${method} had no answer within ${Math.round(opts.timeoutMs / 1000)} s: given up`,
      );
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

export interface GoalSubmission {
  goal: string;
  manifest?: string;
  inputs?: { name: string; content_base64: string }[];
}

export async function submitGoal(s: GoalSubmission): Promise<{ goal_id: string }> {
  return (await postJson("/api/goals", s)) as { goal_id: string };
}

/** A goal's output files; `truncated` when the goal left more than the daemon lists. */
export async function listOutputs(goalId: string): Promise<{ files: OutputFile[]; truncated: boolean }> {
  const res = await apiFetch(`/api/goals/${encodeURIComponent(goalId)}/outputs`);
  if (!res.ok) throw await httpError(`outputs of ${goalId}`, res);
  const body = (await res.json()) as { files: OutputFile[]; truncated?: boolean };
  return { files: body.files, truncated: body.truncated === true };
}

/**
 * Download one output file and have the browser save it as `saveAs`. A link to the file
 * could not carry the page key, and a blob of it would hold the whole file in the tab's
 * memory; so the page asks for a one-time address (with its key) and lets the browser
 * download from it, streamed to disk (always an attachment of type
 * application/octet-stream, never rendered).
 */
export async function downloadOutput(goalId: string, name: string, saveAs: string): Promise<void> {
  const res = await apiFetch("/api/downloads", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ goal_id: goalId, name }),
  });
  if (!res.ok) throw await httpError(`output ${name}`, res);
  const { url } = (await res.json()) as { url: string };
  const a = document.createElement("a");
  a.href = url;
  a.download = saveAs;
  a.click();
}

/** A file picked in the form, as the base64 /api/goals takes. */
export async function fileAsInput(file: File): Promise<{ name: string; content_base64: string }> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return { name: file.name, content_base64: btoa(binary) };
}

/** "closed": the page gave up (the server refused the stream: a rotated token, say). */
export type Connection = "connecting" | "live" | "reconnecting" | "closed";

/** The first wait before reconnecting the stream, doubled after each failed try up to the most. */
const RETRY_FIRST_MS = 1_000;
const RETRY_MOST_MS = 10_000;

/**
 * Follow /api/events, read through fetch (an EventSource cannot send the page key). A
 * dropped stream (the daemon restarting, the network) is opened again, after 1 s, then
 * longer while it keeps failing; `onState` says when it is live again, so the caller can
 * reload what it may have missed. A refusal (4xx: a rotated token, no page key) is final,
 * as an EventSource's is: "closed".
 */
export function followEvents(onEvent: (e: WireEvent) => void, onState: (c: Connection) => void): () => void {
  const stop = new AbortController();
  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        stop.signal.removeEventListener("abort", done);
        resolve();
      };
      const t = setTimeout(done, ms);
      stop.signal.addEventListener("abort", done);
    });
  const follow = async () => {
    let retryMs = RETRY_FIRST_MS;
    onState("connecting");
    while (!stop.signal.aborted) {
      let res: Response | undefined;
      try {
        res = await apiFetch("/api/events", {
          headers: { accept: "text/event-stream" },
          cache: "no-store",
          signal: stop.signal,
        });
      } catch {
        res = undefined;
      }
      if (stop.signal.aborted) return;
      if (res && res.status >= 400 && res.status < 500) {
        onState("closed");
        return;
      }
      if (res?.ok && res.body) {
        onState("live");
        retryMs = RETRY_FIRST_MS;
        try {
          await readEvents(res.body, onEvent);
        } catch {
          // dropped mid-stream: reconnect below
        }
        if (stop.signal.aborted) return;
      }
      onState("reconnecting");
      await wait(retryMs);
      retryMs = Math.min(retryMs * 2, RETRY_MOST_MS);
    }
  };
  void follow();
  return () => stop.abort();
}

/** Server-Sent Events from `body` until it ends: each event's `data` parsed as JSON. */
async function readEvents(body: ReadableStream<Uint8Array>, onEvent: (e: WireEvent) => void): Promise<void> {
  const reader = body.getReader();
  const text = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += text.decode(value, { stream: true }); // the dashboard's server ends lines with \n alone
    for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(line.startsWith("data: ") ? 6 : 5))
        .join("\n");
      if (data !== "") deliver(data, onEvent);
    }
  }
}

function deliver(data: string, onEvent: (e: WireEvent) => void): void {
  let ev: unknown;
  try {
    ev = JSON.parse(data);
  } catch {
    return;
  }
  if (typeof ev === "object" && ev !== null && typeof (ev as WireEvent).type === "string") {
    onEvent(ev as WireEvent);
  }
}
