// scripts/build-ui.mjs — bundle the dashboard's page (src/ui/web/) into the files the
// daemon's UI server serves from dist/ui/: index.html, app.js (Preact and the app, one
// ES module, minified), app.css, and signin.js (the sign-in page's script, which keeps
// the page key). No inline script or style and nothing fetched
// from elsewhere, so the page runs under the server's strict Content-Security-Policy.
// `npm run build` runs it; the ui tests run it with --if-stale (it is ~100 ms) so
// `npx vitest run test/ui` works from a fresh checkout.
//
//   node scripts/build-ui.mjs [--if-stale]

import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "src", "ui", "web");
const out = join(root, "dist", "ui");
const OUTPUTS = ["index.html", "app.js", "app.css", "signin.js"];

/** Newest modification time (ms) of the page's sources, this script and package.json (the version). */
function newestSource() {
  let newest = Math.max(
    statSync(fileURLToPath(import.meta.url)).mtimeMs,
    statSync(join(root, "package.json")).mtimeMs,
  );
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  walk(src);
  return newest;
}

/** Oldest output's modification time, or 0 when one is missing. */
function oldestOutput() {
  let oldest = Number.POSITIVE_INFINITY;
  for (const f of OUTPUTS) {
    try {
      oldest = Math.min(oldest, statSync(join(out, f)).mtimeMs);
    } catch {
      return 0;
    }
  }
  return oldest;
}

const ifStale = process.argv.includes("--if-stale");
if (ifStale && oldestOutput() >= newestSource()) process.exit(0);

const started = Date.now();
mkdirSync(out, { recursive: true });
// The daemon serves the page of its own package, so the package's version is the daemon's.
const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
await build({
  entryPoints: { app: join(src, "main.tsx"), signin: join(src, "signin.ts") },
  outdir: out,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  jsx: "automatic",
  jsxImportSource: "preact",
  legalComments: "none",
  define: { AIDO_VERSION: JSON.stringify(version) },
  logLevel: "warning",
});
await build({
  entryPoints: { app: join(src, "app.css") },
  outdir: out,
  bundle: true,
  minify: true,
  logLevel: "warning",
});
copyFileSync(join(src, "index.html"), join(out, "index.html"));
console.error(`build-ui: dist/ui/ (${OUTPUTS.join(", ")}) in ${Date.now() - started} ms`);
