// Red team, second pass on run-time positional parameters (exec-runtime-args.test.ts was the
// first): where a script's `$1` comes from other than the words written after it.
// - A sourced script (`. b.sh`) runs with the positional parameters of the code that sources
//   it: `echo ~ | xargs sh a.sh` with a.sh `. b.sh` and b.sh `rm -rf "$1"` emptied the private
//   folder (a.sh uses no parameter, b.sh was judged as run with none), as did `sh a.sh ~`, a.sh
//   shifting first, `set -- ~; . b.sh` in the command itself, and `f() { . b.sh; }; f ~`.
// - getopts sets OPTARG from them: `sh -c 'getopts d: o; rm -rf "$OPTARG"' sh -d ~` emptied it
//   (judged as `rm -rf ""`), through a script and through xargs too.
// - A variable given a positional parameter after shift (`shift; d=$1; rm -rf "$d"`).
// - In a function they are its arguments: `f() { rm -rf "$1"; }; f ~` (f granted) was judged
//   with the shell's $1, as was `f() { sh s.sh "$1"; }; f ~`.
// Each is refused as unjudgeable (audited) and the folder kept; ordinary uses still run.
// The agent may read /workspace/** and write /workspace/out/** only.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { privateFolder, ran } from "./private-folder.js";
import { expectRefused, openSharedBench, readAllWriteOut, type SharedBench } from "./shared-bench.js";

let b: SharedBench;

// `f`: a function the attacks define (granted, so that the judge, not the grant, decides).
const PROGRAMS = ["echo", "printf", "find", "xargs", "sh", "rm", "cat", "set", "wc", "f"];

const S = "/workspace/out";

beforeAll(async () => {
  b = await openSharedBench({
    profiles: { worker: readAllWriteOut(PROGRAMS) },
    files: {
      [`${S}/outer.sh`]: `. ${S}/inner.sh\n`,
      [`${S}/inner.sh`]: 'rm -rf "$1"\n',
      [`${S}/shift.sh`]: `shift\n. ${S}/inner.sh\n`,
      [`${S}/getopts.sh`]: 'while getopts d: o; do rm -rf "$OPTARG"; done\n',
      [`${S}/lib.sh`]: "greeting=hello\n",
      [`${S}/uses-lib.sh`]: `. ${S}/lib.sh\necho "$greeting" > "$1"\n`,
      [`${S}/fn.sh`]: 'f() { rm -rf "$1"; }\nf "$2"\n',
      [`${S}/s.sh`]: 'rm -rf "$1"\n',
      [`${S}/opts.sh`]: 'while getopts v o; do echo "$o"; done\nrm -f "$2"\n',
    },
    setup: "chmod -R a+rwX /workspace",
  });
}, 240_000);

afterAll(async () => {
  await b?.close();
});

const { tmp, keep, kept, expectKept } = privateFolder(() => b);

const SOURCED = /runs the script \S*inner\.sh, which gets its positional parameters at run time from/;

describe("a sourced script runs with the positional parameters of the code that sources it", () => {
  it("refuses echo ~ | xargs sh a.sh, a.sh sourcing b.sh that removes $1", async () => {
    await expectKept(
      `echo @P | xargs sh ${S}/outer.sh`,
      /inner\.sh, which gets its positional parameters at run time from xargs.*write the command out/,
    );
  }, 60_000);

  it("refuses sh a.sh ~ as removing the private folder: b.sh's $1 is ~", async () => {
    await keep();
    const r = await b.exec("worker", `sh ${S}/outer.sh ${tmp()}`);
    expectRefused(b, "worker", r, "capability", new RegExp(`file_write on ${tmp()} `));
    expect(await kept()).toBe("k\n");
  }, 60_000);

  it.each([
    [`sh ${S}/shift.sh ${S}/nothing @P`, / shift in the code that sources it, and uses them/],
    [`set -- @P; . ${S}/inner.sh`, / set in the code that sources it, and uses them/],
    [`f() { . ${S}/inner.sh; }; f @P`, / the function f that sources it, and uses them/],
  ])(
    "refuses %s: the parameters were rebound before the source, or are a function's",
    async (command, why) => {
      await expectKept(command, new RegExp(`${SOURCED.source}.*${why.source}`));
    },
    60_000,
  );

  it("runs a script that sources a library and writes the file its $1 names", async () => {
    ran(await b.exec("worker", `sh ${S}/uses-lib.sh ${S}/greeting.txt`));
    const r = await b.inner.exec({ argv: ["cat", `${S}/greeting.txt`], confinement: "unconfined" });
    expect(r.stdout).toBe("hello\n");
  }, 60_000);
});

describe("getopts hands a positional parameter over in OPTARG", () => {
  it.each([
    [`sh -c 'getopts d: o; rm -rf "$OPTARG"' sh -d @P`],
    [`sh ${S}/getopts.sh -d@P`],
    [`echo -d @P | xargs sh ${S}/getopts.sh`],
    [`sh -c 'getopts d: o; d=$OPTARG; rm -rf "$d"' sh -d @P`],
  ])(
    "refuses %s as unjudgeable",
    async (command) => {
      await expectKept(
        command,
        /getopts sets OPTARG at run time from the positional parameters; give the path/,
      );
    },
    60_000,
  );

  it.each([
    [`sh -c 'shift; rm -rf "\${x:-$1}"' sh ${S}/nothing @P`, /shift rebinds/],
    [`sh -c 'getopts d: o; rm -rf "\${x:-$OPTARG}"' sh -d @P`, /getopts sets OPTARG at run time/],
  ])(
    "refuses %s: the rebound word inside another expansion",
    async (command, why) => {
      await expectKept(command, why);
    },
    60_000,
  );

  it('refuses shift; d=$1; rm -rf "$d": the variable holds a rebound parameter', async () => {
    await expectKept(
      `sh -c 'shift; d=$1; rm -rf "$d"' sh ${S}/nothing @P`,
      /shift rebinds the positional parameters at run time; give the path/,
    );
  }, 60_000);

  it("runs a script that parses options with getopts and removes a file it is given", async () => {
    ran(await b.exec("worker", `echo x > ${S}/opt.o`));
    ran(await b.exec("worker", `sh ${S}/opts.sh -v ${S}/opt.o`));
    expect(b.exists(`${S}/opt.o`)).toBe(false);
  }, 60_000);
});

describe("in a function, the positional parameters are its arguments", () => {
  it.each([
    [`f() { rm -rf "$1"; }; f @P`],
    [`sh -c 'f() { rm -rf "$1"; }; f "$2"' sh ${S}/nothing @P`],
    [`sh ${S}/fn.sh ${S}/nothing @P`],
    // Not at the start of the word: only a word starting with one was refused, and each of
    // these emptied the folder (Landlock kept its entry only).
    [`f() { rm -rf "\${d:-$1}"; }; f @P`],
    [`sh -c 'f() { rm -rf "\${d:-$1}"; }; f "$2"' sh ${S}/nothing @P`],
    [`f() { rm -rf "$HOME/$1"; }; f`],
    [`f() { rm -rf "$TMPDIR/$1"; }; f`],
    [`f() { d=$1; rm -rf "$HOME/$d"; }; f`],
  ])(
    "refuses %s as unjudgeable",
    async (command) => {
      await expectKept(
        command,
        /in the function f the positional parameters are its arguments, known only at run time/,
      );
    },
    60_000,
  );

  it("refuses f() { sh s.sh \"$1\"; }; f ~: the script's $1 is the function's", async () => {
    await expectKept(
      `f() { sh ${S}/s.sh "$1"; }; f @P`,
      /s\.sh, which gets its positional parameters at run time from the function f that runs it, and uses them/,
    );
  }, 60_000);

  it("runs a function that removes a fixed path", async () => {
    ran(await b.exec("worker", `echo x > ${S}/fixed.o && f() { rm -f ${S}/fixed.o; }; f`));
    expect(b.exists(`${S}/fixed.o`)).toBe(false);
  }, 60_000);
});

describe("ordinary xargs and find runs", () => {
  it.each([
    [`cd ${S} && echo x > a.o && find . -name '*.o' -exec rm {} +`],
    [`printf '%s\\n' ${S}/uses-lib.sh | xargs wc -l`],
    [`cd ${S} && echo x > b.o && find . -name '*.o' | xargs -I% sh -c 'rm -f "$1"' _ %`],
  ])(
    "runs %s",
    async (command) => {
      ran(await b.exec("worker", command));
    },
    60_000,
  );
});
