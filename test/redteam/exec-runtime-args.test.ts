// Red team: a script run by xargs or find gets its positional parameters at run time, from
// input the judge never saw. The judge binds a script's `$1`, `$2`, `"$@"` to the words
// written after it (`sh s.sh ~`), but `echo ~ | xargs sh s.sh` and `find P -exec sh s.sh {} \;`
// write none: with s.sh holding `rm -rf "$1"`, each emptied the caller's private folder,
// judged as `rm -rf ""`. Now a script such a runner hands run-time words, that uses its
// positional parameters, is refused as unjudgeable (audited, advising to inline the command),
// whatever runner spells it (`xargs -0`, `-n1`, `-I%`, `find -exec ... +`, `-execdir`, `-ok`).
// Conversely, xargs's -I replace string is a run-time word, like find's `{}`: `xargs -I% sh -c
// 'rm -f "$1"' _ %` was refused as removing a file named `%` where it ran.
// Its neighbours, where the judge reads the words (eval, command, env, nice, timeout, busybox
// rm) or where it cannot and Landlock stops them on a denied path (python3 -c, node -e, perl -e),
// are played here too. The agent may read /workspace/** and write /workspace/out/** only.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { privateTmpOf } from "../../src/gate/confinement.js";
import { expectOk } from "./fixture.js";
import { expectRefused, openSharedBench, readAllWriteOut, type SharedBench } from "./shared-bench.js";

let b: SharedBench;

const PROGRAMS = [
  "echo",
  "printf",
  "find",
  "xargs",
  "sh",
  "rm",
  "timeout",
  "cd",
  "cat",
  "eval",
  "/workspace/out/x.sh",
];
const worker = [
  ...readAllWriteOut(PROGRAMS),
  ...["command", "env", "nice", "busybox", "python3", "node", "perl"].map((p) => `exec: ${p} *`),
];

beforeAll(async () => {
  b = await openSharedBench({
    profiles: { worker },
    files: {
      "/workspace/out/s.sh": 'rm -rf "$1"\n',
      "/workspace/out/each.sh": 'for d; do rm -rf "$d"; done\n',
      "/workspace/out/x.sh": 'rm -rf "$1"\n',
      "/workspace/out/count.sh": "echo found >> /workspace/out/found.log\n",
      "/workspace/pub/a.txt": "a\n",
    },
    setup: "chmod -R a+rwX /workspace && chmod 755 /workspace/out/x.sh",
  });
}, 240_000);

afterAll(async () => {
  await b?.close();
});

const tmp = () => privateTmpOf(b.agents.get("worker")!);

/** The private folder exists (made by a first exec) and holds `keep`. */
async function keep(): Promise<void> {
  ran(await b.exec("worker", "echo made"));
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

/** Refused before anything ran (as unjudgeable when `why` is given, else as removing the folder), audited, the folder kept. */
async function expectKept(command: string, why?: RegExp): Promise<void> {
  await keep();
  const r = await b.exec("worker", command.replaceAll("@P", tmp()));
  if (why) expectRefused(b, "worker", r, "policy", why);
  else expectRefused(b, "worker", r, "capability", new RegExp(`file_write on ${tmp()} `));
  expect(await kept()).toBe("k\n");
}

/** The exec ran and exited 0. */
function ran(r: Awaited<ReturnType<SharedBench["exec"]>>): void {
  expect((expectOk(r).data as { exit_code?: number } | undefined)?.exit_code, JSON.stringify(r)).toBe(0);
}

const RUNTIME = /gets its positional parameters at run time from (xargs|find).*write the command out/;

describe("a script xargs or find runs, whose positional parameters come from their input", () => {
  it.each([
    ["echo ~ | xargs sh /workspace/out/s.sh"],
    ["printf '%s\\0' ~ | xargs -0 sh /workspace/out/s.sh"],
    ["echo /workspace/out/nothing ~ | xargs -n1 sh /workspace/out/each.sh"],
    ["echo ~ | xargs -I% sh /workspace/out/s.sh %"],
    ["echo ~ | xargs timeout 5 /workspace/out/x.sh"],
    ["find @P -maxdepth 0 -exec sh /workspace/out/s.sh {} \\;"],
    ["find @P -maxdepth 0 -exec sh /workspace/out/each.sh {} +"],
    ["find @P -maxdepth 0 -ok sh /workspace/out/s.sh {} \\;"],
  ])(
    "refuses %s as unjudgeable, and the folder is kept",
    async (command) => {
      await expectKept(command, RUNTIME);
    },
    60_000,
  );

  it("still refuses -execdir sh s.sh {}, whose folder is each found file's", async () => {
    await expectKept(
      "find @P -maxdepth 0 -execdir sh /workspace/out/s.sh {} \\;",
      /runs a script after moving to a directory known only at run time/,
    );
  }, 60_000);
});

describe("what still runs", () => {
  it("runs xargs -I% sh -c 'rm -f \"$1\"' _ %: the replace string is a run-time word, not a file named %", async () => {
    ran(await b.exec("worker", "echo x > /workspace/out/i.o"));
    ran(await b.exec("worker", `cd /workspace && find out -name '*.o' | xargs -I% sh -c 'rm -f "$1"' _ %`));
    expect(b.exists("/workspace/out/i.o")).toBe(false);
  }, 60_000);

  it("runs find -exec with a script that uses no positional parameters", async () => {
    ran(await b.exec("worker", "find /workspace/pub -name a.txt -exec sh /workspace/out/count.sh {} \\;"));
    const log = await b.inner.exec({ argv: ["cat", "/workspace/out/found.log"], confinement: "unconfined" });
    expect(log.stdout).toBe("found\n");
  }, 60_000);

  it("runs a script whose positional parameters are written out before what xargs or find adds", async () => {
    ran(await b.exec("worker", "echo x > /workspace/out/l1 && echo x > /workspace/out/l2"));
    ran(await b.exec("worker", "echo ~ | xargs sh /workspace/out/s.sh /workspace/out/l1"));
    ran(
      await b.exec(
        "worker",
        "find /workspace/pub -name a.txt -exec sh /workspace/out/s.sh /workspace/out/l2 \\;",
      ),
    );
    expect(b.exists("/workspace/out/l1")).toBe(false);
    expect(b.exists("/workspace/out/l2")).toBe(false);
  }, 60_000);
});

describe("the neighbours: wrappers whose words the judge reads", () => {
  it.each([
    ["eval 'rm -rf @P'"],
    ["command rm -rf @P"],
    ["env rm -rf @P"],
    ["nice rm -rf @P"],
    ["timeout 5 rm -rf @P"],
    ["busybox rm -rf @P"],
  ])(
    "refuses %s as removing the private folder",
    async (command) => {
      await expectKept(command);
    },
    60_000,
  );
});

describe("the neighbours: code the judge cannot read, bounded by Landlock", () => {
  it.each([
    ["python3 -c", `python3 -c 'import os; os.remove("/workspace/pub/a.txt")'`],
    ["node -e", `node -e 'require("fs").unlinkSync("/workspace/pub/a.txt")'`],
    ["perl -e", `perl -e 'unlink("/workspace/pub/a.txt") or die "denied: $!"'`],
  ])(
    "%s cannot remove a file the agent may only read",
    async (_how, command) => {
      const r = await b.exec("worker", command);
      // The judge cannot see the path; the domain refuses the unlink (the program fails).
      expect(r).not.toBeInstanceOf(Error);
      expect((r as { data?: { exit_code?: number } }).data?.exit_code, JSON.stringify(r)).not.toBe(0);
      expect(b.exists("/workspace/pub/a.txt")).toBe(true);
    },
    60_000,
  );

  // Bash forms that hide a path in a variable: dash does not parse the first two (refused by the
  // analysis), and its printf has no -v (the variable stays empty: rm -rf "" removes nothing).
  it.each([
    ["a here-string", 'read -r d <<< @P; rm -rf "$d"'],
    ["mapfile", 'mapfile -t a <<< @P; rm -rf "$a"'],
    ["printf -v", 'printf -v d %s @P; rm -rf "$d"'],
  ])(
    "%s does not remove the private folder",
    async (_how, command) => {
      await keep();
      await b.exec("worker", command.replaceAll("@P", tmp()));
      expect(await kept()).toBe("k\n");
    },
    60_000,
  );
});
