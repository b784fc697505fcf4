// cluster/job-inputs.ts — a goal's input files as they travel in its BullMQ job. The node
// that takes the submission checks the inputs and copies them with the same confined
// copier a local goal uses (sandbox/inputs.ts: no link followed, no fifo, capped), into a
// staging folder of its own; that copy is what is packed (files, folders and links, modes
// without setuid/setgid bits). The owner unpacks it under its own inbox
// ($AIDO_HOME/inbox/cluster-<goal>/), from where the goal's admission and copy take it like
// any local input, and removes it when the goal ended. A job carries at most
// MAX_JOB_INPUT_BYTES: Redis holds every queued job in memory, so larger inputs belong on a
// path every node reads. Unpacking trusts nothing of the job: each path is relative, made of
// plain names, inside a folder an earlier entry of the job made (never through a link it
// planted), and created with O_EXCL under the goal's own folder; a job larger than a node
// packs is refused before anything is written.

import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config.js";
import { AidoError, ErrorCode } from "../errors.js";
import { removeTreeNoFollow } from "../sandbox/folders.js";
import { type CheckedInput, copyInputs, INBOX, inputRules } from "../sandbox/inputs.js";
import { ensurePrivateDir } from "../security/private-home.js";

/** What a job may carry of input files, all inputs together (base64 grows it by a third). */
export const MAX_JOB_INPUT_BYTES = 8 * 1024 * 1024;

export type PackedEntry =
  | { path: string; type: "dir"; mode: number }
  | { path: string; type: "file"; mode: number; data: string }
  | { path: string; type: "link"; target: string };

/** The top-level names (one per input) and every entry under them, parents first. */
export interface PackedInputs {
  names: string[];
  entries: PackedEntry[];
}

/** Copy the checked inputs (confined) and pack the copy; refused above the job's cap. */
export async function packInputs(config: Config, inputs: readonly CheckedInput[]): Promise<PackedInputs> {
  if (inputs.length === 0) return { names: [], entries: [] };
  const outbox = join(config.home, "cluster-outbox");
  ensurePrivateDir(outbox);
  const staging = join(outbox, randomBytes(8).toString("hex"));
  await fsp.mkdir(staging, { mode: 0o700 });
  try {
    await copyInputs(inputs, staging, inputRules(config));
    const entries: PackedEntry[] = [];
    const budget = { bytes: 0 };
    for (const input of inputs) await packTree(staging, input.name, entries, budget);
    return { names: inputs.map((i) => i.name), entries };
  } finally {
    removeTreeNoFollow(staging);
  }
}

async function packTree(
  root: string,
  rel: string,
  out: PackedEntry[],
  budget: { bytes: number },
): Promise<void> {
  const full = join(root, rel);
  const st = await fsp.lstat(full);
  const mode = st.mode & 0o777;
  if (st.isSymbolicLink()) {
    out.push({ path: rel, type: "link", target: await fsp.readlink(full) });
  } else if (st.isDirectory()) {
    out.push({ path: rel, type: "dir", mode });
    for (const name of (await fsp.readdir(full)).sort()) await packTree(root, `${rel}/${name}`, out, budget);
  } else if (st.isFile()) {
    budget.bytes += st.size;
    if (budget.bytes > MAX_JOB_INPUT_BYTES) {
      throw new AidoError(
        ErrorCode.invalidInput,
        `inputs: more than ${MAX_JOB_INPUT_BYTES / (1024 * 1024)} MiB in all; in cluster mode input files travel in the goal's job through Redis (at ${rel}). Put large inputs on a path every node can read and name it in the goal instead`,
        { field: "inputs", limit_bytes: MAX_JOB_INPUT_BYTES },
      );
    }
    out.push({ path: rel, type: "file", mode, data: (await fsp.readFile(full)).toString("base64") });
  }
}

/** Where the owner unpacks a goal's inputs (inside the inbox, so admission accepts them). */
export function unpackDir(config: Config, goalId: string): string {
  return join(config.home, INBOX, `cluster-${goalId}`);
}

/** Unpack a job's inputs; returns the host paths to submit as the goal's inputs. */
export async function unpackInputs(config: Config, goalId: string, packed: PackedInputs): Promise<string[]> {
  if (packed.names.length === 0) return [];
  checkJobSize(config, packed);
  const inbox = join(config.home, INBOX);
  ensurePrivateDir(inbox);
  const dir = unpackDir(config, goalId);
  removeTreeNoFollow(dir);
  await fsp.mkdir(dir, { mode: 0o700 });
  const tops = new Set(packed.names.map((n) => plainPath(n, 1)));
  // The folders this job made: an entry goes only into one of them (or the goal's folder),
  // never through a link or a file an earlier entry planted.
  const dirs = new Set<string>([""]);
  for (const e of packed.entries) {
    const rel = plainPath(e.path, 64);
    if (!tops.has(rel.split("/")[0] as string)) bad(e.path, "is not under one of the job's inputs");
    if (!dirs.has(rel.split("/").slice(0, -1).join("/")))
      bad(e.path, "is not inside a folder of the job (its parent is not a folder entry before it)");
    const target = join(dir, rel);
    if (e.type === "dir") {
      await fsp.mkdir(target, { mode: (e.mode & 0o777) | 0o700 });
      dirs.add(rel);
    } else if (e.type === "file")
      await fsp.writeFile(target, Buffer.from(e.data, "base64"), {
        flag: "wx",
        mode: (e.mode & 0o777) | 0o600,
      });
    else if (e.type === "link") await fsp.symlink(e.target, target);
    else bad((e as { path: string }).path, "has an unknown entry type");
  }
  return [...tops].map((n) => join(dir, n));
}

/**
 * Before anything is written: a job holds no more than a submitting node packs (entries
 * within this node's inputs_max_files, files within MAX_JOB_INPUT_BYTES), so a forged one
 * cannot fill this node's disk before admission counts what was unpacked.
 */
function checkJobSize(config: Config, packed: PackedInputs): void {
  const entries = Array.isArray(packed.entries) ? packed.entries : [];
  if (entries.length > config.sandbox.inputsMaxFiles)
    bad(`(${entries.length} entries)`, `exceeds this node's ${config.sandbox.inputsMaxFiles} input entries`);
  let bytes = 0;
  for (const e of entries) {
    if (e.type !== "file") continue;
    if (typeof e.data !== "string") bad(e.path, "has no file data");
    bytes += Buffer.byteLength(e.data, "base64");
    if (bytes > MAX_JOB_INPUT_BYTES)
      bad(e.path, `takes the job's files past ${MAX_JOB_INPUT_BYTES / (1024 * 1024)} MiB`);
  }
}

export function removeUnpacked(config: Config, goalId: string): void {
  removeTreeNoFollow(unpackDir(config, goalId));
}

/** A relative path of plain names ("a/b.txt"): no "", ".", "..", no leading "/". */
function plainPath(p: unknown, maxDepth: number): string {
  if (typeof p !== "string" || p === "") bad(String(p), "is not a path");
  const parts = (p as string).split("/");
  if (parts.length > maxDepth || parts.some((s) => s === "" || s === "." || s === ".." || s.includes("\0")))
    bad(p as string, "is not a relative path of plain names");
  return p as string;
}

function bad(path: string, why: string): never {
  throw new AidoError(ErrorCode.invalidInput, `the goal's job carries an input entry "${path}" that ${why}`, {
    field: "inputs",
  });
}
