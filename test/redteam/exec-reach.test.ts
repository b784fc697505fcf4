// Red team: what an exec reaches through files and words the analysis does not read, each
// closed (or, where the decision is a documented boundary, pinned exactly, so that this file
// fails if the boundary moves). Played through the real gate in one container, like
// program-options.test.ts.
//
//   - less reads a lesskey file (LESSKEYIN, ~/.lesskey under any HOME, $XDG_CONFIG_HOME/lesskey),
//     whose #env section sets LESSOPEN, which less runs: the executor sets LESSSECURE=1 in every
//     exec, and no command may set, unset or clear it.
//   - git runs aliases (`[alias] p = push` dodged the confirm rule `git push *`), hooks and the
//     fsmonitor from files the agent writes: a subcommand must be one of git's own, and the
//     executor switches hooks and the fsmonitor off at command-line precedence. Drivers a
//     repository's configuration names still run (the boundary, docs/security.md).
//   - a `path:` confirm rule was matched against the paths the early check resolves only: a
//     glob or a walk (grep -r, the grep tool) read below it. A call no human confirmed now
//     runs with the confirm paths shut in its Landlock domain and grep's view; an approved
//     call gets the paths of the rules it was approved for, and only those.
//   - a copy of a small system wrapper (setsid) or a compiled program ran bash unjudged: only
//     an agent whose exec grants name programs in the goal's folders may execute anything
//     there. `exec: *` runs any code (the boundary), and so does an interpreter, through the
//     dynamic loader, which Landlock's execute right does not cover.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AidoError } from "../../src/errors.js";
import { privateTmpOf } from "../../src/gate/confinement.js";
import type { ToolResult } from "../../src/gate/types.js";
import { SAFETY_ENV } from "../../src/sandbox/executor/exec.js";
import { GIT_COMMANDS } from "../../src/security/shell-git-commands.js";
import { answerNext } from "./fixture.js";
import { expectRefused, openSharedBench, type SharedBench } from "./shared-bench.js";

let b: SharedBench;

const FILES = ["tool: exec", "file_read: /workspace/**", "file_write: /workspace/**"];
const LESSKEY = (canary: string) => `#env\nLESSOPEN=|touch /workspace/c/${canary} %s\n`;

beforeAll(async () => {
  b = await openSharedBench({
    profiles: {
      pager: [...FILES, "exec: less *"],
      gitter: [...FILES, "exec: git *", "exec: cat *"],
      reader: [...FILES, "tool: grep", "exec: cat *", "exec: grep *"],
      loader: [...FILES, "exec: ld.so *", "exec: ldd *", "exec: cp *"],
      py: [...FILES, "exec: python3 *"],
      root: ["tool: *", ...FILES, "exec: *"],
    },
    confirm: ["git push *", "path: /workspace/vault/**", "path: /workspace/vault2/**"],
    approvalTimeoutMs: 8_000,
    files: {
      "/workspace/d": "b\na\n",
      "/workspace/lk": LESSKEY("pwn-lesskeyin"),
      "/workspace/lk2": LESSKEY("pwn-lesscontrol"),
      "/workspace/h/.lesskey": LESSKEY("pwn-lesshome"),
      "/workspace/xdg/lesskey": LESSKEY("pwn-lessxdg"),
      "/workspace/vault/x.txt": "VAULTED-SECRET\n",
      "/workspace/vault2/y.txt": "VAULT2-SECRET\n",
      "/workspace/hooks/pre-commit": "#!/bin/sh\ntouch /workspace/c/pwn-hookspath\n",
      "/workspace/fsmonitor": "#!/bin/sh\ntouch /workspace/c/pwn-fsmonitor\n",
    },
    setup: [
      // Canaries go to a folder of their own: the confirm paths shut /workspace itself (a rule
      // per sibling of the vaults, none on the folder that holds them), so nothing new can be
      // made there by an unconfirmed call.
      "mkdir /workspace/c && git init -q /workspace/repo && git -C /workspace/repo config user.email a@b",
      "git -C /workspace/repo config user.name n && git -C /workspace/repo commit -q --allow-empty -m one",
      "git init -q --bare /workspace/remote.git",
      "printf '#!/bin/sh\\ntouch /workspace/c/pwn-hook\\n' > /workspace/repo/.git/hooks/pre-commit",
      "chmod +x /workspace/repo/.git/hooks/pre-commit /workspace/hooks/pre-commit /workspace/fsmonitor",
      // A program the agents were handed: a copy of setsid, 15 KB, that runs its arguments.
      "cp /usr/bin/setsid /workspace/s",
    ].join(" && "),
  });
}, 240_000);

afterAll(async () => {
  await b?.close();
});

const outputOf = (r: ToolResult | AidoError): string => (r instanceof AidoError ? r.message : r.output);
const ran = (r: ToolResult | AidoError): ToolResult => {
  expect(r, `refused: ${outputOf(r)}`).not.toBeInstanceOf(AidoError);
  return r as ToolResult;
};
/** Run sh code in the container unconfined (the test's own hands, never an agent's). */
const unconfined = (code: string) => b.inner.exec({ argv: ["sh", "-c", code], confinement: "unconfined" });

describe("less runs no command from a lesskey file", () => {
  it.each([
    ["~/.lesskey under a HOME the command sets", "HOME=/workspace/h less /workspace/d", "pwn-lesshome"],
    ["$XDG_CONFIG_HOME/lesskey", "XDG_CONFIG_HOME=/workspace/xdg less /workspace/d", "pwn-lessxdg"],
  ])(
    "%s: less pages, and its #env LESSOPEN does not run",
    async (_how, command, canary) => {
      const r = ran(await b.exec("pager", command));
      expect(r.output).toContain("b\na");
      expect(b.exists(`/workspace/c/${canary}`), `${command} ran LESSOPEN: ${r.output}`).toBe(false);
    },
    60_000,
  );

  it("LESSKEYIN names a lesskey file: refused by the rules, and stopped by LESSSECURE where no rule reads the command", async () => {
    const command = "LESSKEYIN=/workspace/lk less /workspace/d";
    expectRefused(
      b,
      "pager",
      await b.exec("pager", command),
      "policy",
      /LESSKEYIN \(rule loader-injection\)/,
    );
    // The test's own unconfined exec: nothing judged it, the executor's environment still applies.
    expect((await unconfined(`${command} >/dev/null`)).exitCode).toBe(0);
    expect(b.exists("/workspace/c/pwn-lesskeyin")).toBe(false);
  }, 60_000);

  it("(control: the same file without LESSSECURE runs its LESSOPEN)", async () => {
    await unconfined("env -u LESSSECURE LESSKEYIN=/workspace/lk2 less /workspace/d >/dev/null");
    expect(b.exists("/workspace/c/pwn-lesscontrol")).toBe(true);
  }, 60_000);

  it("~/.lesskey in the agent's own temp folder (the HOME every exec gets): its LESSOPEN does not run", async () => {
    const home = privateTmpOf(b.agents.get("pager")!);
    expect((await unconfined(`mkdir -p ${home}`)).exitCode).toBe(0);
    await b.inner.writeFile(`${home}/.lesskey`, LESSKEY("pwn-lessdefault"));
    const r = ran(await b.exec("pager", "less /workspace/d"));
    expect(r.output).toContain("b\na");
    expect(b.exists("/workspace/c/pwn-lessdefault")).toBe(false);
  }, 60_000);

  it.each([
    "unset LESSSECURE; HOME=/workspace/h less /workspace/d",
    "env -u LESSSECURE HOME=/workspace/h less /workspace/d",
    "env -i HOME=/workspace/h less /workspace/d",
    "env - HOME=/workspace/h less /workspace/d",
    "LESSSECURE= HOME=/workspace/h less /workspace/d",
  ])(
    "refuses a command that drops LESSSECURE: %s",
    async (command) => {
      const r = await b.exec("pager", command);
      expectRefused(b, "pager", r, "policy", /loader-injection/);
      expect(b.exists("/workspace/c/pwn-lesshome")).toBe(false);
    },
    60_000,
  );

  it("every exec runs with LESSSECURE=1 and git's hook and fsmonitor switches", async () => {
    const names = Object.keys(SAFETY_ENV);
    const r = ran(await b.exec("root", `printenv ${names.join(" ")}`));
    expect(r.output).toContain(`--- stdout ---\n${names.map((n) => SAFETY_ENV[n]).join("\n")}\n`);
  }, 60_000);
});

describe("git runs no alias, hook or fsmonitor from files the agent writes", () => {
  it("knows the image's git commands exactly (any other name would be looked up as an alias)", async () => {
    const r = await unconfined("git --list-cmds=main,others,builtins");
    expect([...new Set(r.stdout.trim().split("\n"))].sort()).toEqual([...GIT_COMMANDS].sort());
  }, 60_000);

  it("refuses an alias written into .git/config, so nothing is pushed past the confirm rule git push *", async () => {
    const alias = "cat >> /workspace/repo/.git/config <<'EOF'\n[alias]\n\tp = push\nEOF\n";
    expect(outputOf(await b.exec("gitter", alias))).toMatch(/exit code 0/);
    for (const command of [
      "git -C /workspace/repo p /workspace/remote.git HEAD:refs/heads/aliased",
      "git -C /workspace/repo --no-pager p /workspace/remote.git HEAD:refs/heads/aliased",
    ]) {
      const r = await b.exec("gitter", command);
      expectRefused(b, "gitter", r, "policy", /git p: an alias or unknown git command/);
    }
    const branches = await unconfined("git -C /workspace/remote.git branch");
    expect(branches.stdout).toBe("");
  }, 60_000);

  it("runs no hook: not .git/hooks, not a core.hooksPath the repository names (which git would run)", async () => {
    ran(await b.exec("gitter", "git -C /workspace/repo commit -q --allow-empty -m two"));
    expect(b.exists("/workspace/c/pwn-hook")).toBe(false);
    const hooksPath =
      "cat >> /workspace/repo/.git/config <<'EOF'\n[core]\n\thooksPath = /workspace/hooks\nEOF\n";
    ran(await b.exec("gitter", hooksPath));
    ran(await b.exec("gitter", "git -C /workspace/repo commit -q --allow-empty -m three"));
    expect(b.exists("/workspace/c/pwn-hookspath")).toBe(false);
    // The same commit without the executor's git configuration runs the repository's hook.
    await unconfined("env -u GIT_CONFIG_COUNT git -C /workspace/repo commit -q --allow-empty -m four");
    expect(b.exists("/workspace/c/pwn-hookspath")).toBe(true);
  }, 60_000);

  it("runs no core.fsmonitor the repository names (which git status would run)", async () => {
    const config =
      "cat >> /workspace/repo/.git/config <<'EOF'\n[core]\n\tfsmonitor = /workspace/fsmonitor\nEOF\n";
    ran(await b.exec("gitter", config));
    ran(await b.exec("gitter", "git -C /workspace/repo status"));
    expect(b.exists("/workspace/c/pwn-fsmonitor")).toBe(false);
    await unconfined("env -u GIT_CONFIG_COUNT git -C /workspace/repo status >/dev/null 2>&1");
    expect(b.exists("/workspace/c/pwn-fsmonitor")).toBe(true);
  }, 60_000);

  it("boundary: a filter driver the repository's configuration names runs on git add (sh code, system programs)", async () => {
    await unconfined("git init -q /workspace/drv && echo x > /workspace/drv/a.txt");
    const driver =
      "cat >> /workspace/drv/.git/config <<'EOF'\n[filter \"x\"]\n\tclean = touch /workspace/c/pwn-filter && cat\nEOF\n" +
      "cat > /workspace/drv/.gitattributes <<'EOF'\n*.txt filter=x\nEOF\n";
    ran(await b.exec("gitter", driver));
    ran(await b.exec("gitter", "git -C /workspace/drv add a.txt"));
    // docs/security.md, "git with a writable repository": drivers are code git reads from its
    // configuration. Should this stop holding, the boundary moved: say so there.
    expect(b.exists("/workspace/c/pwn-filter")).toBe(true);
  }, 60_000);
});

describe("a path: confirm rule holds against globs and walks", () => {
  it.each([
    ["a glob over the folder", "cat /workspace/va*/x.txt"],
    ["a recursive grep of its parent", "grep -r VAULTED /workspace"],
  ])(
    "%s runs without the confirm paths, and nobody is asked",
    async (_how, command) => {
      const asked = b.rt.approvals.list().length;
      const r = ran(await b.exec("reader", command));
      expect(r.output, `${command} read the vault unasked`).not.toContain("VAULTED-SECRET");
      // Landlock refuses the vault (and listing /workspace, so a glob there matches nothing).
      expect(r.output).toMatch(/Permission denied|No such file/);
      expect(b.rt.approvals.list()).toHaveLength(asked);
    },
    60_000,
  );

  it("the grep tool over the parent folder skips the confirm paths", async () => {
    const r = await b.rt.invokeTool(b.agents.get("reader")!, "grep", {
      pattern: "VAULT",
      path: "/workspace",
    });
    expect(r.output).not.toMatch(/VAULT(ED|2)-SECRET/);
  }, 60_000);

  /** The human: allows the next request, which must appear. */
  async function allowNext(): Promise<void> {
    if (!(await answerNext(b.rt, "allow_once"))) throw new Error("no approval request appeared");
  }

  it("a call a human allowed reads below the rules it was asked about, and only those", async () => {
    // The second path is only known at run time (arithmetic: the judge follows
    // `N=2` into the word now): the early check sees /workspace, so the human was asked about
    // vault/** alone, and vault2/** stays shut to the call.
    const call = b.exec("reader", 'N=$((1 + 1)); cat /workspace/vault/x.txt; cat "/workspace/vault$N/y.txt"');
    await allowNext();
    const r = ran(await call);
    expect(r.output).toContain("VAULTED-SECRET");
    expect(r.output).not.toContain("VAULT2-SECRET");
    expect(r.output).toMatch(/\/workspace\/vault2\/y\.txt: Permission denied/);
    const grep = b.rt.invokeTool(b.agents.get("reader")!, "grep", {
      pattern: "VAULT",
      path: "/workspace/vault",
    });
    await allowNext();
    expect((await grep).output).toContain("VAULTED-SECRET");
  }, 60_000);
});

describe("programs the agent made or was handed", () => {
  it("boundary: exec: * runs any code, a copy of setsid running bash included", async () => {
    ran(await b.exec("root", "/workspace/s bash -c 'touch /workspace/c/pwn-copy'"));
    expect(b.exists("/workspace/c/pwn-copy")).toBe(true);
  }, 60_000);

  it("refuses running a copy through the dynamic loader or ldd to an agent whose grants name no program there", async () => {
    for (const command of [
      "ld.so /workspace/s sh -c 'touch /workspace/c/pwn-loader'",
      "/lib64/ld-linux-x86-64.so.2 /workspace/s sh -c 'touch /workspace/c/pwn-loader'",
      "ldd -r /workspace/s",
    ]) {
      const r = await b.exec("loader", command);
      expectRefused(b, "loader", r, "capability", /no capability grants exec of "\/workspace\/s/);
    }
    expect(b.exists("/workspace/c/pwn-loader")).toBe(false);
  }, 60_000);

  it("runs no copy a repository's driver names, for an agent that may run nothing from the goal's folders", async () => {
    await unconfined("git init -q /workspace/drv2 && echo x > /workspace/drv2/a.txt");
    const driver =
      "cat >> /workspace/drv2/.git/config <<'EOF'\n[filter \"y\"]\n\tclean = /workspace/s sh -c 'touch /workspace/c/pwn-drvcopy'\nEOF\n" +
      "cat > /workspace/drv2/.gitattributes <<'EOF'\n*.txt filter=y\nEOF\n";
    ran(await b.exec("gitter", driver));
    const r = await b.exec("gitter", "git -C /workspace/drv2 add a.txt");
    expect(outputOf(r)).toMatch(/\/workspace\/s: Permission denied/);
    expect(b.exists("/workspace/c/pwn-drvcopy")).toBe(false);
  }, 60_000);

  it("an interpreter cannot execve a copy; through the loader it runs it (boundary: an interpreter runs any code)", async () => {
    const execv = await b.exec(
      "py",
      `python3 -c "import os; os.execv('/workspace/s', ['s', 'sh', '-c', 'touch /workspace/c/pwn-pyexec'])"`,
    );
    expect(outputOf(execv)).toMatch(/PermissionError/);
    expect(b.exists("/workspace/c/pwn-pyexec")).toBe(false);
    ran(
      await b.exec(
        "py",
        `python3 -c "import os; os.execv('/lib64/ld-linux-x86-64.so.2', ['ld', '/workspace/s', 'sh', '-c', 'touch /workspace/c/pwn-pyloader'])"`,
      ),
    );
    expect(b.exists("/workspace/c/pwn-pyloader")).toBe(true);
  }, 60_000);
});
