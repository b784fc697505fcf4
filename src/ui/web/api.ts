// ui/web/api.ts — the page's only way to the daemon: POST /api/rpc (the socket's methods
// the server allows), POST /api/goals (a submission with files), the outputs listing,
// and the /api/events stream. Requests carry the session cookie the sign-in link set
// (same origin); nothing here holds or sends the token itself.

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

async function postJson(path: string, body: unknown): Promise<unknown> {
  const res = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    credentials: "same-origin",
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

/** One socket method through /api/rpc. */
export async function rpc<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
  return (await postJson("/api/rpc", { method, params })) as T;
}

export interface GoalSubmission {
  goal: string;
  manifest?: string;
  inputs?: { name: string; content_base64: string }[];
}

export async function submitGoal(s: GoalSubmission): Promise<{ goal_id: string }> {
  return (await postJson("/api/goals", s)) as { goal_id: string };
}

export async function listOutputs(goalId: string): Promise<OutputFile[]> {
  const res = await fetch(`/api/goals/${encodeURIComponent(goalId)}/outputs`, { credentials: "same-origin" });
  if (!res.ok) throw new RpcError(res.status, `outputs of ${goalId}: HTTP ${res.status}`);
  return ((await res.json()) as { files: OutputFile[] }).files;
}

export function outputUrl(goalId: string, name: string): string {
  return `/api/goals/${encodeURIComponent(goalId)}/outputs/${encodeURIComponent(name)}`;
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

/** "closed": the browser gave up (the server refused the stream: a rotated token, say). */
export type Connection = "connecting" | "live" | "reconnecting" | "closed";

/**
 * Follow /api/events. The browser's EventSource reconnects by itself after a dropped
 * stream; `onState` says when it is live again, so the caller can reload what it may have
 * missed, and when the browser has stopped trying.
 */
export function followEvents(onEvent: (e: WireEvent) => void, onState: (c: Connection) => void): () => void {
  const source = new EventSource("/api/events");
  onState("connecting");
  source.onopen = () => onState("live");
  source.onerror = () => onState(source.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
  source.onmessage = (m: MessageEvent<string>) => {
    let ev: unknown;
    try {
      ev = JSON.parse(m.data);
    } catch {
      return;
    }
    if (typeof ev === "object" && ev !== null && typeof (ev as WireEvent).type === "string") {
      onEvent(ev as WireEvent);
    }
  };
  return () => source.close();
}
