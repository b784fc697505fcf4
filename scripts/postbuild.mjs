// scripts/postbuild.mjs — after tsc: make the CLI executable and copy the plain-JS
// assets tsc does not emit (the in-container executor) next to the compiled code.
import { chmodSync, cpSync, existsSync } from "node:fs";

const executor = "src/sandbox/executor";
if (existsSync(executor)) {
  cpSync(executor, "dist/sandbox/executor", {
    recursive: true,
    filter: (src) => !src.endsWith(".ts"),
  });
}
if (existsSync("dist/cli/main.js")) chmodSync("dist/cli/main.js", 0o755);
