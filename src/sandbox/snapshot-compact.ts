// sandbox/snapshot-compact.ts — rewriting a snapshot pack to hold only the contents still
// needed, once pruning (snapshot-prune.ts) removed the snapshots that needed the rest.
// Packs are append-only while in use; compaction makes a new one and then drops the old,
// in four steps, each durable (fsynced, and its folder fsynced) before the next:
//   1. the contents kept are copied, each checked against its hash, into a new pack under
//      a temp name, fsynced, and renamed to <new id>.pack;
//   2. its index is written the same way (temp, fsync, rename, folder fsync);
//   3. the old index is removed;
//   4. the old pack is removed.
// Whatever step a crash stops at, every kept content is in a pack whose index is on disk:
// before 2 the old pack serves it and the new pack has no index (a leftover the next
// snapshot removes); between 2 and 3 both serve it (the store reads the later-named pack;
// the next pruning drops the duplicate); after 3 the new pack serves it and the old one is
// an unindexed leftover. A content that fails its hash check is left out: no snapshot
// could restore it from the old pack either.

import { createHash } from "node:crypto";
import {
  closeSync,
  constants,
  fsyncSync,
  ftruncateSync,
  openSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { CHUNK, fsyncDir, NEW_FILE, type PackRow, tmpPath, writeIndexFile } from "./snapshot-pack-files.js";

/** One durable change, in the order it must happen. */
export interface PruneStep {
  what: string;
  run(): Promise<void> | void;
}

/** The steps that leave pack `pack` (in `dir`) holding only `kept`: removed outright when that is nothing. */
export function compactionSteps(
  dir: string,
  pack: string,
  kept: readonly PackRow[],
  newPackId: () => string,
): PruneStep[] {
  const remove: PruneStep[] = [
    { what: `remove ${pack}.idx`, run: () => removeIndexFile(dir, pack) },
    { what: `remove ${pack}.pack`, run: () => removePackFile(dir, pack) },
  ];
  if (kept.length === 0) return remove;
  const id = newPackId();
  let copied: PackRow[] = [];
  return [
    {
      what: `copy ${kept.length} contents of ${pack} into ${id}.pack`,
      run: () => {
        copied = copyIntoNewPack(dir, pack, kept, id);
      },
    },
    { what: `write ${id}.idx`, run: () => writeIndexFile(dir, id, copied) },
    ...remove,
  ];
}

/**
 * Copy the contents `rows` of pack `from` into a new pack `<id>.pack` (under a temp name,
 * fsynced, then renamed), each checked against its hash on the way; a damaged content is
 * left out (no snapshot could restore it anyway). Returns the new pack's rows.
 */
function copyIntoNewPack(dir: string, from: string, rows: readonly PackRow[], id: string): PackRow[] {
  const src = openSync(join(dir, `${from}.pack`), constants.O_RDONLY | constants.O_NOFOLLOW);
  const tmp = tmpPath(dir);
  const out = openSync(tmp, NEW_FILE, 0o600);
  const kept: PackRow[] = [];
  const chunk = Buffer.allocUnsafe(CHUNK);
  let at = 0;
  try {
    for (const r of [...rows].sort((a, b) => a.offset - b.offset)) {
      const h = createHash("sha256");
      let done = 0;
      while (done < r.length) {
        const n = readSync(src, chunk, 0, Math.min(CHUNK, r.length - done), r.offset + done);
        if (n === 0) break;
        h.update(chunk.subarray(0, n));
        let w = 0;
        while (w < n) w += writeSync(out, chunk, w, n - w, at + done + w);
        done += n;
      }
      if (done === r.length && h.digest("hex") === r.hash) {
        kept.push({ hash: r.hash, offset: at, length: r.length });
        at += r.length;
      }
    }
    ftruncateSync(out, at); // drop the bytes of a damaged content written last
    fsyncSync(out);
  } catch (e) {
    closeSync(out);
    unlinkSync(tmp);
    throw e;
  } finally {
    closeSync(src);
  }
  closeSync(out);
  renameSync(tmp, join(dir, `${id}.pack`));
  return kept;
}

/** Remove a pack's index (the folder fsynced after), then, as its own step, the pack. */
function removeIndexFile(dir: string, pack: string): void {
  unlinkSync(join(dir, `${pack}.idx`));
  fsyncDir(dir);
}

function removePackFile(dir: string, pack: string): void {
  unlinkSync(join(dir, `${pack}.pack`));
}
