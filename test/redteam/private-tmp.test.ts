// Red team: the agent's private temp folder. A confined exec runs with HOME and TMPDIR at
// /tmp/agent-<id> (sandbox/executor/exec.ts), which its Landlock domain lets it read and write
// whatever its grants. The gate judged `mktemp`, `tempfile` and `~/f` as writes to /tmp, so an
// agent with no /tmp grant was refused work that lands in its own folder. Now they are judged
// there and need no grant; what leads out of the folder is still judged where it lands:
//   - TMPDIR set by the command (`TMPDIR=D mktemp`, `export`, `env`): refused (unjudgeable);
//   - a link planted in the folder pointing into /workspace/pub: judged (and, made in the
//     same command, refused by Landlock) where it leads;
//   - another agent's private folder: a /tmp path like any other, no grant, refused.
// The agent may read /workspace/** and write /workspace/out/** only.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { privateTmpOf } from "../../src/gate/confinement.js";
import { analyzeCommand } from "../../src/security/shell.js";
import { execStartVars } from "../../src/tools/exec-known.js";
import { execPaths } from "../../src/tools/exec-paths.js";
import { planScripts } from "../../src/tools/exec-scripts.js";
import { expectOk } from "./fixture.js";
import { expectRefused, openSharedBench, readAllWriteOut, type SharedBench } from "./shared-bench.js";

let b: SharedBench;

const PROGRAMS = [
  "mktemp",
  "tempfile",
  "echo",
  "cat",
  "ln",
  "test",
  "env",
  "ls",
  "touch",
  "sh",
  "rm",
  "rmdir",
  "find",
];
const worker = readAllWriteOut(PROGRAMS);

beforeAll(async () => {
  b = await openSharedBench({
    profiles: { worker, other: worker },
    files: {
      "/workspace/pub/secret": "s\n",
      "/workspace/lib/tmpdir.sh": "export TMPDIR=/workspace/out\n",
      "/workspace/lib/home.sh": "echo x > ~/s\n",
      "/workspace/lib/mk.sh": "mktemp\n",
      "/workspace/lib/split.sh": "touch $HOME/x\n",
      "/workspace/lib/ifs.sh": "IFS=/\n",
      "/workspace/lib/cdpub.sh": "cd /workspace/pub\n",
      "/workspace/lib/cp-home.sh": "cp /workspace/pub/secret ~\n",
      "/workspace/lib/cd-home.sh": "cd /workspace/pub && cd /workspace/out && cd ~ && echo x > f4\n",
      "/workspace/lib/src-cd.sh": ". /workspace/lib/cdpub.sh\necho x > f2\n",
      "/workspace/out/.keep": "",
    },
    setup: "chmod -R a+rwX /workspace",
  });
}, 240_000);

afterAll(async () => {
  await b?.close();
});

const tmpOf = (profile: string) => privateTmpOf(b.agents.get(profile)!);

/** The file's content as seen unconfined in the container ("" when it is not there). */
async function contentOf(path: string): Promise<string> {
  const r = await b.inner.exec({
    argv: ["sh", "-c", `cat "$1" 2>/dev/null || true`, "sh", path],
    confinement: "unconfined",
  });
  return r.stdout;
}

/** The paths the scripts of `command` are judged to write, run by the worker in /workspace/out. */
async function writesJudged(command: string): Promise<string[]> {
  const place = { privateTmp: tmpOf("worker"), start: execStartVars(tmpOf("worker")) };
  const plan = await planScripts(
    b.inner,
    () => undefined,
    command,
    analyzeCommand(command),
    "/workspace/out",
    place,
  );
  return plan.analyses
    .flatMap((a) => a.paths ?? [])
    .filter((p) => p.access === "write")
    .map((p) => p.path);
}

describe("a write in the caller's private folder is judged there and needs no grant", () => {
  it("runs mktemp, and its file is in the private folder", async () => {
    const r = expectOk(await b.exec("worker", "mktemp"));
    const made = /\/tmp\/[^\s]+/.exec(r.output)?.[0];
    expect(made?.startsWith(`${tmpOf("worker")}/tmp.`), r.output).toBe(true);
    expect((await b.inner.exec({ argv: ["test", "-f", made!], confinement: "unconfined" })).exitCode).toBe(0);
  }, 60_000);

  it.each([
    ["mktemp -d", "mktemp -d"],
    ["mktemp -t", "mktemp -t x.XXXX"],
    ["mktemp --tmpdir", "mktemp --tmpdir y.XXXX"],
    ["tempfile", "tempfile"],
  ])(
    "runs %s in the private folder",
    async (_how, command) => {
      const r = expectOk(await b.exec("worker", command));
      expect(r.output).toContain(`${tmpOf("worker")}/`);
    },
    60_000,
  );

  it("runs f=$(mktemp) && echo x > $f", async () => {
    const r = expectOk(await b.exec("worker", 'f=$(mktemp) && echo x > "$f" && echo "at $f"'));
    const made = /at (\S+)/.exec(r.output)?.[1];
    expect(made?.startsWith(`${tmpOf("worker")}/`), r.output).toBe(true);
    expect(await contentOf(made!)).toBe("x\n");
  }, 60_000);

  it("runs echo x > ~/f, written in the private folder", async () => {
    expectOk(await b.exec("worker", "echo x > ~/f"));
    expect(await contentOf(`${tmpOf("worker")}/f`)).toBe("x\n");
  }, 60_000);

  it("runs echo x > $HOME/g and > $TMPDIR in braces, written in the private folder", async () => {
    const braced = ["$", "{TMPDIR}"].join("");
    expectOk(await b.exec("worker", `echo x > $HOME/g && echo y > "${braced}"/h`));
    expect(await contentOf(`${tmpOf("worker")}/g`)).toBe("x\n");
    expect(await contentOf(`${tmpOf("worker")}/h`)).toBe("y\n");
  }, 60_000);

  it("refuses a write that climbs out of the private folder by $HOME/../..", async () => {
    const r = await b.exec("worker", "echo x > $HOME/../../workspace/pub/z");
    expectRefused(b, "worker", r, "capability", /file_write on \/workspace\/pub\/z /);
    expect(await contentOf("/workspace/pub/z")).toBe("");
  }, 60_000);

  it("refuses TMPDIR=/workspace/pub mktemp (and export, env): judged where it writes", async () => {
    for (const command of [
      "TMPDIR=/workspace/pub mktemp",
      "export TMPDIR=/workspace/pub; mktemp",
      "env TMPDIR=/workspace/pub mktemp",
    ]) {
      const r = await b.exec("worker", command);
      expectRefused(b, "worker", r, "policy", /the command sets TMPDIR/);
    }
    const ls = await b.inner.exec({ argv: ["ls", "/workspace/pub"], confinement: "unconfined" });
    expect(ls.stdout.trim()).toBe("secret");
  }, 60_000);

  it("refuses mktemp after a sourced script that sets TMPDIR", async () => {
    // The script's export holds for the commands after `.`: mktemp writes in /workspace/out,
    // which the command's own analysis did not show, and it was judged in the private folder.
    const r = await b.exec("worker", ". /workspace/lib/tmpdir.sh; mktemp");
    expectRefused(b, "worker", r, "policy", /the command sets TMPDIR/);
    const ls = await b.inner.exec({ argv: ["ls", "-A", "/workspace/out"], confinement: "unconfined" });
    expect(ls.stdout.trim()).toBe(".keep");
  }, 60_000);

  it("does not judge an unquoted $HOME in the private folder when the command sets IFS", async () => {
    // With IFS=/ dash splits $HOME/x into "", "tmp" and "agent-<id>/x": paths in the working
    // folder, not the private one. The word is then unknown (Landlock is the wall), not a
    // path in the folder that needs no grant; ~ and a quoted $HOME are not split.
    const command = 'IFS=/; touch $HOME/x ~/y "$HOME"/z';
    const judged = await execPaths(b.inner, analyzeCommand(command), ["/workspace/out"], {
      privateTmp: tmpOf("worker"),
    });
    const written = judged.paths.filter((p) => p.access === "write").map((p) => p.path);
    expect(written.sort()).toEqual([`${tmpOf("worker")}/y`, `${tmpOf("worker")}/z`]);
    const r = expectOk(await b.exec("worker", `cd /workspace/out && ${command} 2>&1; ls -A`));
    expect(r.output).toMatch(/^tmp$/m);
    await b.inner.exec({ argv: ["rm", "-f", "/workspace/out/tmp"], confinement: "unconfined" });
  }, 60_000);

  it("refuses tempfile -p with a prefix that climbs out of the private folder", async () => {
    // tempfile makes $TMPDIR + the prefix, taken whole: /tmp/agent-<id>/../../workspace/pub/zXXXXXX.
    const r = await b.exec("worker", "tempfile -p ../../workspace/pub/z");
    expectRefused(b, "worker", r, "capability", /file_write on \/workspace\/pub\/z /);
    const ls = await b.inner.exec({ argv: ["ls", "/workspace/pub"], confinement: "unconfined" });
    expect(ls.stdout.trim()).toBe("secret");
  }, 60_000);

  it("does not let a command that moves HOME write where it leads", async () => {
    // `~` is then not resolved by the judge; Landlock, which has no write rule there, is the wall.
    for (const command of ["export HOME=/workspace/pub; echo x > ~/f", "HOME=/workspace/pub; echo x > ~/f"]) {
      const r = await b.exec("worker", command);
      if (!(r instanceof Error)) expect(r.isError, r.output).toBe(true);
    }
    expect(await contentOf("/workspace/pub/f")).toBe("");
  }, 60_000);

  it("does not let a hard link in the private folder write a file it may only read", async () => {
    // The link is judged a write in the folder (no grant needed) and its target a read. The
    // folder is another file system than /workspace (and Landlock would refuse a link that
    // gains the write right): EXDEV, and ~/h is a new file of its own.
    const r = expectOk(await b.exec("worker", "ln /workspace/pub/secret ~/h; echo x > ~/h; cat ~/h"));
    expect(r.output).toMatch(/failed to create hard link/);
    expect(await contentOf("/workspace/pub/secret")).toBe("s\n");
  }, 60_000);

  it("refuses a write to another agent's private folder", async () => {
    const r = await b.exec("worker", `echo x > ${tmpOf("other")}/f`);
    expectRefused(b, "worker", r, "capability", new RegExp(`file_write on ${tmpOf("other")}/f`));
    expect(await contentOf(`${tmpOf("other")}/f`)).toBe("");
  }, 60_000);

  it("judges a link planted in the private folder where it leads", async () => {
    // Made and written in one command: judged in the folder (the link is not there yet), so
    // Landlock is the wall, and it follows the link to /workspace/pub, which it refuses.
    const r = await b.exec("worker", "ln -s /workspace/pub/secret ~/link && echo x > ~/link");
    expect(r).not.toBeInstanceOf(Error);
    expect(await contentOf("/workspace/pub/secret")).toBe("s\n");
    // Once there, the gate resolves it and refuses before anything runs.
    const again = await b.exec("worker", "echo x > ~/link");
    expectRefused(b, "worker", again, "capability", /file_write on \/workspace\/pub\/secret/);
    expect(await contentOf("/workspace/pub/secret")).toBe("s\n");
  }, 60_000);
});

describe("a script the command runs is judged with the HOME and TMPDIR it gets", () => {
  it.each([
    ["sh s.sh", "sh /workspace/lib/home.sh"],
    [". s.sh", ". /workspace/lib/home.sh"],
  ])(
    "runs %s whose ~/s lands in the private folder",
    async (_how, command) => {
      // The script was judged with /tmp for ~: a false refusal (file_write on /tmp/s).
      await b.inner.exec({ argv: ["rm", "-f", `${tmpOf("worker")}/s`], confinement: "unconfined" });
      expectOk(await b.exec("worker", command));
      expect(await contentOf(`${tmpOf("worker")}/s`)).toBe("x\n");
    },
    60_000,
  );

  it("judges the script's ~ where the HOME the command sets leads", async () => {
    const out = expectOk(await b.exec("worker", "HOME=/workspace/out sh /workspace/lib/home.sh"));
    expect(await contentOf("/workspace/out/s"), out.output).toBe("x\n");
    const r = await b.exec("worker", "HOME=/workspace/pub sh /workspace/lib/home.sh");
    expectRefused(b, "worker", r, "capability", /file_write on \/workspace\/pub\/s /);
    expect(await contentOf("/workspace/pub/s")).toBe("");
    await b.inner.exec({ argv: ["rm", "-f", "/workspace/out/s"], confinement: "unconfined" });
  }, 60_000);

  it("does not judge the script's ~ as a path when the HOME given starts with -", async () => {
    // ~ is then an option of the program it is handed: `cp F ~` with HOME=--target-directory=D
    // copies into D. It was judged a write to ./--target-directory=D in the working folder (one
    // the agent may write); now ~ is not known there, and Landlock is the wall.
    const command = "HOME=--target-directory=/workspace/pub sh /workspace/lib/cp-home.sh";
    expect(await writesJudged(command)).toEqual([]);
    const r = await b.exec("worker", `cd /workspace/out && ${command}`);
    expect(r instanceof Error || r.isError, JSON.stringify(r)).toBe(true);
    const ls = await b.inner.exec({ argv: ["ls", "/workspace/pub"], confinement: "unconfined" });
    expect(ls.stdout.trim()).toBe("secret");
  }, 60_000);

  it("does not judge the script's $HOME/x in the private folder when the HOME given holds a blank", async () => {
    // dash splits the unquoted $HOME/x into two words: a folder in the private one, and
    // /workspace/pub/x. It was judged one path in the private folder (no grant), and ran;
    // Landlock refused the touch of /workspace/pub/x. Now $HOME is not known in the script.
    const command = `HOME='${tmpOf("worker")}/a /workspace/pub' sh /workspace/lib/split.sh`;
    expect(await writesJudged(command)).toEqual([]);
    const r = await b.exec("worker", command);
    expect(r instanceof Error || r.isError, JSON.stringify(r)).toBe(true);
    if (!(r instanceof Error)) expect(r.output).toContain("/workspace/pub/x");
    const ls = await b.inner.exec({ argv: ["ls", "/workspace/pub"], confinement: "unconfined" });
    expect(ls.stdout.trim()).toBe("secret");
  }, 60_000);

  it("judges the script's mktemp in the TMPDIR the command sets", async () => {
    const r = expectOk(await b.exec("worker", "TMPDIR=/workspace/out sh /workspace/lib/mk.sh"));
    const made = /\/workspace\/out\/tmp\.\S+/.exec(r.output)?.[0];
    expect(made, r.output).toBeDefined();
    await b.inner.exec({ argv: ["rm", "-f", made!], confinement: "unconfined" });
    const pub = await b.exec("worker", "TMPDIR=/workspace/pub sh /workspace/lib/mk.sh");
    expectRefused(b, "worker", pub, "capability", /file_write on \/workspace\/pub\/tmp\.X+ /);
  }, 60_000);
});

describe("a sourced script runs in the shell of the command", () => {
  it("does not judge its unquoted $HOME in the private folder after the command set IFS", async () => {
    // `IFS=/; . s.sh` splits the script's $HOME/x as the command's own (dash resets IFS only for
    // a script it runs): judged as a write in the private folder, it made ./tmp instead.
    expect(await writesJudged("IFS=/; . /workspace/lib/split.sh")).toEqual([]);
    // Set by a script sourced before it: the same shell.
    expect(await writesJudged(". /workspace/lib/ifs.sh; . /workspace/lib/split.sh")).toEqual([]);
    expect(await writesJudged("IFS=/; sh /workspace/lib/split.sh")).toEqual([`${tmpOf("worker")}/x`]);
    expect(await writesJudged(". /workspace/lib/split.sh")).toEqual([`${tmpOf("worker")}/x`]);
  }, 60_000);
});

describe("cd ~ goes to the private folder", () => {
  it.each([
    ["cd ~", "cd ~ && echo x > c1", "c1"],
    ["cd", "cd && echo x > c2", "c2"],
    ["cd $HOME", "cd $HOME && echo x > c3", "c3"],
  ])(
    "runs %s then a relative write, judged there",
    async (_how, command, file) => {
      // It was refused: a relative path after a cd to a folder known only at run time.
      expectOk(await b.exec("worker", command));
      expect(await contentOf(`${tmpOf("worker")}/${file}`)).toBe("x\n");
    },
    60_000,
  );

  it("refuses a relative write after cd ~ in a script handed HOME=-", async () => {
    // dash's `cd ~` is then `cd -`: back to /workspace/pub, where f4 was written (Landlock
    // refused it after the script had started); it was judged in /workspace/out/-.
    const r = await b.exec("worker", "HOME=- sh /workspace/lib/cd-home.sh");
    expectRefused(b, "worker", r, "policy", /moves to a directory known only at run time/);
    expect(await contentOf("/workspace/pub/f4")).toBe("");
  }, 60_000);

  it("still refuses a relative path climbing out of it", async () => {
    const r = await b.exec("worker", "cd ~ && echo x > ../../workspace/pub/c");
    expectRefused(b, "worker", r, "capability", /file_write on \/workspace\/pub\/c /);
  }, 60_000);
});

describe("a sourced script that changes directory moves the commands after it", () => {
  it.each([
    ["from the private folder", "cd ~ && . /workspace/lib/cdpub.sh && echo x > f1", "f1"],
    [
      "from a folder the agent may write",
      "cd /workspace/out && . /workspace/lib/cdpub.sh && echo x > f1",
      "f1",
    ],
    ["inside a script", "sh /workspace/lib/src-cd.sh", "f2"],
  ])(
    "refuses a relative write after it, %s",
    async (_how, command, file) => {
      // dash runs `. s.sh` in the same shell: its cd /workspace/pub held for `echo x > f1`, which
      // was judged in the folder the command was in (the private one: no grant) while it went to
      // /workspace/pub, where Landlock refused it after the command had started.
      const r = await b.exec("worker", command);
      expectRefused(b, "worker", r, "policy", /moves to a directory known only at run time/);
      expect(await contentOf(`/workspace/pub/${file}`)).toBe("");
    },
    60_000,
  );

  it("still judges an absolute path after it", async () => {
    const r = await b.exec(
      "worker",
      '. /workspace/lib/cdpub.sh && echo x > /workspace/out/f3 && echo "$PWD"',
    );
    expect(expectOk(r).output).toContain("/workspace/pub");
    expect(await contentOf("/workspace/out/f3")).toBe("x\n");
  }, 60_000);
});

describe("removing the private folder itself", () => {
  const keep = async () => {
    expectOk(await b.exec("worker", "echo made")); // the executor makes the folder for a first exec
    await b.inner.exec({
      argv: ["sh", "-c", 'echo k > "$1/keep"', "sh", tmpOf("worker")],
      confinement: "unconfined",
    });
  };

  it("refuses rm -r of ~ or $HOME as deleting the home tree (rule disk-wipe)", async () => {
    await keep();
    for (const command of ["rm -rf ~", "rm -r $HOME", "rm -rf ~/*"]) {
      expectRefused(b, "worker", await b.exec("worker", command), "policy", /rule disk-wipe/);
    }
    expect(await contentOf(`${tmpOf("worker")}/keep`)).toBe("k\n");
  }, 60_000);

  it.each([
    ["rm -rf $TMPDIR", "rm -rf $TMPDIR"],
    ["rm -r with the folder's path", "rm -r @P"],
    ["rm -rf $TMPDIR/", 'rm -rf "$TMPDIR"/'],
    ["rmdir", "rmdir @P"],
    ["rm -rf $TMPDIR after a write to it", "touch $TMPDIR && rm -rf $TMPDIR"],
    ["find with the folder's path, -delete", "find @P -delete"],
    ["find with the folder's path -delete", "find -L @P -type f -o -delete"],
  ])(
    "refuses %s before anything is removed, as Landlock keeps the folder",
    async (_how, command) => {
      // Landlock lets rm empty the folder and refuses the folder's own entry in /tmp: the judge
      // allowed it (a path in the folder needs no grant), and the agent lost its files to a
      // command that then failed.
      await keep();
      const r = await b.exec("worker", command.replace("@P", tmpOf("worker")));
      expectRefused(b, "worker", r, "capability", new RegExp(`file_write on ${tmpOf("worker")} `));
      expect(await contentOf(`${tmpOf("worker")}/keep`)).toBe("k\n");
    },
    60_000,
  );

  it("runs find -mindepth 1 -delete with the folder's path (what is in the folder)", async () => {
    // (find $TMPDIR is refused for its run-time starting point, find . in ~ by disk-wipe.)
    await keep();
    expectOk(await b.exec("worker", `find ${tmpOf("worker")} -mindepth 1 -delete`));
    expect(await contentOf(`${tmpOf("worker")}/keep`)).toBe("");
  }, 60_000);

  it("refuses find -delete in a folder the agent may only read, before anything is removed", async () => {
    // Its starting points were judged as read or written: Landlock then refused each unlink.
    const r = await b.exec("worker", "find /workspace/pub -name secret -delete");
    expectRefused(b, "worker", r, "capability", /file_write on \/workspace\/pub /);
  }, 60_000);

  it("runs rm -rf $TMPDIR/* (what is in the folder)", async () => {
    await keep();
    expectOk(await b.exec("worker", "rm -rf $TMPDIR/*"));
    expect(await contentOf(`${tmpOf("worker")}/keep`)).toBe("");
  }, 60_000);
});

describe("a cleared environment has no TMPDIR", () => {
  it("judges env -i mktemp in /tmp, not the private folder", async () => {
    // Unreachable today (loader-injection refuses every cleared environment), judged right anyway.
    for (const command of ["env -i mktemp", "setpriv --reset-env mktemp"]) {
      const judged = await execPaths(b.inner, analyzeCommand(command), ["/workspace/out"], {
        privateTmp: tmpOf("worker"),
      });
      expect(judged.needs, command).toContainEqual(
        expect.objectContaining({ kind: "file_write", path: "/tmp/tmp.XXXXXXXXXX" }),
      );
    }
  }, 60_000);
});

describe("removing a link to the private folder removes the link", () => {
  const link = async (at: string, to: string) => {
    expectOk(await b.exec("worker", "echo made"));
    await b.inner.exec({
      argv: ["sh", "-c", 'echo k > "$1/keep" && ln -sfn "$1" "$2"', "sh", to, at],
      confinement: "unconfined",
    });
  };

  it("runs rm -r L, L a link to the private folder in a folder the agent may write", async () => {
    // Judged as removing the folder itself (refused: file_write on it), while rm removes the link.
    await link("/workspace/out/tl", tmpOf("worker"));
    expectOk(await b.exec("worker", "rm -r /workspace/out/tl"));
    expect(await contentOf(`${tmpOf("worker")}/keep`)).toBe("k\n");
    const left = await b.inner.exec({
      argv: ["sh", "-c", "test -L /workspace/out/tl && echo there || echo gone"],
      confinement: "unconfined",
    });
    expect(left.stdout).toBe("gone\n");
  }, 60_000);

  it("refuses rm -r L/ (followed: the folder it leads to) and the link where it may only read", async () => {
    await link("/workspace/out/tl", tmpOf("worker"));
    const r = await b.exec("worker", "rm -r /workspace/out/tl/");
    expectRefused(b, "worker", r, "capability", new RegExp(`file_write on ${tmpOf("worker")} `));
    await link("/workspace/pub/tl", tmpOf("worker"));
    const pub = await b.exec("worker", "rm /workspace/pub/tl");
    expectRefused(b, "worker", pub, "capability", /file_write on \/workspace\/pub\/tl /);
    // find -L follows a starting point that is a link and deletes in what it leads to.
    await link("/workspace/out/pl", "/workspace/pub");
    const find = await b.exec("worker", "find -L /workspace/out/pl -delete");
    expectRefused(b, "worker", find, "capability", /file_write on \/workspace\/pub /);
    expect(await contentOf("/workspace/pub/secret")).toBe("s\n");
    expect(await contentOf(`${tmpOf("worker")}/keep`)).toBe("k\n");
  }, 60_000);
});

describe("removing the private folder through find -exec rm", () => {
  const keep = async () => {
    expectOk(await b.exec("worker", "echo made"));
    await b.inner.exec({
      argv: ["sh", "-c", 'echo k > "$1/keep"', "sh", tmpOf("worker")],
      confinement: "unconfined",
    });
  };

  it.each([
    ["-exec rm -rf {} +", "find @P -exec rm -rf {} +"],
    ["-exec rm -r {} \\;", "find @P -exec rm -r {} \\;"],
    ["-execdir rm -rf {} +", "find @P -execdir rm -rf {} +"],
  ])(
    "refuses find with the folder's path %s before anything is removed",
    async (_how, command) => {
      // find handed the folder itself to rm, which emptied it and failed on its entry in /tmp.
      await keep();
      const r = await b.exec("worker", command.replace("@P", tmpOf("worker")));
      expectRefused(b, "worker", r, "capability", new RegExp(`file_write on ${tmpOf("worker")} `));
      expect(await contentOf(`${tmpOf("worker")}/keep`)).toBe("k\n");
    },
    60_000,
  );

  it("runs find -mindepth 1 -exec rm -rf {} + with the folder's path (what is in the folder)", async () => {
    await keep();
    expectOk(await b.exec("worker", `find ${tmpOf("worker")} -mindepth 1 -exec rm -rf {} +`));
    expect(await contentOf(`${tmpOf("worker")}/keep`)).toBe("");
  }, 60_000);

  it("refuses find -exec rm in a folder the agent may only read, before anything is removed", async () => {
    const r = await b.exec("worker", "find /workspace/pub -name secret -exec rm {} +");
    expectRefused(b, "worker", r, "capability", /file_write on \/workspace\/pub /);
    expect(await contentOf("/workspace/pub/secret")).toBe("s\n");
  }, 60_000);
});

describe("a loop whose body sources a script that changes directory", () => {
  it("refuses a script run before the `.` in the body (the next pass runs it in the moved folder)", async () => {
    // rel.sh was judged from /workspace/out (writable) although the second pass ran it in
    // /workspace/pub, where Landlock refused its write after the command had started.
    await b.inner.exec({
      argv: ["sh", "-c", "echo 'echo x > f5' > /workspace/lib/rel.sh && chmod a+r /workspace/lib/rel.sh"],
      confinement: "unconfined",
    });
    const command =
      "cd /workspace/out && for i in 1 2; do sh /workspace/lib/rel.sh; . /workspace/lib/cdpub.sh; done";
    const r = await b.exec("worker", command);
    expectRefused(b, "worker", r, "policy", /sourced script that changes directory may have moved it/);
    expect(await contentOf("/workspace/out/f5")).toBe("");
  }, 60_000);

  it("still runs the script when the `.` is not in a loop", async () => {
    const r = await b.exec(
      "worker",
      "cd /workspace/out && sh /workspace/lib/rel.sh; . /workspace/lib/cdpub.sh",
    );
    expectOk(r);
    expect(await contentOf("/workspace/out/f5")).toBe("x\n");
  }, 60_000);
});

describe("a command named only at run time may move the shell or set HOME and TMPDIR", () => {
  // With an `exec: *` grant `x=cd; $x /workspace/pub` runs: the judge cannot see it is a cd
  // or an export, and judged what came after it where the command had been.
  const judge = (command: string) =>
    execPaths(b.inner, analyzeCommand(command), ["/workspace/out"], { privateTmp: tmpOf("worker") });
  const script = (command: string) =>
    planScripts(b.inner, () => undefined, command, analyzeCommand(command), "/workspace/out", {
      privateTmp: tmpOf("worker"),
      start: execStartVars(tmpOf("worker")),
    });

  it.each([
    ["x=cd; $x /workspace/pub; echo x > f"],
    ["$(echo cd) /workspace/pub && echo x > f"],
    ['eval "$c"; echo x > f'],
    ["x=cd; $x /workspace/pub; for i in 1; do echo x > f; done"],
  ])(
    "refuses a relative path after it: %s",
    async (command) => {
      await expect(judge(command)).rejects.toThrow(/directory known only at run time/);
    },
    60_000,
  );

  it.each([
    ["x=export; $x HOME=/workspace/pub; echo x > ~/f"],
    ["$(echo export) HOME=/workspace/pub; echo x > $HOME/f"],
  ])(
    "leaves ~ and $HOME unresolved after it: %s",
    async (command) => {
      // Judged as the private folder's f (no grant); dash wrote /workspace/pub/f.
      const judged = await judge(command);
      expect(judged.paths.map((p) => p.path)).not.toContain(`${tmpOf("worker")}/f`);
    },
    60_000,
  );

  it("refuses mktemp after it (TMPDIR not known)", async () => {
    await expect(judge("x=export; $x TMPDIR=/workspace/pub; mktemp")).rejects.toThrow(/TMPDIR/);
  }, 60_000);

  it("refuses a script run after it (its folder and HOME not known)", async () => {
    await expect(script("x=cd; $x /workspace/pub; sh /workspace/lib/rel.sh")).rejects.toThrow(
      /directory known only at run time/,
    );
  }, 60_000);

  it("refuses it through command, and not when a program runs it (a child cannot move the shell)", async () => {
    await expect(judge("x=cd; command $x /workspace/pub; echo x > f")).rejects.toThrow(
      /known only at run time/,
    );
    const judged = await judge("nice $x /workspace/pub; echo x > f");
    expect(judged.paths.map((p) => p.path)).toContain("/workspace/out/f");
  }, 60_000);

  it("still judges an absolute path after it, and a relative one before it", async () => {
    const judged = await judge("echo x > f; x=cd; $x /workspace/pub; echo y > /workspace/out/g");
    expect(judged.paths.map((p) => p.path)).toEqual(
      expect.arrayContaining(["/workspace/out/f", "/workspace/out/g"]),
    );
  }, 60_000);
});

describe("removing the private folder as the folder the shell is in", () => {
  it.each([
    ['cd ~ && rm -rf "$PWD"'],
    ["cd ~ && rm -rf $PWD"],
    ['cd ~ && rm -rf "$(pwd)"'],
    ['cd @P && rm -rf "$(pwd -P)"'],
  ])(
    "refuses %s before anything is removed",
    async (command) => {
      // $PWD after a known cd is that folder: rm emptied it and failed on its entry in /tmp.
      expectOk(await b.exec("worker", "echo made"));
      await b.inner.exec({
        argv: ["sh", "-c", 'echo k > "$1/keep"', "sh", tmpOf("worker")],
        confinement: "unconfined",
      });
      const r = await b.exec("worker", command.replace("@P", tmpOf("worker")));
      if (command.includes("pwd"))
        expect(r).toBeInstanceOf(Error); // pwd: no exec grant names it
      else expectRefused(b, "worker", r, "capability", new RegExp(`file_write on ${tmpOf("worker")} `));
      expect(await contentOf(`${tmpOf("worker")}/keep`)).toBe("k\n");
      const judged = execPaths(
        b.inner,
        analyzeCommand(command.replace("@P", tmpOf("worker"))),
        ["/workspace/out"],
        {
          privateTmp: tmpOf("worker"),
        },
      );
      await expect(judged).resolves.toEqual(
        expect.objectContaining({
          needs: expect.arrayContaining([
            expect.objectContaining({ kind: "file_write", path: tmpOf("worker") }),
          ]),
        }),
      );
    },
    60_000,
  );

  it("refuses rm -rf $PWD after a cd to a folder known only at run time", async () => {
    await expect(
      execPaths(b.inner, analyzeCommand('cd "$D" && rm -rf "$PWD"'), ["/workspace/out"], {}),
    ).rejects.toThrow(/directory known only at run time/);
  }, 60_000);
});
