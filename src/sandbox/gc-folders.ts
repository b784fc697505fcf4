// sandbox/gc-folders.ts — the folder half of the backend's gc(): goal folders of goals
// that ended and were not touched for the TTL, and warm-pool folders no process owns.
// Removal never follows a link (folders.ts). What a goal left in its folder can make its
// removal fail; that one folder is reported and tried again at the next sweep, and never
// keeps the sweep from the others (one failure stopped the whole pass, every pass).

import { existsSync, lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { errorMessage } from "../errors.js";
import type { GcReport } from "./backend.js";
import { foldersUnder, removeTreeNoFollow } from "./folders.js";

type FolderReport = Pick<GcReport, "removedFolders" | "failedFolders">;

/** Remove one folder of a sweep: in `removedFolders` when it went, in `failedFolders` (with why) when not. */
export function removeSwept(path: string, report: FolderReport): boolean {
  try {
    removeTreeNoFollow(path);
  } catch (e) {
    report.failedFolders.push({ path, error: errorMessage(e) });
    return false;
  }
  report.removedFolders.push(path);
  return true;
}

/**
 * Goal folders under `goalsDir` that `keep` does not claim and that were not touched for
 * `ttlSeconds` (a symlinked goal folder is judged, and removed, as the link itself).
 * `failed` holds the folders whose removal failed at an earlier sweep of this process: they
 * were judged old enough then, and are tried again whatever their times say now (the failed
 * removal emptied part of them, which made them look touched just then, and the next sweeps
 * left them for another whole TTL).
 */
export async function sweepGoalFolders(
  goalsDir: string,
  ttlSeconds: number,
  nowSeconds: number,
  keep: (goalId: string) => boolean | Promise<boolean>,
  report: FolderReport,
  failed: Set<string> = new Set(),
): Promise<void> {
  if (!existsSync(goalsDir)) return;
  const seen = new Set<string>();
  for (const name of readdirSync(goalsDir)) {
    const root = join(goalsDir, name);
    seen.add(root);
    if (await keep(name)) {
      failed.delete(root);
      continue;
    }
    if (failed.has(root)) {
      if (removeSwept(root, report)) failed.delete(root);
      continue;
    }
    const f = foldersUnder(root);
    let newest = 0;
    // Gone while it was asked whether its goal is live (its removal, another sweep): nothing to do.
    const top = lstatSync(root, { throwIfNoEntry: false });
    if (top === undefined) continue;
    const parts = top.isSymbolicLink() ? [f.root] : [f.root, f.workspace, f.output];
    for (const p of parts) {
      try {
        newest = Math.max(newest, lstatSync(p).mtimeMs / 1000);
      } catch {
        // missing part of the layout
      }
    }
    if (nowSeconds - newest < ttlSeconds) continue;
    if (!removeSwept(root, report)) failed.add(root);
  }
  for (const root of failed) if (!seen.has(root)) failed.delete(root);
}

/** Warm-pool folders no slot of this process owns (left by a process that died). */
export function sweepPoolFolders(poolDir: string, owned: ReadonlySet<string>, report: FolderReport): void {
  if (!existsSync(poolDir)) return;
  for (const id of readdirSync(poolDir)) if (!owned.has(id)) removeSwept(join(poolDir, id), report);
}
