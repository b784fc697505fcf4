// scripts/postbuild.mjs — after tsc: make the CLI executable and bundle the in-container
// executor (src/sandbox/executor/, TypeScript) into the one CommonJS file the sandbox image
// carries, dist/sandbox/executor/executor.cjs, with the options image.ts uses from src/.
import { chmodSync, existsSync } from "node:fs";
import { buildSync } from "esbuild";
import { EXECUTOR_BUNDLE_OPTIONS } from "../dist/sandbox/image.js";

buildSync({
  ...EXECUTOR_BUNDLE_OPTIONS,
  entryPoints: ["src/sandbox/executor/main.ts"],
  outfile: "dist/sandbox/executor/executor.cjs",
});
if (existsSync("dist/cli/main.js")) chmodSync("dist/cli/main.js", 0o755);
