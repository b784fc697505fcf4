// sandbox/snapshot-prune.ts — the snapshot store's own cap (sandbox.snapshots_max_mb). The
// quota (quota.ts) bounds what a goal keeps in /workspace and /output; a snapshot copies
// what changed into goals/<id>/snapshots/, outside them, so an agent rewriting a file with
// fresh bytes before every mutating call grew the host folder without bound. Here:
//
//   storeUsage   what the store holds on the host: the apparent size of every file and
//                folder under snapshots/ (what `du -sb` counts);
//   planPrune    when a new snapshot left the store past its cap, which of the oldest
//                snapshots go (never the newest, nor one a restore is about to bring
//                back: the store then stays past its cap until the next snapshot), and
//                the steps that free their space:
//                their list lines and manifests removed, then every pack holding content no
//                remaining snapshot needs (nor a plan's undo: keepHashes) compacted (packs
//                are append-only otherwise).
//
// Each step is durable before the next, and a crash between any two leaves a store that
// restores every snapshot not yet pruned: list lines go before manifests (a crash leaves at
// worst a manifest nobody lists, which the next pruning removes first), manifests before
// packs, and packs are compacted as snapshot-compact.ts says. Pruning runs only when the
// store is past its cap: ordinary snapshots pay one walk of the store's few files.

import { lstatSync, readdirSync, readFileSync, type Stats, unlinkSync } from "node:fs";
import { join } from "node:path";
import { compactionSteps, type PruneStep } from "./snapshot-compact.js";
import { readManifest, writeAtomically } from "./snapshot-manifest.js";
import { indexBytes, type PackRow, readPacks } from "./snapshot-pack-files.js";

/** A snapshot store's files, under goals/<goal_id>/snapshots/. */
export interface StoreFiles {
  dir: string;
  packs: string;
  manifests: string;
  /** snapshots.jsonl: one summary line per snapshot, oldest first. */
  list: string;
}

export function storeFiles(dir: string): StoreFiles {
  return {
    dir,
    packs: join(dir, "packs"),
    manifests: join(dir, "manifests"),
    list: join(dir, "snapshots.jsonl"),
  };
}

/** Apparent bytes of everything under `dir` (folders included, links not followed). */
export function storeUsage(dir: string): number {
  let total = 0;
  const pending = [dir];
  while (pending.length > 0) {
    const d = pending.pop() as string;
    let names: string[];
    try {
      names = readdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw e;
    }
    for (const name of names) {
      let st: Stats;
      try {
        st = lstatSync(join(d, name));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") continue;
        throw e;
      }
      total += st.size;
      if (st.isDirectory()) pending.push(join(d, name));
    }
  }
  return total;
}

export interface PrunePlan {
  /** Snapshot ids removed, oldest first (manifests nobody listed included). */
  pruned: string[];
  /** What the store should hold once every step ran. */
  projectedBytes: number;
  steps: PruneStep[];
}

export interface PruneRequest {
  files: StoreFiles;
  goalId: string;
  /** The snapshot just made: never pruned. */
  newest: string;
  /** Never pruned either (the snapshot a restore is about to bring back). */
  keep?: readonly string[];
  /** Contents kept in the packs whichever snapshots go (what a plan's undo will put back). */
  keepHashes?: ReadonlySet<string>;
  maxBytes: number;
  /** storeUsage now. */
  usedBytes: number;
  /** A fresh pack id for each compacted pack. */
  newPackId(): string;
}

/** What a snapshot needs, for the arithmetic of pruning. */
interface Held {
  id: string;
  readable: boolean;
  hashes: Set<string>;
  manifestBytes: number;
  listLine: string | undefined;
}

/**
 * The oldest snapshots to prune so the store fits in `maxBytes` (all but the newest when
 * nothing less will do), and the steps that do it. Reads every manifest: called only when
 * the store is past its cap.
 */
export async function planPrune(req: PruneRequest): Promise<PrunePlan> {
  const { files } = req;
  const lines = listLines(files.list);
  const onDisk = manifestIds(files.manifests);
  const listed = new Set(lines.keys());
  // Oldest first: the list's order, then the newest (its line may be all that is missing).
  const order = [...lines.keys()].filter((id) => onDisk.has(id) && id !== req.newest);
  order.push(req.newest);
  const held: Held[] = [];
  for (const id of order) held.push(await heldBy(req, id, lines.get(id)));
  // A snapshot whose manifest cannot be read cannot be restored: it goes first.
  held.sort((a, b) => Number(a.readable) - Number(b.readable));
  const orphans = [...onDisk].filter((id) => !listed.has(id) && id !== req.newest).sort();
  let projected = req.usedBytes;
  for (const id of orphans) projected -= sizeOf(join(files.manifests, `${id}.json`));
  // Lines naming a manifest that is gone are dropped from the list too.
  for (const [id, line] of lines) if (!onDisk.has(id)) projected -= lineBytes(line);

  // Which pack serves each content: the last one read (PackStore does the same).
  const packs = readPacks(files.packs);
  const servedBy = new Map<string, string>();
  for (const [pack, rows] of packs) for (const r of rows) servedBy.set(r.hash, pack);
  const refs = new Map<string, number>();
  for (const hash of req.keepHashes ?? []) refs.set(hash, 1);
  for (const h of held) for (const hash of h.hashes) refs.set(hash, (refs.get(hash) ?? 0) + 1);
  const packBytes = (pack: string, rows: readonly PackRow[]): number => {
    const kept = rows.filter((r) => servedBy.get(r.hash) === pack && (refs.get(r.hash) ?? 0) > 0);
    return kept.length === 0 ? 0 : kept.reduce((n, r) => n + r.length, 0) + indexBytes(kept.length);
  };
  const packsNow = [...packs.keys()].reduce((n, pack) => n + packFileBytes(files.packs, pack), 0);
  const packsAfter = () => [...packs].reduce((n, [pack, rows]) => n + packBytes(pack, rows), 0);
  projected += packsAfter() - packsNow;

  const pruned: Held[] = [];
  const kept = new Set([req.newest, ...(req.keep ?? [])]);
  for (const oldest of [...held]) {
    if (projected <= req.maxBytes) break;
    if (kept.has(oldest.id)) continue;
    held.splice(held.indexOf(oldest), 1);
    pruned.push(oldest);
    const before = packsAfter();
    for (const hash of oldest.hashes) refs.set(hash, (refs.get(hash) ?? 1) - 1);
    projected -= oldest.manifestBytes + lineBytes(oldest.listLine) + before - packsAfter();
  }

  const steps: PruneStep[] = [];
  const keep = new Set(held.map((h) => h.id));
  if (pruned.length > 0 || [...lines.keys()].some((id) => !onDisk.has(id))) {
    const text = [...lines].filter(([id]) => keep.has(id)).map(([, line]) => `${line}\n`);
    steps.push({
      what: "rewrite snapshots.jsonl",
      run: () => writeAtomically(files.list, text.join(""), true),
    });
  }
  for (const id of [...orphans, ...pruned.map((h) => h.id)]) {
    steps.push({ what: `remove manifest ${id}`, run: () => unlinkSync(join(files.manifests, `${id}.json`)) });
  }
  for (const [pack, rows] of packs) {
    const kept = rows.filter((r) => servedBy.get(r.hash) === pack && (refs.get(r.hash) ?? 0) > 0);
    if (kept.length < rows.length) steps.push(...compactionSteps(files.packs, pack, kept, req.newPackId));
  }
  return { pruned: [...orphans, ...pruned.map((h) => h.id)], projectedBytes: projected, steps };
}

/** The content hashes a snapshot names; a manifest that cannot be read names none (it goes first). */
async function heldBy(req: PruneRequest, id: string, listLine: string | undefined): Promise<Held> {
  const file = join(req.files.manifests, `${id}.json`);
  const manifestBytes = sizeOf(file);
  try {
    const m = await readManifest(file, req.goalId, id);
    const hashes = new Set(m.entries.flatMap((e) => (e.h ? [e.h] : [])));
    return { id, readable: true, hashes, manifestBytes, listLine };
  } catch {
    return { id, readable: false, hashes: new Set(), manifestBytes, listLine };
  }
}

/** snapshots.jsonl as id -> its line, in order; lines that do not parse are dropped. */
function listLines(file: string): Map<string, string> {
  const out = new Map<string, string>();
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const id = (JSON.parse(line) as { id?: unknown }).id;
      if (typeof id === "string") out.set(id, line);
    } catch {
      // a torn last line (a crash while appending): its snapshot's manifest is an orphan
    }
  }
  return out;
}

function manifestIds(dir: string): Set<string> {
  try {
    return new Set(
      readdirSync(dir)
        .filter((n) => /^snap_[0-9a-z]{6,40}\.json$/.test(n))
        .map((n) => n.slice(0, -5)),
    );
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return new Set();
    throw e;
  }
}

function sizeOf(file: string): number {
  try {
    return lstatSync(file).size;
  } catch {
    return 0;
  }
}

/** A pack's two files as they are on disk now. */
function packFileBytes(dir: string, pack: string): number {
  return sizeOf(join(dir, `${pack}.pack`)) + sizeOf(join(dir, `${pack}.idx`));
}

/** Bytes of a list line with its newline. */
const lineBytes = (line: string | undefined): number =>
  line === undefined ? 0 : Buffer.byteLength(line) + 1;
