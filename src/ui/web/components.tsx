// ui/web/components.tsx — small pieces every page uses: a state badge, times, an error
// line, and useAnswer(), which loads a daemon answer and reloads it when its inputs or a
// live topic's revision change. Everything here renders text as text (Preact escapes
// it); nothing takes HTML.

import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";

export function Badge({ state }: { state: string }) {
  return <span class={`badge badge-${state.replace(/[^a-z_]/g, "")}`}>{state}</span>;
}

/** Epoch ms or an ISO string as a local time, with the full value as a tooltip. */
export function Time({ at }: { at: number | string | null | undefined }) {
  if (at === null || at === undefined || at === "") return <span>—</span>;
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return <span>{String(at)}</span>;
  return (
    <time dateTime={d.toISOString()} title={d.toISOString()}>
      {d.toLocaleTimeString()}
    </time>
  );
}

export function ErrorNote({ error }: { error: unknown }) {
  if (error === undefined || error === null) return null;
  return (
    <p class="error" role="alert">
      {error instanceof Error ? error.message : String(error)}
    </p>
  );
}

export function Section(props: { title: string; id?: string; children: ComponentChildren }) {
  const headingId = `${props.id ?? props.title.toLowerCase().replace(/\W+/g, "-")}-h`;
  return (
    <section aria-labelledby={headingId} class="panel">
      <h2 id={headingId}>{props.title}</h2>
      {props.children}
    </section>
  );
}

export interface Answer<T> {
  value: T | undefined;
  error: unknown;
  loading: boolean;
  reload(): void;
}

/** `load()` run now and again whenever one of `deps` changes. */
export function useAnswer<T>(load: () => Promise<T>, deps: readonly unknown[]): Answer<T> {
  const [value, setValue] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [loading, setLoading] = useState(true);
  const [nonce, setNonce] = useState(0);
  useEffect(() => {
    let current = true;
    setLoading(true);
    load().then(
      (v) => {
        if (!current) return;
        setValue(v);
        setError(undefined);
        setLoading(false);
      },
      (e: unknown) => {
        if (!current) return;
        setError(e);
        setLoading(false);
      },
    );
    return () => {
      current = false;
    };
  }, [...deps, nonce]);
  return { value, error, loading, reload: () => setNonce((n) => n + 1) };
}

/** 950, 12.3k, 2.0M: a token count at a glance. */
export function tokens(n: number): string {
  if (n >= 1_000_000) return `${(n / 1_000_000).toFixed(1)}M`;
  return n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : String(n);
}

/** At most `max` characters of a text, with … when cut (the full text is on its own page). */
export function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * Characters that change what a reader sees without showing themselves: C1 controls, the
 * bidi marks, overrides and isolates (U+202E turns `txt.exe` into `exe.txt` on screen),
 * zero-width and other invisible ones. Text a model chose is shown with each written as
 * `\uXXXX`, so an operator reads what will run, not what the model wants them to see.
 */
const INVISIBLE =
  /[\u007f-\u009f\u00ad\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufeff\ufff9-\ufffb]/g;

export function visible(text: string): string {
  return text.replace(INVISIBLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** A tool call's input in full, as indented JSON, every invisible character written out. */
export function callText(input: unknown): string {
  return visible(JSON.stringify(input ?? null, null, 2));
}

export function shortId(id: string): string {
  return id.length > 14 ? `${id.slice(0, 12)}…` : id;
}
