// daemon/ui/outputs.ts — a goal's /output through the dashboard: listed (regular files only,
// walked through folder descriptors, never following a link) and downloaded by a name from
// that listing, opened as the listing reached it (never through a link) and checked to be
// the very file listed; always as an attachment of type application/octet-stream, so a
// goal's x.html is never rendered in the dashboard's origin. The page downloads through a
// one-time ticket (download-tickets.ts), streamed to disk.

import { closeSync, createReadStream, fstatSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { z } from "zod";
import { AidoError, ErrorCode } from "../../errors.js";
import type { Runtime } from "../../kernel/runtime.js";
import { openWalked, walkUntrusted } from "../../sandbox/untrusted-walk.js";
import { inert } from "../../security/terminal-text.js";
import type { DownloadTickets } from "./download-tickets.js";
import { sendError, sendInvalid, sendJson } from "./http.js";

const MAX_LISTED = 10_000;
/**
 * Entries a listing looks at, whatever they are (files, folders, links, FIFOs): it runs on
 * the daemon's event loop for every listing, ticket and download, and a goal can leave a
 * quarter of a million links in its output (one readdir and lstat each: ~1 s a request).
 */
const MAX_VISITED = 20_000;
const MAX_DEPTH = 16;
/**
 * The longest name a listing gives: a name under each folder it walks into, each of 255
 * bytes at most, which the listing writes with four characters (\xff) when they are not UTF-8.
 */
const MAX_LISTED_NAME = (MAX_DEPTH + 1) * (255 * 4 + 1);

interface OutputEntry {
  /** The path under the output folder as listed: names that are not UTF-8 with \xNN (displayName). */
  name: string;
  /** The names (bytes, as on disk) from the output folder down to the file: how a download reaches it. */
  names: Buffer[];
  size: number;
  dev: number;
  ino: number;
}

interface OutputListing {
  files: OutputEntry[];
  /** Past MAX_LISTED files or MAX_VISITED entries: the rest of the folder is not listed. */
  truncated: boolean;
}

/** The goal's output folder, or not_found (an unknown goal). */
function outputDirOf(rt: Runtime, goalId: string): string {
  return rt.goals.status(goalId).output_dir;
}

/**
 * Regular files under `root` (links, devices, fifos are skipped), in name order within each
 * folder, through folder descriptors with names as bytes (sandbox/untrusted-walk.ts): a
 * name that is not UTF-8 is listed with an inert name (its other bytes as \xNN), and a
 * goal still running that swaps a folder for a link never has the host's files listed.
 */
function listOutputs(root: string): OutputListing {
  const { entries, truncated } = walkUntrusted(root, {
    maxFiles: MAX_LISTED,
    maxVisited: MAX_VISITED,
    maxDepth: MAX_DEPTH,
  });
  const files = entries.map((e) => ({ name: e.shown, names: e.names, size: e.size, dev: e.dev, ino: e.ino }));
  return { files, truncated };
}

/**
 * The listed file of that name; undefined when there is none, or more than one (a name
 * shown with \xNN can be another file's real name: neither is served for it).
 */
function listedFile(dir: string, name: string): OutputEntry | undefined {
  const found = listOutputs(dir).files.filter((e) => e.name === name);
  return found.length === 1 ? found[0] : undefined;
}

export function sendOutputList(res: ServerResponse, rt: Runtime, goalParam: string): void {
  const dir = goalOutputs(res, rt, goalParam);
  if (dir === undefined) return;
  const { files, truncated } = listOutputs(dir);
  sendJson(res, 200, {
    files: files.map(({ name, size }) => ({ name, size })),
    ...(truncated ? { truncated } : {}),
  });
}

const TicketBody = z
  .object({
    goal_id: z.string().min(1).max(128),
    name: z.string().min(1).max(MAX_LISTED_NAME),
  })
  .strict();

/**
 * POST /api/downloads {goal_id, name}: a one-time address for a listed output file
 * (download-tickets.ts), answered {url}; 404 for a goal or a name the listing does not have.
 */
export function sendDownloadTicket(
  res: ServerResponse,
  rt: Runtime,
  body: unknown,
  tickets: DownloadTickets,
  refused: () => void,
): void {
  const parsed = TicketBody.safeParse(body);
  if (!parsed.success) {
    sendInvalid(res, parsed.error);
    return;
  }
  const { goal_id, name } = parsed.data;
  const dir = goalOutputs(res, rt, encodeURIComponent(goal_id));
  if (dir === undefined) return;
  if (listedFile(dir, name) === undefined) {
    refused();
    sendError(res, 404, "not_found", "no such output file");
    return;
  }
  sendJson(res, 200, { url: `/download/${tickets.issue({ goalId: goal_id, name })}` });
}

/**
 * A listed output file of a goal, streamed as an attachment; a HEAD gets the same checks
 * and headers without the body. 404 (and `refused`, audited by the caller) otherwise.
 */
export function sendOutput(
  res: ServerResponse,
  rt: Runtime,
  goalParam: string,
  nameParam: string,
  refused: () => void,
): void {
  const dir = goalOutputs(res, rt, goalParam);
  if (dir === undefined) return;
  let name: string;
  try {
    name = decodeURIComponent(nameParam);
  } catch {
    refused();
    sendError(res, 404, "not_found", "no such output file");
    return;
  }
  const entry = listedFile(dir, name);
  if (entry === undefined) {
    refused();
    sendError(res, 404, "not_found", "no such output file");
    return;
  }
  const fd = openWalked(dir, entry.names);
  if (fd === undefined) {
    // Listed, then not to be had: a goal still running swapped it (or a folder on the way)
    // for a link, removed it, or holds a lease on it. Refused (and audited) as any other
    // output that is not sent.
    refused();
    sendError(res, 404, "not_found", "the output file changed while it was looked up");
    return;
  }
  const st = fstatSync(fd);
  // Replaced since the listing (another file renamed to its name): refuse.
  if (!st.isFile() || st.dev !== entry.dev || st.ino !== entry.ino) {
    closeSync(fd);
    refused();
    sendError(res, 404, "not_found", "the output file changed while it was looked up");
    return;
  }
  // A name a model chose: its bidi overrides written out, so report\u202efdp.exe is not saved
  // as what reads like reportexe.pdf.
  const base = inert(name.split("/").pop() as string);
  res.writeHead(200, {
    "Content-Type": "application/octet-stream",
    "Content-Disposition": `attachment; filename*=UTF-8''${encodeURIComponent(base)}`,
    "Content-Length": st.size,
  });
  // A HEAD gets the GET's headers and checks, and no file read for a body never sent.
  if (res.req.method === "HEAD") {
    closeSync(fd);
    res.end();
    return;
  }
  createReadStream("", { fd, start: 0, end: Math.max(0, st.size - 1) }).pipe(res);
}

function goalOutputs(res: ServerResponse, rt: Runtime, goalParam: string): string | undefined {
  try {
    return outputDirOf(rt, decodeURIComponent(goalParam));
  } catch (e) {
    if (e instanceof AidoError && e.code === ErrorCode.notFound) {
      sendError(res, 404, "not_found", e.message);
      return undefined;
    }
    if (e instanceof URIError) {
      sendError(res, 400, "invalid_input", "goal id: not a valid URL-encoded text");
      return undefined;
    }
    throw e;
  }
}
