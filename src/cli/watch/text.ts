// cli/watch/text.ts — how the watch writes what events carry: on one line, bounded, inert
// (a model can choose a reason, a description, a path, a host), and sizes and times at a glance.

import type { RuntimeEvent } from "../../kernel/events.js";
import { inert } from "../../security/terminal-text.js";

/** The node a cluster's event came from (its `node`), when it names one. */
export function nodeOf(event: RuntimeEvent): string | undefined {
  const node = (event as { node?: unknown }).node;
  return typeof node === "string" && node !== "" ? node : undefined;
}

/**
 * `text` on one line, at most `max` characters, as inert text: reasons and descriptions can
 * carry a path a model chose, and an ESC in one would retitle or clear the operator's terminal.
 */
export function oneLine(text: string, max: number): string {
  const flat = inert(text.replace(/\s+/g, " ").trim());
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/**
 * The most of a goal's text, error or an approval's summary the view keeps: in a cluster
 * they come from Redis (any size its writer chose), and the view is copied at every event.
 */
export const KEPT_TEXT = 4_000;

export const kept = (text: string): string =>
  text.length > KEPT_TEXT ? `${text.slice(0, KEPT_TEXT)}…` : text;

export const hostPort = (host: string, port: number): string => oneLine(`${host}:${port}`, 80);

/** 512 B, 1.5 kB, 64.0 MB: the size of a transfer at a glance. */
export function sizeOf(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(1)} kB`;
  if (bytes < 1e9) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${(bytes / 1e9).toFixed(1)} GB`;
}

export const secondsOf = (ms: number): string => (ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`);
