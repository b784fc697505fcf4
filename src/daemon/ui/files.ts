// daemon/ui/files.ts — files in and out of goals through the dashboard.
// In: POST /api/goals carries the input files in its JSON body. They are written into a
// fresh folder under $AIDO_HOME/inbox/ (the one place goal.submit takes inputs from
// inside AIDO_HOME) and submitted with goal.submit, so they pass the same checks, caps
// and audit as `aido submit --input`. The folder is removed once the goal has copied
// them (goal.started), ended, or the submit was refused; at the next daemon start when
// this process ended first (sweepUploads).
// Out: a finished goal's /output, listed (regular files only, walked without following
// links) and downloaded by a name from that listing, opened without following links and
// checked to be the very file listed; always as an attachment of type
// application/octet-stream, so a goal's x.html is never rendered in the dashboard's origin.
// The page downloads through a one-time ticket (download-tickets.ts), streamed to disk.

import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  createReadStream,
  type Dir,
  fstatSync,
  lstatSync,
  mkdirSync,
  opendirSync,
  openSync,
  readdirSync,
  realpathSync,
  writeSync,
} from "node:fs";
import type { ServerResponse } from "node:http";
import { dirname, join } from "node:path";
import { z } from "zod";
import { AidoError, ErrorCode } from "../../errors.js";
import type { Runtime } from "../../kernel/runtime.js";
import { removeTreeNoFollow } from "../../sandbox/folders.js";
import { INBOX } from "../../sandbox/inputs.js";
import { displayName, fdEntryPath, fdPath } from "../../sandbox/untrusted-files.js";
import { ensurePrivateDir } from "../../security/private-home.js";
import { inert } from "../../security/terminal-text.js";
import { toRpcError } from "../errors.js";
import type { MethodRunner } from "../methods.js";
import { parseParams } from "../schemas.js";
import type { DownloadTickets } from "./download-tickets.js";
import { sendError, sendJson } from "./http.js";
import { DECIDED_BY, httpClient } from "./rpc.js";

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** Staging folders under inbox/: ui-<random>. */
const STAGING_PREFIX = "ui-";
const MAX_INPUTS = 256;

const UploadBody = z.strictObject({
  goal: z.string(),
  manifest: z.string().optional(),
  inputs: z
    .array(z.strictObject({ name: z.string(), content_base64: z.string().regex(BASE64, "must be base64") }))
    .max(MAX_INPUTS)
    .optional(),
});

interface UploadDeps {
  config: { home: string };
  rt: Runtime;
  run: MethodRunner;
  log(m: string): void;
}

/** Why `name` cannot be an input's name, or undefined when it can (a plain file name). */
export function badInputName(name: string): string | undefined {
  if (name === "" || name === "." || name === "..") return "must be a file name";
  if (Buffer.byteLength(name) > 255) return "longer than 255 bytes";
  if (name.includes("/")) return "must not contain /";
  if (/[\u0000-\u001f\u007f]/.test(name)) return "must not contain control characters";
  return undefined;
}

export async function submitWithUploads(body: unknown, deps: UploadDeps, res: ServerResponse): Promise<void> {
  const parsed = UploadBody.safeParse(body);
  if (!parsed.success) {
    return sendInvalid(res, parsed.error);
  }
  const { goal, manifest, inputs = [] } = parsed.data;
  const seen = new Set<string>();
  for (const [n, input] of inputs.entries()) {
    const why =
      badInputName(input.name) ?? (seen.has(input.name) ? "a second input of that name" : undefined);
    if (why) return sendError(res, 400, "invalid_input", `inputs.${n}.name: ${why}`);
    seen.add(input.name);
  }
  // The goal's own checks first (goal text, manifest), so a bad submit writes nothing.
  try {
    parseParams("goal.submit", { goal, ...(manifest !== undefined ? { manifest } : {}) });
  } catch (e) {
    return sendJson(res, 400, { error: toRpcError(e, deps.log) });
  }
  const staged = inputs.length > 0 ? stage(deps.config.home, inputs) : undefined;
  const params = {
    goal,
    ...(manifest !== undefined ? { manifest } : {}),
    ...(staged ? { inputs: staged.paths } : {}),
  };
  // Listening from before the submit: the goal may copy its inputs and start at once.
  const cleanup = staged ? removeOnceCopied(deps.rt, staged.dir) : undefined;
  let goalId: string;
  try {
    const r = (await deps.run("goal.submit", params, httpClient(res), () => {}, DECIDED_BY)) as {
      goal_id: string;
    };
    goalId = r.goal_id;
  } catch (e) {
    cleanup?.(undefined);
    return sendJson(res, 400, { error: toRpcError(e, deps.log) });
  }
  cleanup?.(goalId);
  sendJson(res, 200, { goal_id: goalId });
}

function stage(
  home: string,
  inputs: { name: string; content_base64: string }[],
): { dir: string; paths: string[] } {
  const inbox = join(home, INBOX);
  ensurePrivateDir(inbox);
  const dir = join(inbox, `${STAGING_PREFIX}${randomBytes(8).toString("hex")}`);
  mkdirSync(dir, { mode: 0o700 });
  try {
    const paths = inputs.map((input) => {
      const path = join(dir, input.name);
      const fd = openSync(
        path,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        0o600,
      );
      try {
        writeSync(fd, Buffer.from(input.content_base64, "base64"));
      } finally {
        closeSync(fd);
      }
      return path;
    });
    return { dir, paths };
  } catch (e) {
    removeTreeNoFollow(dir);
    throw e;
  }
}

/**
 * Remove the staging folder once its goal has copied it (goal.started comes after the
 * copy) or ended (a failed copy, a cancel while queued). Listens from before the submit;
 * the returned function names the goal (undefined: the submit was refused).
 */
function removeOnceCopied(rt: Runtime, dir: string): (goalId: string | undefined) => void {
  const past = new Set<string>();
  let goal: string | undefined;
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    off();
    removeTreeNoFollow(dir);
  };
  const off = rt.events.subscribe({ types: ["goal.started", "goal.finished"] }, (ev) => {
    if (ev.goalId === null) return;
    if (goal === undefined) past.add(ev.goalId);
    else if (ev.goalId === goal) finish();
  });
  return (goalId) => {
    goal = goalId;
    if (goalId === undefined || past.has(goalId)) finish();
  };
}

/**
 * At daemon start: staging folders a previous process left. One that a goal which has not
 * ended may still copy from (queued goals start as the Runtime opens) stays until that
 * goal has started or ended (as above); any other is removed.
 */
export function sweepUploads(home: string, rt: Runtime): void {
  let inbox: string;
  let names: string[];
  try {
    inbox = realpathSync(join(home, INBOX)); // the goals' rows hold resolved paths
    names = readdirSync(inbox).filter((n) => n.startsWith(STAGING_PREFIX));
  } catch {
    return; // no inbox yet
  }
  const waiting = new Map<string, string>(); // staging folder -> the goal that copies from it
  for (const [goalId, paths] of rt.goals.unfinishedInputs())
    for (const p of paths) if (dirname(p) !== p) waiting.set(dirname(p), goalId);
  for (const n of names) {
    const dir = join(inbox, n);
    const goalId = waiting.get(dir);
    if (goalId === undefined) removeTreeNoFollow(dir);
    else removeOnceCopied(rt, dir)(goalId);
  }
}

// ---------------------------------------------------------------- outputs

const MAX_LISTED = 10_000;
/**
 * Entries a listing looks at, whatever they are (files, folders, links, FIFOs): it runs on
 * the daemon's event loop for every listing, ticket and download, and a goal can leave a
 * quarter of a million links in its output (one readdir and lstat each: ~1 s a request).
 */
const MAX_VISITED = 20_000;
const MAX_DEPTH = 16;

interface OutputEntry {
  /** The path under the output folder as listed: names that are not UTF-8 with \xNN (displayName). */
  name: string;
  /**
   * The file's path as bytes, what the name was on disk. A download opens it by this path and
   * serves it only when it is the file the walk (through descriptors) found: same device and inode.
   */
  path: Buffer;
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

const SLASH = Buffer.from("/");

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
  const walk = (dir: number, rel: Buffer, prefix: string, depth: number) => {
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
      const path = Buffer.concat([rel, SLASH, n]);
      const name = prefix === "" ? displayName(n) : `${prefix}/${displayName(n)}`;
      if (st.isDirectory()) {
        const sub = openFolder(at);
        if (sub === undefined) continue; // swapped for a link (or removed) since the lstat
        try {
          walk(sub, path, name, depth + 1);
        } finally {
          closeSync(sub);
        }
      } else if (st.isFile()) files.push({ name, path, size: st.size, dev: st.dev, ino: st.ino });
    }
  };
  const top = openFolder(root);
  if (top === undefined) return { files, truncated };
  try {
    walk(top, Buffer.from(root), "", 0);
  } finally {
    closeSync(top);
  }
  return { files, truncated };
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

/** 400 naming the body's first problem and where it is. */
function sendInvalid(res: ServerResponse, error: z.ZodError): void {
  const i = error.issues[0];
  const field = i
    ? [...i.path, ...(i.code === "unrecognized_keys" ? [i.keys[0]] : [])].join(".") || "body"
    : "body";
  sendError(res, 400, "invalid_input", `${field}: ${i?.message ?? "invalid"}`);
}

const TicketBody = z
  .object({
    goal_id: z.string().min(1).max(128),
    name: z.string().min(1).max(4096),
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
  let fd: number;
  try {
    fd = openSync(entry.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    // Listed, then not to be had: a goal still running swapped it for a link, removed it, or
    // holds a lease on it. Refused (and audited) as any other output that is not sent.
    refused();
    sendError(res, 404, "not_found", "the output file changed while it was looked up");
    return;
  }
  const st = fstatSync(fd);
  // A folder on the way swapped for a link since the listing leads elsewhere: refuse.
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
