// Red team: spellings that remove (or rename away) the caller's private folder, /tmp/agent-<id>,
// without naming it whole as what rm removes. The folder's own entry in /tmp is not the exec's
// to change: Landlock refuses it, but only after rm has emptied the folder (private-tmp.test.ts).
// Each of these ran and emptied it, judged as no removal at all:
//   - find P -exec sh -c 'rm -rf "$1"' sh {} \; (and `+`, -execdir, a nested find -delete):
//     the shell's $1 is what find found, the folder among it;
//   - rm -rf "$PWD/" ("$PWD"/., "$PWD"/..) after a known cd: the folder the shell is in;
//   - rm -rf "$OLDPWD" after cd ~ && cd /: the folder it was in;
//   - mv $TMPDIR D, mv ~ D: the folder renamed away (judged a plain write in the folder);
//   - d=$TMPDIR; rm -rf "$d" (d=~, for d in ~, export, a chain of variables, $(pwd) after cd ~):
//     a variable the command gives the folder's path, whose value was not followed;
//   - rm -rf ${TMPDIR:-x}, "${HOME-x}"/: a default, which the set variable's value wins over;
//   - tar --remove-files and zip -m: their operands were judged as written in, not removed.
//   - d=$(echo ~); rm -rf "$d" (for f in $(echo ~), sh -c '...' _ "$(echo ~)"): a substitution
//     reached through a variable, left to the domain;
//   - cd ~ && rm -rf $(ls -A): ls of relative names, in the folder itself;
//   - set -- ~; rm -rf "$1", sh -c 'shift; rm -rf "$1"' _ x ~: positionals rebound at run time.
//   - sh s.sh ~ with `rm -rf "$1"` in s.sh: a script's positionals, not bound;
//   - echo ~ | { read d; rm -rf "$d"; }, while read d; ... done < list: a variable read gives;
//   - echo ~ | xargs mv -t D, xargs -I{} mv {} D: what xargs hands mv, not judged.
// The agent may read /workspace/** and write /workspace/out/** only.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { analyzeCommand } from "../../src/security/shell.js";
import { execPaths } from "../../src/tools/exec-paths.js";
import { expectOk } from "./fixture.js";
import { privateFolder } from "./private-folder.js";
import { openSharedBench, readAllWriteOut, type SharedBench } from "./shared-bench.js";

let b: SharedBench;

const PROGRAMS = [
  "echo",
  "rm",
  "rmdir",
  "unlink",
  "find",
  "sh",
  "mv",
  "cd",
  "mkdir",
  "mktemp",
  "cat",
  "tar",
  "zip",
  "pwd",
  "dirname",
  "printf",
  "ls",
  "xargs",
  "git",
];
const worker = readAllWriteOut(PROGRAMS);

beforeAll(async () => {
  b = await openSharedBench({
    profiles: { worker },
    files: {
      "/workspace/out/.keep": "",
      "/workspace/pub/a.txt": "a\n",
      "/workspace/out/s.sh": 'rm -rf "$1"\n',
      "/workspace/out/each.sh": 'for d; do rm -rf "$d"; done\n',
      "/workspace/out/list": "",
    },
    setup: "chmod -R a+rwX /workspace",
  });
}, 240_000);

afterAll(async () => {
  await b?.close();
});

const { tmp, keep, kept, expectKept } = privateFolder(() => b);

/** One test per command (shown as itself): refused before anything ran, the folder kept (expectKept). */
function refusesEach(commands: readonly string[], title = "refuses %s before anything is removed"): void {
  it.each(commands.map((c) => [c]))(title, async (command) => expectKept(command), 60_000);
}

/** One test per command: refused as unjudgeable, the reason matching `why`, the folder kept. */
function refusesEachUnjudgeable(commands: readonly string[], why: RegExp): void {
  it.each(commands.map((c) => [c]))(
    "refuses %s as unjudgeable",
    (command) => expectKept(command, why),
    60_000,
  );
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

describe("a variable the command gives the folder's path", () => {
  refusesEach([
    'd=$TMPDIR; rm -rf "$d"',
    "d=~; rmdir $d",
    'd="$HOME"; rm -rf "$d"/',
    'd=@P && rm -rf "$d"',
    'export d=$TMPDIR && rm -rf "$d"',
    'a=~; b=$a; rm -rf "$b"',
    'for d in /workspace/out/x ~; do rm -rf "$d"; done',
    'cd ~ && d=$(pwd) && rm -rf "$d"',
  ]);
  // Deeper than the chain is followed, the value was dropped and the folder emptied.
  refusesEachUnjudgeable(
    ['a=$TMPDIR; b=$a; c=$b; e=$c; f=$e; g=$f; rm -rf "$g"', 'd=~; d=$d/; rm -rf "$d"'],
    /name each other \(or themselves\) more than 4 deep/,
  );

  it("still runs the removal of a temp folder, one in the private folder, and one in /workspace/out", async () => {
    await keep();
    expectOk(await b.exec("worker", 'd=$(mktemp -d) && echo x > "$d/f" && rm -rf "$d"'));
    expectOk(await b.exec("worker", 'd=~/sub; mkdir -p "$d" && rm -rf "$d"'));
    expectOk(await b.exec("worker", 't=/workspace/out/t; mkdir -p "$t" && rm -rf "$t"'));
    expect(await kept()).toBe("k\n");
  }, 60_000);
});

describe("the folder spelled with a default", () => {
  refusesEach([["rm -rf $", "{TMPDIR:-x}"].join(""), ['rm -rf "$', '{HOME-x}"/'].join("")]);

  it("judges a path under it in the private folder, which needs no grant", async () => {
    await keep();
    expectOk(await b.exec("worker", ["rm -f $", "{TMPDIR:-/tmp}/keep"].join("")));
    expect(await kept()).toBe("");
  }, 60_000);
});

describe("archivers that remove what they archive", () => {
  refusesEach(["tar --remove-files -cf /workspace/out/p.tar @P", "zip -rm /workspace/out/p.zip @P"]);

  it("still runs tar --remove-files of a file in /workspace/out", async () => {
    expectOk(await b.exec("worker", "cd /workspace/out && echo x > f1 && tar --remove-files -cf f1.tar f1"));
    expect(b.exists("/workspace/out/f1")).toBe(false);
  }, 60_000);
});

describe("a shell find runs that removes only its own temp file", () => {
  it("runs it over a folder the agent may only read", async () => {
    const code = `f=$(mktemp); cat "$1" > "$f"; rm -f "$f"`;
    expectOk(await b.exec("worker", `find /workspace/pub -name '*.txt' -exec sh -c '${code}' sh {} \\;`));
  }, 60_000);

  // Through a variable given $1, and a for loop over "$@".
  refusesEach(
    [
      `find @P -exec sh -c 'f=$1; rm -rf "$f"' sh {} \\;`,
      `find @P -exec sh -c 'for f; do rm -rf "$f"; done' sh {} +`,
    ],
    "still refuses %s, which removes what find found",
  );
});

describe("a removed word that is a command substitution", () => {
  refusesEach([
    'rm -rf "$(echo $HOME)"',
    'rm -rf "$(dirname ~/x)"',
    'rm -rf "$(cd ~ && pwd)"',
    'rm -rf $(printf %s "$TMPDIR")',
    'rm -rf "$(dirname "$(echo ~/x)")"/',
  ]);

  it.each([['rm -rf "$(cat /workspace/out/list)"'], ['rm -rf "$(ls -d ~)"']])(
    "refuses %s, whose value the judge cannot compute, as unjudgeable",
    async (command) => {
      await expectKept(command, /command substitution prints a path known only at run time/);
    },
    60_000,
  );

  it("still runs removals of a fresh temp folder, names ls lists, and a computed path in the folder", async () => {
    await keep();
    expectOk(await b.exec("worker", 'rm -rf "$(mktemp -d)"'));
    expectOk(await b.exec("worker", "cd /workspace/out && echo x > a.o && rm -f $(ls *.o)"));
    expect(b.exists("/workspace/out/a.o")).toBe(false);
    expectOk(await b.exec("worker", 'echo x > ~/f && rm -f "$(dirname ~/x)/f"'));
    expect(await kept()).toBe("k\n");
  }, 60_000);
});

describe("an inline shell's positional parameters bound to the words after it", () => {
  refusesEach([
    `sh -c 'rm -rf $0' "$TMPDIR"`,
    `sh -c 'rm -rf "$1"' _ ~`,
    `sh -c 'rm -rf "$@"' _ /workspace/out/x ~`,
    `sh -c 'for d; do rm -rf "$d"; done' _ @P`,
  ]);

  it("still runs one that removes a file it is handed", async () => {
    await keep();
    expectOk(await b.exec("worker", `echo x > /workspace/out/y && sh -c 'rm -f "$1"' _ /workspace/out/y`));
    expect(b.exists("/workspace/out/y")).toBe(false);
    expectOk(await b.exec("worker", `sh -c 'rm -f "$1"' _ ~/keep`));
    expect(await kept()).toBe("");
  }, 60_000);
});

describe("a command substitution reached through a variable", () => {
  // Each emptied the folder: the variable's value was a substitution, left to the domain.
  refusesEach([
    'd=$(echo ~); rm -rf "$d"',
    'for f in $(echo ~); do rm -rf "$f"; done',
    `sh -c 'rm -rf "$1"' _ "$(echo ~)"`,
  ]);

  refusesEachUnjudgeable(
    ['for f in $(ls -d ~); do rm -rf "$f"; done'],
    /prints a path known only at run time/,
  );

  it("still runs a fresh temp folder's removal, ls's names in /workspace/out, and dirname of a known file", async () => {
    await keep();
    expectOk(await b.exec("worker", 'd=$(mktemp -d) && rm -rf "$d"'));
    expectOk(
      await b.exec("worker", 'cd /workspace/out && echo x > a1 && for f in $(ls a*); do rm "$f"; done'),
    );
    expect(b.exists("/workspace/out/a1")).toBe(false);
    // Refused as unjudgeable before: dirname of a variable was not computed.
    const f = "/workspace/out/dd/f";
    expectOk(
      await b.exec(
        "worker",
        `mkdir -p /workspace/out/dd && f=${f} && echo x > "$f" && rm -rf "$(dirname "$f")"`,
      ),
    );
    expect(b.exists("/workspace/out/dd")).toBe(false);
    expect(await kept()).toBe("k\n");
  }, 60_000);
});

describe("ls or find listing the private folder, or a folder that holds it", () => {
  refusesEachUnjudgeable(
    [
      "cd ~ && rm -rf $(ls -A)",
      "cd ~ && rm -rf $(find . -mindepth 1 -maxdepth 1)",
      "cd / && rm -rf $(ls -d tmp/agent-*)",
    ],
    /the command substitution lists names in \//,
  );
});

describe("positional parameters rebound by set or shift", () => {
  refusesEachUnjudgeable(
    ['set -- ~; rm -rf "$1"', `sh -c 'shift; rm -rf "$1"' _ /workspace/out/x ~`],
    /rebinds the positional parameters/,
  );

  it("still runs set -e before a removal", async () => {
    expectOk(await b.exec("worker", "set -e; echo x > /workspace/out/z; rm -f /workspace/out/z"));
    expect(b.exists("/workspace/out/z")).toBe(false);
  }, 60_000);
});

describe("a removal xargs runs on what the stage before it prints", () => {
  // Each emptied the folder: the words xargs appends were not judged at all.
  refusesEach(["echo ~ | xargs rm -rf"]);
  refusesEachUnjudgeable(
    ["ls -d ~ | xargs rm -rf", "printf '%s\\0' ~ | xargs -0 rm -rf", "cd ~ && ls -A | xargs rm -rf"],
    /what xargs reads (prints a path known only at run time|lists names in \/)/,
  );

  it("still runs find's relative names piped to xargs rm in /workspace/out", async () => {
    expectOk(await b.exec("worker", "cd /workspace/out && echo x > c.o && find . -name '*.o' | xargs rm -f"));
    expect(b.exists("/workspace/out/c.o")).toBe(false);
  }, 60_000);
});

describe("xargs running a shell whose code removes its positional parameters", () => {
  // Judged as what the stage before xargs prints (the shell's rm is run by xargs).
  refusesEach([
    `echo ~ | xargs sh -c 'rm -rf "$@"' sh`,
    `echo @P | xargs sh -c 'for d; do rm -rf "$d"; done' sh`,
    `echo ~ | xargs sh -c 'rm -rf "$0"'`,
  ]);
  refusesEachUnjudgeable(
    [`ls -d ~ | xargs sh -c 'rm -rf "$1"' sh`, `cat /workspace/out/list | xargs sh -c 'rm -rf "$@"' sh`],
    /what xargs reads prints a path known only at run time/,
  );

  it("still runs it on relative names find lists in /workspace/out", async () => {
    expectOk(
      await b.exec(
        "worker",
        `cd /workspace/out && echo x > e.o && find . -name '*.o' | xargs sh -c 'rm -f "$@"' sh`,
      ),
    );
    expect(b.exists("/workspace/out/e.o")).toBe(false);
  }, 60_000);
});

describe("a script's positional parameters bound to the words after it", () => {
  // s.sh is `rm -rf "$1"`, each.sh `for d; do rm -rf "$d"; done`: each emptied the folder.
  refusesEach([
    "sh /workspace/out/s.sh ~",
    "sh /workspace/out/each.sh /workspace/out/x @P",
    'd=$TMPDIR; sh /workspace/out/s.sh "$d"',
    'sh /workspace/out/s.sh "$(echo ~)"',
    "sh /workspace/out/s.sh /workspace/out/x; sh /workspace/out/s.sh ~",
  ]);
  refusesEachUnjudgeable(
    ['sh /workspace/out/s.sh "$(cat /workspace/out/list)"'],
    /prints a path known only at run time/,
  );

  it("still runs one that removes a file it is handed", async () => {
    await keep();
    expectOk(
      await b.exec("worker", "echo x > /workspace/out/y2 && sh /workspace/out/s.sh /workspace/out/y2"),
    );
    expect(b.exists("/workspace/out/y2")).toBe(false);
    expectOk(await b.exec("worker", "sh /workspace/out/s.sh ~/keep"));
    expect(await kept()).toBe("");
  }, 60_000);
});

describe("a variable read gives, removed", () => {
  // Each emptied the folder: read's variable had no value the judge saw.
  refusesEach([
    'echo ~ | { read d; rm -rf "$d"; }',
    'echo @P | while read -r d; do rm -rf "$d"; done',
    'printf %s "$TMPDIR" | { IFS= read -r d; rmdir "$d"/; }',
  ]);
  refusesEachUnjudgeable(
    [
      'while read d; do rm -rf "$d"; done < /workspace/out/list',
      'cat /workspace/out/list | while read d; do rm -rf "$d"; done',
      'ls -d ~ | { read d; rm -rf "$d"; }',
    ],
    /what read reads/,
  );

  it("still runs a loop over relative names find lists in /workspace/out", async () => {
    expectOk(
      await b.exec(
        "worker",
        `cd /workspace/out && echo x > r.o && find . -name '*.o' | while read -r f; do rm -f "$f"; done`,
      ),
    );
    expect(b.exists("/workspace/out/r.o")).toBe(false);
  }, 60_000);
});

describe("mv of a word the judge cannot compute", () => {
  refusesEachUnjudgeable(
    ['mv "$(cat /workspace/out/list)" /workspace/out/away', 'mv "$(ls -d ~)" /workspace/out/away'],
    /command substitution prints a path known only at run time/,
  );
  refusesEach(['mv "$(echo ~)" /workspace/out/away', 'd=$(echo ~); mv "$d" /workspace/out/away']);
  // Each emptied the folder: mv run by xargs was not judged (mv copies across, then removes).
  refusesEach([
    "mkdir -p /workspace/out/away && echo ~ | xargs mv -t /workspace/out/away",
    "echo @P | xargs -I{} mv {} /workspace/out/away",
  ]);

  it("still runs mv of names ls lists in /workspace/out", async () => {
    expectOk(
      await b.exec(
        "worker",
        "cd /workspace/out && mkdir -p mvd && echo x > m.o && mv $(ls *.o) mvd/ && rm -rf mvd",
      ),
    );
    expect(b.exists("/workspace/out/m.o")).toBe(false);
  }, 60_000);
});

describe("rm -f of names ls lists in the private folder", () => {
  it("runs cd ~ && rm -f $(ls *.o): entries of the folder, never the folder itself", async () => {
    await keep();
    expectOk(await b.exec("worker", "cd ~ && echo x > a.o && rm -f $(ls *.o)"));
    expectOk(await b.exec("worker", "cd ~ && echo x > b.o && ls *.o | xargs rm -f"));
    const left = await b.inner.exec({
      argv: ["sh", "-c", 'ls "$1"', "sh", tmp()],
      confinement: "unconfined",
    });
    expect(left.stdout).toBe("keep\n");
    expect(await kept()).toBe("k\n");
  }, 60_000);

  refusesEachUnjudgeable(
    [
      "cd ~ && rm -rf $(ls *)",
      "cd ~ && rm -f -r $(ls *.o)",
      "cd ~ && rm -f $(ls -d .)",
      "cd ~ && rm -d $(ls -a)",
      "cd ~ && rm -f $(ls .*)",
      "cd ~ && rm -f $(ls d/*.o)",
      "cd ~ && rm -f $(git ls-files -o)",
    ],
    /lists names in \/|prints a path known only at run time/,
  );
});
