// test/support/undeletable.ts — an entry the host cannot remove, standing for whatever a
// task leaves in a folder the host sweeps that will not go: an immutable file (chattr +i,
// refused even to root). Only root can make one: a folder without write permission around
// it no longer stands in, since a removal by a user who is not root makes that user's own
// folders its to empty again (sandbox/folders.ts), so the tests that need one run as root
// (`canMakeUndeletable`). freezeFolder makes a folder nothing can be made in or removed from
// (what is inside its subfolders still can), for a folder the removal never enters itself.
// The returned functions undo it.

import { execFileSync } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";

/** Whether makeUndeletable can make one here (as root). */
export const canMakeUndeletable = process.getuid?.() === 0;

export function makeUndeletable(file: string): () => void {
  if (!canMakeUndeletable)
    throw new Error(
      `makeUndeletable(${file}): only root can make an entry a removal cannot remove (chattr +i)`,
    );
  writeFileSync(file, "stuck\n");
  execFileSync("chattr", ["+i", file]);
  return () => execFileSync("chattr", ["-i", file]);
}

/**
 * A folder in which nothing can be made or removed any more (what is inside its subfolders
 * still can): as root an immutable folder, otherwise one without write permission.
 */
export function freezeFolder(dir: string): () => void {
  if (process.getuid?.() === 0) {
    execFileSync("chattr", ["+i", dir]);
    return () => execFileSync("chattr", ["-i", dir]);
  }
  chmodSync(dir, 0o555);
  return () => chmodSync(dir, 0o755);
}
