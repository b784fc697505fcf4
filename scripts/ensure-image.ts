// scripts/ensure-image.ts — `npx tsx scripts/ensure-image.ts [--offline] [--force]`: make
// sure the sandbox image exists and matches its recipe (sandbox/image.ts decides; an up
// to date image costs one inspect). Used by `npm test` (scripts/test.sh) and run-aido.sh.
// Prints every build step; on failure says what went wrong and exits 1 (2 for a broken
// configuration), never with a stack trace.

import { loadConfig } from "../src/config.js";
import { AidoError, ErrorCode, errorMessage } from "../src/errors.js";
import { ensureImage } from "../src/sandbox/image.js";

const args = process.argv.slice(2);
for (const a of args) {
  if (a !== "--offline" && a !== "--force") {
    process.stderr.write(`ensure-image: unknown option ${a} (known: --offline, --force)\n`);
    process.exit(2);
  }
}

const log = (m: string) => process.stdout.write(`ensure-image: ${m}\n`);

try {
  const config = loadConfig();
  const r = await ensureImage(config, {
    onProgress: log,
    offline: args.includes("--offline"),
    force: args.includes("--force"),
  });
  log(
    r.source === "cached"
      ? `${r.image} is up to date`
      : `${r.image} ready (base layer: ${r.source}, ${(r.durationMs / 1000).toFixed(1)} s)`,
  );
} catch (e) {
  process.stderr.write(`ensure-image: could not build the sandbox image: ${errorMessage(e)}\n`);
  process.exit(e instanceof AidoError && e.code === ErrorCode.configInvalid ? 2 : 1);
}
