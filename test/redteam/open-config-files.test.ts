// Red team, OPEN (left failing for the lead): what an exec reaches through files and words the
// analysis does not read. Each test below fails today; the fix is not local to the analyzer.
//
//   - less reads a lesskey file (LESSKEYIN, or ~/.lesskey under a HOME the command sets, or
//     the default HOME=/tmp), whose #env section sets LESSOPEN: less then runs that command
//     even when its output is not a terminal. LESSOPEN itself is a protected variable; the
//     file is not. (LESSSECURE=1 in the exec environment stops it, seen in the image, but a
//     command can unset it: the executor would have to set it and the rules keep it.)
//   - git aliases in .git/config (any agent with `exec: git *` and a writable repository can
//     write one) turn `git p` into `git push`, so the operator's confirm rule `git push *`
//     never sees a push.
//   - a `path:` confirm rule is matched against the paths the early check resolves; a glob or
//     a program that walks a folder (grep -r) reads below the rule without a human asked.
//     Deny rules are enforced by the Landlock domain too; confirm rules are not.
//   - an ELF file run by path is not read (it is a program), so a copy of a small system
//     wrapper (setsid is 15 KB) under /workspace runs bash, or git push, unjudged for an agent
//     holding `exec: *`; the same goes for a program the agent compiles. Links are refused
//     (exec-scripts.ts); copies would need the Landlock domain to grant no execute right on
//     the writable mounts, or the operator to know that `exec: *` reaches past the rules.
// Played through the real gate in one container, like program-options.test.ts.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AidoError } from "../../src/errors.js";
import type { ToolResult } from "../../src/gate/types.js";
import { openSharedBench, type SharedBench } from "./shared-bench.js";

let b: SharedBench;

const FILES = ["tool: exec", "file_read: /workspace/**", "file_write: /workspace/**"];

beforeAll(async () => {
  b = await openSharedBench({
    profiles: {
      pager: [...FILES, "exec: less *"],
      gitter: [...FILES, "exec: git *", "exec: cat *"],
      reader: [...FILES, "exec: cat *", "exec: grep *"],
      root: ["tool: *", ...FILES, "exec: *"],
    },
    confirm: ["git push *", "path: /workspace/vault/**"],
    files: {
      "/workspace/d": "b\na\n",
      "/workspace/lk": "#env\nLESSOPEN=|touch /workspace/pwn-lesskeyin %s\n",
      "/workspace/h/.lesskey": "#env\nLESSOPEN=|touch /workspace/pwn-lesshome %s\n",
      "/workspace/vault/x.txt": "VAULTED-SECRET\n",
    },
    setup: [
      "git init -q /workspace/repo && git -C /workspace/repo -c user.email=a@b -c user.name=n commit -q --allow-empty -m one",
      "git init -q --bare /workspace/remote.git",
    ].join(" && "),
  });
}, 240_000);

afterAll(async () => {
  await b?.close();
});

const outputOf = (r: ToolResult | AidoError): string => (r instanceof AidoError ? r.message : r.output);

describe("open: config files and run-time words the analysis does not read", () => {
  it("a copy of setsid under /workspace does not run bash code unread", async () => {
    expect(outputOf(await b.exec("root", "cp /usr/bin/setsid /workspace/s"))).toMatch(/exit code 0/);
    const r = await b.exec("root", "/workspace/s bash -c 'touch /workspace/pwn-copy'");
    expect(b.exists("/workspace/pwn-copy"), `bash ran: ${outputOf(r)}`).toBe(false);
  }, 60_000);

  it.each([
    [
      "LESSKEYIN names a lesskey file whose #env sets LESSOPEN",
      "LESSKEYIN=/workspace/lk less /workspace/d",
      "pwn-lesskeyin",
    ],
    ["~/.lesskey under a HOME the command sets", "HOME=/workspace/h less /workspace/d", "pwn-lesshome"],
  ])(
    "less does not run a command from %s",
    async (_how, command, canary) => {
      const r = await b.exec("pager", command);
      expect(b.exists(`/workspace/${canary}`), `${command} ran LESSOPEN: ${outputOf(r)}`).toBe(false);
    },
    60_000,
  );

  it("a git alias written into .git/config does not push past the confirm rule git push *", async () => {
    const alias = "cat >> /workspace/repo/.git/config <<'EOF'\n[alias]\n\tp = push\nEOF\n";
    expect(outputOf(await b.exec("gitter", alias))).toMatch(/exit code 0/);
    const r = await b.exec(
      "gitter",
      "git -C /workspace/repo p /workspace/remote.git HEAD:refs/heads/aliased",
    );
    const branches = await b.inner.exec({
      argv: ["git", "-C", "/workspace/remote.git", "branch"],
      confinement: "unconfined",
    });
    expect(branches.stdout, `pushed without a human asked: ${outputOf(r)}`).toBe("");
  }, 60_000);

  it.each([
    ["a glob over the folder", "cat /workspace/va*/x.txt"],
    ["a recursive grep of its parent", "grep -r VAULTED /workspace"],
  ])(
    "a path: confirm rule asks a human before %s reads below it",
    async (_how, command) => {
      const r = await b.exec("reader", command);
      expect(outputOf(r), `${command} read the vault unasked`).not.toContain("VAULTED-SECRET");
      expect(r).toBeInstanceOf(AidoError);
      expect((r as AidoError).details.stage).toBe("approval");
    },
    60_000,
  );
});
