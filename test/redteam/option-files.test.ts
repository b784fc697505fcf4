// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are shell text, not templates
// Red team: files a command names where the gate's path check did not look. The agent may
// read /workspace/public/** and write /workspace/public/out/** only; each attack names a file
// outside them in a spelling the exec tool did not judge before:
//   - a value attached to a short option (`sort -o/F`, `grep -f/F`, `cp -t/D`), or a run-time
//     value after `--opt=` (`grep --file=/D/$X`): pathOf and knownPart skipped any word
//     starting with `-`;
//   - a file named in the options of a wrapper that is not a command of its own (`xargs -a F`,
//     `strace -o F`, `flock F`, `script -c CMD F`): the wrapper's step named it, or nothing
//     did, and it was dropped with the wrapper;
//   - a relative `ln -s` target, judged from the cwd while the kernel follows it from the
//     link's folder (`ln -s ../../secret pub/out/l && cat pub/out/l/k.txt`);
//   - a file an awk program opens itself (getline <, print >, ARGV), and sed -i's backup
//     (a suffix with * or / moves it to another folder).
// On main each passed the gate (audited tool.invoked) and only Landlock, the second line,
// stopped the open. Both lines must hold: each is now refused before anything runs (the
// capability stage for a file judged, the policy stage for what cannot be), audited, naming
// the file or the construct, and nothing is written. The same spellings inside the grants run.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AidoError } from "../../src/errors.js";
import { expectOk } from "./fixture.js";
import { expectRefused, openSharedBench, type SharedBench } from "./shared-bench.js";

let b: SharedBench;

const PROFILES = {
  worker: [
    "tool: exec",
    "file_read: /workspace",
    "file_read: /workspace/public/**",
    "file_write: /workspace/public/out/**",
    "file_write: /workspace/public/one.txt",
    ...["grep", "sort", "cp", "echo", "true", "cat", "ln", "awk", "gawk", "sed", "git"].map(
      (p) => `exec: ${p} *`,
    ),
  ],
};

beforeAll(async () => {
  b = await openSharedBench({
    profiles: PROFILES,
    files: {
      "/workspace/public/notes.txt": "b\na\n",
      "/workspace/public/out/.keep": "",
      "/workspace/public/out/f": "a\n",
      "/workspace/public/one.txt": "a\n",
      "/workspace/secret/k.txt": "TOPSECRET\n",
    },
    setup: [
      "git init -q /workspace/public/repo",
      "git -C /workspace/public/repo -c user.email=a@b -c user.name=n commit -q --allow-empty -m one",
      "chmod -R a+rwX /workspace",
    ].join(" && "),
  });
}, 240_000);

afterAll(async () => {
  await b?.close();
});

describe("files named in option values and wrapper options are judged before anything runs", () => {
  it.each([
    [
      "sort -o with the file attached",
      "sort -o/workspace/secret/s /workspace/public/notes.txt",
      /file_write on \/workspace\/secret\/s \(argument 1 of sort: "\/workspace\/secret\/s"\)/,
    ],
    [
      "grep -f with the file attached",
      "grep -f/workspace/secret/k.txt /workspace/public/notes.txt",
      /on \/workspace\/secret\/k\.txt \(argument 1 of grep/,
    ],
    [
      "cp -t with the folder attached",
      "cp -t/workspace/secret /workspace/public/notes.txt",
      /file_write on \/workspace\/secret \(argument 1 of cp/,
    ],
    [
      "a cluster of short options ending in a path",
      "grep -rf/workspace/secret/k.txt /workspace/public",
      /on \/workspace\/secret\/k\.txt \(argument 1 of grep/,
    ],
    [
      "a run-time value after --opt=",
      "grep --file=/workspace/secret/k$X /workspace/public/notes.txt",
      /on \/workspace\/secret \(argument 1 of grep/,
    ],
    [
      "a run-time value attached to a short option",
      'grep -f"/workspace/secret/$X" /workspace/public/notes.txt',
      /on \/workspace\/secret \(argument 1 of grep/,
    ],
    [
      "xargs -a",
      "xargs -a /workspace/secret/k.txt echo",
      /file_read on \/workspace\/secret\/k\.txt \(a file named in xargs's options/,
    ],
    [
      "xargs --arg-file=",
      "xargs --arg-file=/workspace/secret/k.txt echo",
      /file_read on \/workspace\/secret\/k\.txt \(a file named in xargs's options/,
    ],
    [
      "strace -o",
      "strace -o /workspace/secret/trace true",
      /file_write on \/workspace\/secret\/trace \(a file named in strace's options/,
    ],
    [
      "strace -o attached",
      "strace -o/workspace/secret/trace true",
      /file_write on \/workspace\/secret\/trace \(a file named in strace's options/,
    ],
    [
      "flock's lock file",
      "flock /workspace/secret/lock true",
      /file_write on \/workspace\/secret\/lock \(a file named in flock's options/,
    ],
    [
      "flock's lock file, with -c",
      "flock /workspace/secret/lock -c true",
      /file_write on \/workspace\/secret\/lock \(a file named in flock's options/,
    ],
    [
      "script's typescript, with -c",
      "script -q -c true /workspace/secret/log",
      /file_write on \/workspace\/secret\/log \(a file named in script's options/,
    ],
    [
      "a wrapper's relative file, where the code it runs moves elsewhere",
      "cd /workspace && flock secret/lock -c 'cd /workspace/public/out && true'",
      /file_write on \/workspace\/secret\/lock \(a file named in flock's options/,
    ],
    [
      "a wrapper's relative file under env -C",
      "cd /workspace && xargs -a secret/k.txt env -C /workspace/public echo",
      /file_read on \/workspace\/secret\/k\.txt/,
    ],
  ])(
    "refuses %s",
    async (_how, command, why) => {
      const r = await b.exec("worker", command);
      expectRefused(b, "worker", r, "capability", why);
      for (const f of ["s", "trace", "lock", "log"])
        expect(b.exists(`/workspace/secret/${f}`), f).toBe(false);
    },
    60_000,
  );

  it.each([
    [
      "sort -o into the writable folder",
      "sort -o/workspace/public/out/s /workspace/public/notes.txt && cat /workspace/public/out/s",
      "a\nb",
    ],
    [
      "grep -f with a readable file",
      "grep -f/workspace/public/notes.txt /workspace/public/notes.txt",
      "b\na",
    ],
    [
      "cp -t into the writable folder",
      "cp -t/workspace/public/out /workspace/public/notes.txt && cat /workspace/public/out/notes.txt",
      "b\na",
    ],
    ["xargs -a with a readable file", "xargs -a /workspace/public/notes.txt echo", "b a"],
    ["flock on a lock in the writable folder", "flock /workspace/public/out/lock echo locked", "locked"],
  ])(
    "still runs %s",
    async (_how, command, out) => {
      const r = expectOk(await b.exec("worker", command));
      expect(r.output).toContain(out);
    },
    60_000,
  );
});

describe("a relative symlink target is judged from the folder the link is made in", () => {
  it.each([
    [
      "ln -s with the link's path",
      "ln -s ../../secret /workspace/public/out/l1 && cat /workspace/public/out/l1/k.txt",
      /on \/workspace\/secret \(argument 2 of ln -s, the link's target from the link's folder: "\/workspace\/public\/out\/\.\.\/\.\.\/secret"\)/,
    ],
    [
      "ln -s into a folder",
      "ln -s ../../secret/k.txt /workspace/public/out && cat /workspace/public/out/k.txt",
      /on \/workspace\/secret\/k\.txt \(argument 2 of ln -s, the link's target from the link's folder/,
    ],
    [
      "ln -s -t",
      "ln -s -t /workspace/public/out ../../secret && cat /workspace/public/out/secret/k.txt",
      /on \/workspace\/secret \(argument 4 of ln -s, the link's target from the link's folder/,
    ],
    [
      "ln -sf with a run-time link name",
      'ln -sf ../../secret "/workspace/public/out/$X"',
      /ln -s with a relative target .* link made in a folder known only at run time/,
    ],
  ])(
    "refuses %s",
    async (_how, command, why) => {
      const r = await b.exec("worker", command);
      expect(r).toBeInstanceOf(AidoError);
      const e = r as AidoError;
      expect(["capability", "policy"]).toContain(e.details.stage);
      expect(e.message).toMatch(why);
      const denied = b.rt.audit.query({
        agent_id: b.agents.get("worker")!,
        kind: "tool.denied",
        limit: 1,
      })[0];
      expect((denied?.payload as { reason?: string } | undefined)?.reason).toBe(e.message);
      for (const l of ["l1", "k.txt", "secret"])
        expect(b.exists(`/workspace/public/out/${l}`), l).toBe(false);
    },
    60_000,
  );

  it("still makes a link whose target the grants cover, and reads through it", async () => {
    const r = expectOk(
      await b.exec("worker", "ln -s ../notes.txt /workspace/public/out/n && cat /workspace/public/out/n"),
    );
    expect(r.output).toContain("b\na");
  }, 60_000);
});

describe("an awk program opens no file the command does not name", () => {
  it.each([
    [
      "getline < FILE",
      `awk 'BEGIN { while ((getline l < "/workspace/secret/k.txt") > 0) print l }'`,
      /the awk program reads a file it names \(getline <\)/,
    ],
    [
      "print > FILE",
      `awk 'BEGIN { print "x" > "/workspace/secret/w" }'`,
      /the awk program writes a file it names \(print > or >>\)/,
    ],
    [
      "printf >> FILE",
      `awk '{ printf "%s", $0 >> "/workspace/secret/w" }' /workspace/public/notes.txt`,
      /the awk program writes a file it names/,
    ],
    [
      "a file added to ARGV",
      `awk 'BEGIN { ARGV[1] = "/workspace/secret/k.txt"; ARGC = 2 } { print }'`,
      /the awk program uses ARGV/,
    ],
    [
      "gawk, the same",
      `gawk 'BEGIN { getline l < "/workspace/secret/k.txt"; print l }'`,
      /reads a file it names/,
    ],
  ])(
    "refuses %s",
    async (_how, command, why) => {
      const r = await b.exec("worker", command);
      expectRefused(b, "worker", r, "policy", why);
      expect(b.exists("/workspace/secret/w")).toBe(false);
    },
    60_000,
  );

  it.each([
    ["a comparison outside print", `awk '$1 > "a" { print }' /workspace/public/notes.txt`, "b"],
    [
      "a comparison in parentheses inside print",
      `awk '{ print ($1 > "a") }' /workspace/public/notes.txt`,
      "1\n0",
    ],
    ["print to /dev/stderr", `awk 'BEGIN { print "to-stderr" > "/dev/stderr" }'`, "to-stderr"],
    ["gawk --sandbox, which switches the redirections off", `gawk --sandbox 'BEGIN { print 1 }'`, "1"],
  ])(
    "still runs %s",
    async (_how, command, out) => {
      const r = expectOk(await b.exec("worker", command));
      expect(r.output).toContain(out);
    },
    60_000,
  );
});

describe("sed -i's backup is a write", () => {
  it.each([
    [
      "a suffix that moves the backup to another folder",
      "cd /workspace/public/out && sed -i'../../secret/*' s/a/b/ f",
      /sed -i with the backup suffix "\.\.\/\.\.\/secret\/\*"/,
      "policy",
    ],
    [
      "a plain suffix beside a file granted alone",
      "sed -i.bak s/a/b/ /workspace/public/one.txt",
      /file_write on \/workspace\/public\/one\.txt\.bak \(a file named in sed's options/,
      "capability",
    ],
  ])(
    "refuses %s",
    async (_how, command, why, stage) => {
      const r = await b.exec("worker", command);
      expectRefused(b, "worker", r, stage, why);
      expect(b.exists("/workspace/secret/f")).toBe(false);
      expect(b.exists("/workspace/public/out/f")).toBe(true);
    },
    60_000,
  );

  it("still writes to its own output with w /dev/stdout, which GNU sed opens no file for", async () => {
    const r = expectOk(await b.exec("worker", "sed -n '/a/w /dev/stdout' /workspace/public/notes.txt"));
    expect(r.output).toContain("--- stdout ---\na\n");
    expect(
      expectOk(await b.exec("worker", "sed -n 's/b/B/w /dev/stderr' /workspace/public/notes.txt")).output,
    ).toContain("B");
  }, 60_000);

  it("still edits in place with a plain suffix where the folder is granted", async () => {
    const r = expectOk(
      await b.exec(
        "worker",
        "sed -i.bak s/a/b/ /workspace/public/out/f && cat /workspace/public/out/f.bak /workspace/public/out/f",
      ),
    );
    expect(r.output).toContain("a\nb");
  }, 60_000);
});

// A file written through an option spelled another way was judged as read-or-write (any
// grant would do), or not at all: writeTargets knew `sort -o F` and `-oF` but not a cluster
// (`-uo F`), cp's and ln's `-t DIR` but not `-rt DIR` nor `--target DIR` (cp takes any
// abbreviation), `sed -i` only as a separate word and never when --expression gave the
// script, ln -s but not `--sym` (so a relative target went unjudged from the link's folder),
// and gawk's own output files (-o, -d, -p) not at all. On main each passed the gate with
// only a read grant on the file, and Landlock refused the write.
describe("a file written through an option is judged as a write, however the option is spelled", () => {
  it.each([
    ["sort -o in a cluster", "sort -uo /workspace/public/notes.txt /workspace/public/notes.txt"],
    ["sort -o in a cluster, attached", "sort -uo/workspace/public/notes.txt /workspace/public/notes.txt"],
    ["cp -t in a cluster", "cp -rt /workspace/public /workspace/public/out/f"],
    ["cp --target, an abbreviation", "cp --target /workspace/public /workspace/public/out/f"],
    ["sed --in-place= with no suffix", "sed --in-place= s/a/b/ /workspace/public/notes.txt"],
    ["sed -i after --expression", "sed --expression=s/a/b/ -i /workspace/public/notes.txt"],
    ["sed -i after an attached -e", "sed -es/a/b/ -i /workspace/public/notes.txt"],
    ["gawk -o, the program pretty-printed", "awk -o/workspace/public/notes.txt 'BEGIN { x = 1 }'"],
    ["gawk --dump-variables", "gawk --dump-variables=/workspace/public/notes.txt 'BEGIN { x = 1 }'"],
    ["gawk -d, its default file in the working folder", "cd /workspace/public && awk -d 'BEGIN { x = 1 }'"],
    ["git log --output=", "git -C /workspace/public/repo log --output=/workspace/public/notes.txt -1"],
    ["git archive -o", "git -C /workspace/public/repo archive -o /workspace/public/notes.txt HEAD"],
    ["git format-patch -o", "cd /workspace/public/repo && git format-patch -o /workspace/public --root"],
  ])(
    "refuses %s",
    async (_how, command) => {
      const r = await b.exec("worker", command);
      expectRefused(
        b,
        "worker",
        r,
        "capability",
        /no capability grants file_write on \/workspace\/public[/ ]/,
      );
      expect(b.exists("/workspace/public/f")).toBe(false);
    },
    60_000,
  );

  it("judges ln --sym's relative target from the link's folder, as ln -s's", async () => {
    const r = await b.exec(
      "worker",
      "ln --sym ../../secret /workspace/public/out/l2 && cat /workspace/public/out/l2/k.txt",
    );
    expectRefused(b, "worker", r, "capability", /on \/workspace\/secret \(argument 2 of ln -s/);
    expect(b.exists("/workspace/public/out/l2")).toBe(false);
  }, 60_000);

  it("judges ln -st DIR's target from DIR", async () => {
    const r = await b.exec(
      "worker",
      "ln -st /workspace/public/out ../../secret && cat /workspace/public/out/secret/k.txt",
    );
    expectRefused(b, "worker", r, "capability", /on \/workspace\/secret \(argument 3 of ln -s/);
  }, 60_000);

  it.each([
    [
      "sort -uo into the writable folder",
      "sort -uo /workspace/public/out/u /workspace/public/notes.txt && cat /workspace/public/out/u",
      "a\nb",
    ],
    [
      "cp -rt into the writable folder",
      "cp -rt /workspace/public/out /workspace/public/notes.txt && cat /workspace/public/out/notes.txt",
      "b\na",
    ],
    [
      "sed -i after --expression",
      "cp /workspace/public/notes.txt /workspace/public/out/e && sed --expression=s/a/c/ -i /workspace/public/out/e && cat /workspace/public/out/e",
      "b\nc",
    ],
    [
      "git log --output= into the writable folder",
      "git -C /workspace/public/repo log --output=/workspace/public/out/log -1 --format=%s && cat /workspace/public/out/log",
      "one",
    ],
    [
      "gawk -o into the writable folder",
      "awk -o/workspace/public/out/p 'BEGIN { x = 1 }' && cat /workspace/public/out/p",
      "x = 1",
    ],
  ])(
    "still runs %s",
    async (_how, command, out) => {
      const r = expectOk(await b.exec("worker", command));
      expect(r.output).toContain(out);
    },
    60_000,
  );
});
