// Red team: an operator's policy rule whose kind is misspelt. `tool: NAME` rules must name a
// real tool, but a rule whose KIND is misspelt ("Tool: file_write", "Path: /workspace/
// secrets/**", "file-write: ...", a missing colon) did not look kinded at all, so it was
// read as an exec pattern for a program called "Tool:" — valid, and matching nothing. A deny
// rule protected nothing and a confirm rule asked nobody, silently. Each must be a config
// error naming the rule, like a misspelt tool name (every `aido` command exits 2).

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { captureIo } from "../cli/io.js";
import { makeTempHome, type TempHome } from "../support/home.js";

let home: TempHome | undefined;
afterEach(() => {
  home?.cleanup();
  home = undefined;
});

const TYPOS: [key: "deny" | "confirm", rule: string][] = [
  ["confirm", "Tool: file_write"],
  ["confirm", "TOOL: exec"],
  ["confirm", "tools: web_fetch"],
  ["confirm", "tool file_write"],
  ["deny", "Path: /workspace/secrets/**"],
  ["deny", "path /workspace/secrets/**"],
  ["deny", "file-write: /output/**"],
  ["deny", "File_read: /inputs/**"],
  ["deny", "netwrok: *.example.com"],
  ["deny", "Exec: git push *"],
];

describe("a policy rule whose kind is misspelt", () => {
  for (const [key, rule] of TYPOS) {
    it(`refuses policy.${key} "${rule}": every aido command exits 2 naming it`, async () => {
      home = makeTempHome();
      writeFileSync(join(home.dir, "config.yaml"), `policy:\n  ${key}: [${JSON.stringify(rule)}]\n`);
      const c = captureIo();
      expect(await runCli(["goals"], c.io, home.env)).toBe(2);
      expect(c.err.join("\n")).toContain(`policy.${key}.0`);
      expect(c.err.join("\n")).toContain(rule);
    });
  }

  it("still accepts exec patterns, kinded rules and an explicit exec: for a program named like a kind", async () => {
    home = makeTempHome();
    writeFileSync(
      join(home.dir, "config.yaml"),
      [
        "policy:",
        '  deny: ["git push *", "exec: tool file_write", "path: /workspace/secrets/**", "rm -rf *"]',
        '  confirm: ["tool: file_write", " file_read : /inputs/**", "network: *.example.com"]',
        "",
      ].join("\n"),
    );
    const c = captureIo();
    expect(await runCli(["goals"], c.io, home.env)).not.toBe(2);
  });
});
