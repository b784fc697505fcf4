// Red team: spellings that remove (or rename away) the caller's private folder, /tmp/agent-<id>,
// without naming it whole as what rm removes. The folder's own entry in /tmp is not the exec's
// to change: Landlock refuses it, but only after rm has emptied the folder (private-tmp.test.ts).
// Each of these ran and emptied it, judged as no removal at all:
//   - find P -exec sh -c 'rm -rf "$1"' sh {} \; (and `+`, -execdir, a nested find -delete):
//     the shell's $1 is what find found, the folder among it;
//   - rm -rf "$PWD/" ("$PWD"/., "$PWD"/..) after a known cd: the folder the shell is in;
//   - rm -rf "$OLDPWD" after cd ~ && cd /: the folder it was in;
//   - mv $TMPDIR D, mv ~ D: the folder renamed away (judged a plain write in the folder).
// The agent may read /workspace/** and write /workspace/out/** only.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { privateTmpOf } from "../../src/gate/confinement.js";
import { analyzeCommand } from "../../src/security/shell.js";
import { execPaths } from "../../src/tools/exec-paths.js";
import { expectOk } from "./fixture.js";
import { expectRefused, openSharedBench, readAllWriteOut, type SharedBench } from "./shared-bench.js";

let b: SharedBench;

const PROGRAMS = ["echo", "rm", "rmdir", "unlink", "find", "sh", "mv", "cd"];
const worker = readAllWriteOut(PROGRAMS);

beforeAll(async () => {
  b = await openSharedBench({
    profiles: { worker },
    files: { "/workspace/out/.keep": "" },
    setup: "chmod -R a+rwX /workspace",
  });
}, 240_000);

afterAll(async () => {
  await b?.close();
});

const tmp = () => privateTmpOf(b.agents.get("worker")!);

/** The private folder exists (made by a first exec) and holds `keep`. */
async function keep(): Promise<void> {
  expectOk(await b.exec("worker", "echo made"));
  const r = await b.inner.exec({
    argv: ["sh", "-c", 'mkdir -p "$1" && echo k > "$1/keep"', "sh", tmp()],
    confinement: "unconfined",
  });
  expect(r.exitCode, r.stderr).toBe(0);
}

/** What the private folder's `keep` holds now ("" when it is gone). */
async function kept(): Promise<string> {
  const r = await b.inner.exec({
    argv: ["sh", "-c", 'cat "$1/keep" 2>/dev/null || true', "sh", tmp()],
    confinement: "unconfined",
  });
  return r.stdout;
}

/** Refused before anything ran, as removing the private folder itself (or as unjudgeable), and the folder kept. */
async function expectKept(command: string, why?: RegExp): Promise<void> {
  await keep();
  const r = await b.exec("worker", command.replaceAll("@P", tmp()));
  if (why) expectRefused(b, "worker", r, "policy", why);
  else expectRefused(b, "worker", r, "capability", new RegExp(`file_write on ${tmp()} `));
  expect(await kept()).toBe("k\n");
}

describe("find hands what it found to a shell that removes it", () => {
  it.each([
    ["-exec sh -c '...' sh {} \\;", `find @P -exec sh -c 'rm -rf "$1"' sh {} \\;`],
    ["-exec sh -c '...' sh {} +", `find @P -exec sh -c 'rm -rf "$@"' sh {} +`],
    ["-execdir sh -c '...' sh {} \\;", `find @P -execdir sh -c 'rm -rf "$1"' sh {} \\;`],
    ["-exec sh -c 'rmdir ...'", `find @P -depth -exec sh -c 'rm -f "$1"/*; rmdir "$1"' sh {} \\;`],
    ["-exec mv {} D", "find @P -maxdepth 0 -exec mv {} /workspace/out/moved \\;"],
  ])(
    "refuses find with the folder's path %s before anything is removed",
    async (_how, command) => {
      await expectKept(command);
    },
    60_000,
  );

  it("refuses -exec find {} -delete as a command find appends run-time words to", async () => {
    await expectKept(
      "find @P -maxdepth 0 -exec find {} -delete \\;",
      /appends arguments read at run time to find/,
    );
  }, 60_000);

  it("runs it with -mindepth 1 (what is in the folder)", async () => {
    await keep();
    expectOk(await b.exec("worker", `find ${tmp()} -mindepth 1 -exec sh -c 'rm -rf "$1"' sh {} \\;`));
    expect(await kept()).toBe("");
  }, 60_000);
});

describe("the folder the shell is in, spelled from $PWD", () => {
  it.each([
    ['cd ~ && rm -rf "$PWD/"'],
    ['cd ~ && rm -rf "$PWD"/'],
    ['cd ~ && rm -rf "$PWD"/.'],
    [['cd ~ && rm -rf "$', '{PWD}/."'].join("")],
    ["cd @P && rmdir $PWD/"],
  ])(
    "refuses %s before anything is removed",
    async (command) => {
      await expectKept(command);
    },
    60_000,
  );

  it("judges $PWD/.. as the folder above, and $PWD/x as x in it", async () => {
    const judged = await execPaths(
      b.inner,
      analyzeCommand(`cd ${tmp()}/d && rm -rf "$PWD"/..`),
      ["/workspace/out"],
      {
        privateTmp: tmp(),
      },
    );
    expect(judged.needs).toContainEqual(expect.objectContaining({ kind: "file_write", path: tmp() }));
    await keep();
    expectOk(await b.exec("worker", 'cd ~ && rm -f "$PWD/keep"'));
    expect(await kept()).toBe("");
  }, 60_000);
});

describe("the folder the shell was in, spelled $OLDPWD", () => {
  it.each([['cd ~ && cd / && rm -rf "$OLDPWD"'], ["cd ~ && cd /workspace/out && rmdir $OLDPWD/"]])(
    "refuses %s before anything is removed",
    async (command) => {
      await expectKept(command, /OLDPWD/);
    },
    60_000,
  );
});

describe("renaming the folder away", () => {
  it.each([
    ["mv $TMPDIR D", "mv $TMPDIR /workspace/out/t"],
    ["mv ~ D", "mv ~ /workspace/out/t"],
    ["mv -t D with the folder's path", "mv -t /workspace/out @P"],
  ])(
    "refuses %s as removing the folder's entry, not as a write in it",
    async (_how, command) => {
      await expectKept(command);
    },
    60_000,
  );

  it("still runs mv of a file into the folder and out of it", async () => {
    await keep();
    expectOk(await b.exec("worker", "mv $TMPDIR/keep /workspace/out/k2 && mv /workspace/out/k2 ~/keep"));
    expect(await kept()).toBe("k\n");
  }, 60_000);
});
