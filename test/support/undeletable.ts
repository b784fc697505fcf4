// test/support/undeletable.ts — an entry the host cannot remove, standing for whatever a
// task leaves in a folder the host sweeps that will not go. As root an immutable file
// (chattr +i, refused even to root); otherwise a folder without write permission around it.
// freezeFolder does the same to a whole folder. The returned functions undo it.

import { execFileSync } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export function makeUndeletable(file: string): () => void {
  writeFileSync(file, "stuck\n");
  if (process.getuid?.() === 0) {
    execFileSync("chattr", ["+i", file]);
    return () => execFileSync("chattr", ["-i", file]);
  }
  chmodSync(dirname(file), 0o555);
  return () => chmodSync(dirname(file), 0o755);
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
