// daemon/ui/outputs.ts — a goal's /output through the dashboard: listed (regular files only,
// walked through folder descriptors, never following a link) and downloaded by a name from
// that listing, opened as the listing reached it (never through a link) and checked to be
// the very file listed; always as an attachment of type application/octet-stream, so a
// goal's x.html is never rendered in the dashboard's origin. The page downloads through a
// one-time ticket (download-tickets.ts), streamed to disk.

import {
  closeSync,
  constants,
  createReadStream,
  type Dir,
  fstatSync,
  lstatSync,
  opendirSync,
  openSync,
} from "node:fs";
import type { ServerResponse } from "node:http";
import { z } from "zod";
import { AidoError, ErrorCode } from "../../errors.js";
import type { Runtime } from "../../kernel/runtime.js";
import { displayName, fdEntryPath, fdPath } from "../../sandbox/untrusted-files.js";
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
 * Regular files under `root`, walked with lstat (links, devices, fifos are skipped), in
 * name order within each folder. A folder's names are read one at a time, so a huge one
 * costs no more than the cap: past MAX_VISITED entries in all, what was not read is left
 * out (and which names those are is the file system's order). Names are read as bytes: one
 * that is not UTF-8, read as a string, no longer reached its file, which was left out in
 * silence; it is listed with an inert name (its other bytes as \xNN). Each folder is opened
 * once (O_DIRECTORY | O_NOFOLLOW) and its entries reached through that descriptor, never
 * by a path again: by path, a goal still running that swapped a folder for a link to a
 * host folder between its lstat and its listing had the host's files listed, with their
 * device and inode, and then served as the ones listed.
 */
function listOutputs(root: string): OutputListing {
  const files: OutputEntry[] = [];
  let visited = 0;
  let truncated = false;
  const walk = (dir: number, rel: Buffer[], prefix: string, depth: number) => {
    if (depth > MAX_DEPTH) return;
    const names: Buffer[] = [];
    let d: Dir;
    try {
      // Names as Buffers: Node does this, though its types know only string names here.
      d = opendirSync(fdPath(dir), { encoding: "buffer" as BufferEncoding });
    } catch {
      return;
    }
    try {
      for (let e = d.readSync(); e !== null; e = d.readSync()) {
        if (visited >= MAX_VISITED) {
          truncated = true;
          break;
        }
        visited++;
        names.push(e.name as unknown as Buffer);
      }
    } catch {
      // the folder went meanwhile: what was read is listed
    } finally {
      d.closeSync();
    }
    names.sort(Buffer.compare);
    for (const n of names) {
      if (files.length >= MAX_LISTED) {
        truncated = true;
        return;
      }
      const at = fdEntryPath(dir, n);
      const st = lstatSync(at, { throwIfNoEntry: false });
      if (!st) continue;
      const path = [...rel, n];
      const name = prefix === "" ? displayName(n) : `${prefix}/${displayName(n)}`;
      if (st.isDirectory()) {
        const sub = openFolder(at);
        if (sub === undefined) continue; // swapped for a link (or removed) since the lstat
        try {
          walk(sub, path, name, depth + 1);
        } finally {
          closeSync(sub);
        }
      } else if (st.isFile()) files.push({ name, names: path, size: st.size, dev: st.dev, ino: st.ino });
    }
  };
  const top = openFolder(root);
  if (top === undefined) return { files, truncated };
  try {
    walk(top, [], "", 0);
  } finally {
    closeSync(top);
  }
  return { files, truncated };
}

/**
 * The listed file, opened the way the listing reached it: each folder on the way through the
 * descriptor of the one before (O_DIRECTORY | O_NOFOLLOW), the file itself O_NOFOLLOW |
 * O_NONBLOCK. By its path, a folder a goal still running swapped for a link to a host folder
 * since the listing was followed, and a host file opened (as the daemon's user: a FIFO's
 * writer let go, a device acting on its open) before the check found it was not the one
 * listed. Undefined when something on the way is not what it was.
 */
function openListed(root: string, entry: OutputEntry): number | undefined {
  let dir = openFolder(root);
  try {
    for (const name of entry.names.slice(0, -1)) {
      if (dir === undefined) return undefined;
      const next = openFolder(fdEntryPath(dir, name));
      closeSync(dir);
      dir = next;
    }
    if (dir === undefined) return undefined;
    const last = entry.names.at(-1) as Buffer;
    return openSync(fdEntryPath(dir, last), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  } finally {
    if (dir !== undefined) closeSync(dir);
  }
}

/** The folder at `path` opened without following a link there; undefined when it is not one now. */
function openFolder(path: string | Buffer): number | undefined {
  try {
    return openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
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
  const fd = openListed(dir, entry);
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
