// The code files a standing answer of programs other than plain interpreters pins
// (tools/exec-code.ts): make's makefile, a package's scripts, java's source; and the programs
// whose code is found at run time, which no standing answer covers.

import { describe, expect, it } from "vitest";
import { analyzeCommand } from "../../src/security/shell.js";
import { codeWords } from "../../src/tools/exec-code.js";

function code(command: string) {
  const c = analyzeCommand(command).commands[0]!;
  return codeWords(c, c.argv[0]!);
}

describe("the code files a program runs", () => {
  it.each([
    ["make", ["GNUmakefile", "makefile", "Makefile"]],
    ["make build", ["GNUmakefile", "makefile", "Makefile"]],
    ["make -f build.mk all", ["build.mk"]],
    ["make --file=build.mk", ["build.mk"]],
    ["make -C sub", ["sub/GNUmakefile", "sub/makefile", "sub/Makefile"]],
    ["make -C sub -f /abs/x.mk", ["/abs/x.mk"]],
    ["npm run build", ["package.json"]],
    ["npm test", ["package.json"]],
    ["pnpm start", ["package.json"]],
    ["yarn build", ["package.json"]],
    ["bun run dev", ["package.json"]],
    ["java Fix.java", ["Fix.java"]],
    ["java -jar tool.jar", ["tool.jar"]],
  ])("pins %s: %j", (command, files) => {
    expect(code(command)).toEqual({ runs: files });
  });

  it.each([
    ["npx cowsay hi", /npx runs a package/],
    ["pytest -q", /pytest runs the test files/],
    ["npm exec foo", /npm exec runs packages' code/],
    ["npm install", /npm install runs packages' code/],
    ["npm --prefix other run build", /pointed at another package's folder/],
    ["yarn", /yarn installs packages/],
    ["make -C a -C b", /make -C given twice/],
    ['make -f "$M"', /may be named at run time/],
    ["MAKEFLAGS=-fx.mk make", /through its environment/],
    ["java Main", /class path/],
    ["deno run https://example.test/x.ts", /fetches/],
    ["bun x cowsay", /bun x runs a package/],
  ])("leaves %s unpinned, asked each time", (command, why) => {
    const r = code(command);
    expect(r && "unpinned" in r ? r.unpinned : r).toMatch(why);
  });

  it.each(["ls -l", "npm --version", "java -version", "deno fmt"])("finds no code file in %s", (command) => {
    expect(code(command)).toBeUndefined();
  });
});
