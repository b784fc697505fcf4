// Red team, third pass on run-time positional parameters (exec-runtime-attacks.test.ts refused
// them where they are removed): the same words where they are written or cd'd into. A
// positional parameter after `shift` or `set -- W`, one in a function's body (its arguments),
// and $OPTARG where getopts sets it were judged without their value at every other site:
// `sh -c 'getopts d: o; cp E "$OPTARG"' sh -d D`, `sh -c 'f() { echo x > "$1"; }; f "$2"' sh _
// D` and `sh -c 'shift; cd "$1" && cat k' sh _ D` each ran, the write or the read past a deny
// rule stopped only by the Landlock domain. Each is now refused as unjudgeable before it runs
// (audited, the site and the reason named); the forms the judge binds still run.
// The agent may read /workspace/** and write /workspace/out/**; `path: /workspace/out/vault/**`
// is denied.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ran } from "./private-folder.js";
import { expectRefused, openSharedBench, readAllWriteOut, type SharedBench } from "./shared-bench.js";

let b: SharedBench;

// `f`: a function the attacks define (granted, so that the judge, not the grant, decides).
const PROGRAMS = ["echo", "sh", "cat", "cp", "mv", "tee", "dd", "ln", "touch", "mkdir", "tar", "f"];

const S = "/workspace/out";
const FREE = `${S}/free`;
const VAULT = `${S}/vault`;
const T = `${VAULT}/x`;
const E = `${FREE}/evil`;

beforeAll(async () => {
  b = await openSharedBench({
    profiles: { worker: readAllWriteOut(PROGRAMS) },
    files: { [E]: "evil\n", [`${VAULT}/keep`]: "secret\n" },
    setup: "chmod -R a+rwX /workspace",
    deny: [`path: ${VAULT}/**`],
  });
}, 240_000);

afterAll(async () => {
  await b?.close();
});

/** `command` refused as unjudgeable for a reason matching `why`, audited, and nothing made at T. */
async function expectUnjudged(command: string, why: RegExp): Promise<void> {
  const r = await b.exec("worker", command);
  expectRefused(b, "worker", r, "policy", why);
  expect(b.exists(T)).toBe(false);
}

const GETOPTS = /getopts sets OPTARG at run time from the positional parameters; give the path/;
const SHIFT = /shift rebinds the positional parameters at run time; give the path/;
const SET = /set rebinds the positional parameters at run time; give the path/;
const FUNCTION = /in the function f the positional parameters are its arguments, known only at run time/;

describe("a run-time-bound word as a redirection's target", () => {
  it.each([
    [`sh -c 'getopts d: o; echo x > "$OPTARG"' sh -d ${T}`, />.* writes .*\$OPTARG/, GETOPTS],
    [`sh -c 'shift; echo x >> "$1"' sh ${FREE}/a ${T}`, />>.* writes .*\$1/, SHIFT],
    [`sh -c 'set -- "$2"; echo x 1<> "$1"' sh ${FREE}/a ${T}`, /<>.* writes .*\$1/, SET],
    [`sh -c 'f() { echo x > "$1"; }; f "$2"' sh ${FREE}/a ${T}`, />.* writes .*\$1/, FUNCTION],
    [`sh -c 'f() { { echo x; } > "$1"; }; f "$2"' sh ${FREE}/a ${T}`, />.* writes .*\$1/, FUNCTION],
    [`sh -c 'getopts o: x; out=$OPTARG; echo x > "$out"' sh -o ${T}`, />.* writes .*\$out/, GETOPTS],
  ])(
    "refuses %s as unjudgeable",
    async (command, site, why) => {
      await expectUnjudged(command, new RegExp(`the redirection ${site.source}.*: ${why.source}`));
    },
    60_000,
  );
});

describe("a run-time-bound word as what a program writes", () => {
  it.each([
    [`sh -c 'getopts d: o; cp ${E} "$OPTARG"' sh -d ${T}`, "argument 2 of cp", GETOPTS],
    [`sh -c 'shift; echo x | tee "$1"' sh ${FREE}/a ${T}`, "argument 1 of tee", SHIFT],
    [`sh -c 'set -- "$2"; touch "$1"' sh ${FREE}/a ${T}`, "argument 1 of touch", SET],
    [`sh -c 'f() { dd if=${E} of="$1"; }; f "$2"' sh ${FREE}/a ${T}`, "argument 2 of dd", FUNCTION],
    [`sh -c 'f() { ln -s ${E} "$1"; }; f "$2"' sh ${FREE}/a ${T}`, "argument 3 of ln", FUNCTION],
    [`sh -c 'f() { mkdir "$1"; }; f "$2"' sh ${FREE}/a ${T}`, "argument 1 of mkdir", FUNCTION],
    [`sh -c 'f() { cp ${E} "$@"; }; f "$2"' sh ${FREE}/a ${T}`, "argument 2 of cp", FUNCTION],
    [`sh -c 'f() { d=$1; mv ${FREE}/m "$d"; }; f "$2"' sh ${FREE}/a ${T}`, "argument 2 of mv", FUNCTION],
  ])(
    "refuses %s as unjudgeable",
    async (command, site, why) => {
      await expectUnjudged(command, new RegExp(`cannot judge what ${site} writes .*: ${why.source}`));
    },
    60_000,
  );
});

describe("a run-time-bound word as the folder the shell moves to", () => {
  it.each([
    [`sh -c 'getopts d: o; cd "$OPTARG" && cat keep' sh -d ${VAULT}`, GETOPTS],
    [`sh -c 'shift; cd "$1" && cat keep' sh ${FREE} ${VAULT}`, SHIFT],
    [`sh -c 'f() { cd "$1" && cat keep; }; f "$2"' sh ${FREE} ${VAULT}`, FUNCTION],
  ])(
    "refuses %s as unjudgeable",
    async (command, why) => {
      const r = await b.exec("worker", command);
      expectRefused(
        b,
        "worker",
        r,
        "policy",
        new RegExp(`cannot judge what the cd target names .*: ${why.source}`),
      );
    },
    60_000,
  );
});

describe("a run-time-bound word as the folder a program runs in", () => {
  it('refuses tar -C "$OPTARG" as unjudgeable', async () => {
    const r = await b.exec(
      "worker",
      `sh -c 'getopts d: o; tar -C "$OPTARG" -cf ${FREE}/k.tar keep' sh -d ${VAULT}`,
    );
    expectRefused(
      b,
      "worker",
      r,
      "policy",
      // Its value is also tar's argument 2, judged first (exec-values.ts: getopts sets OPTARG).
      /cannot judge what (the folder tar runs in|argument 2 of tar) names .*: getopts sets OPTARG at run time/,
    );
  }, 60_000);
});

describe("the forms the judge binds still run", () => {
  it('runs sh -c CODE _ D with cd "$1" and an absolute path after it', async () => {
    const r = await b.exec("worker", `sh -c 'cd "$1" && cat ${E}' _ ${FREE}`);
    ran(r);
  }, 60_000);

  it('runs sh -c CODE _ F writing "$1", with no rebinding', async () => {
    ran(await b.exec("worker", `sh -c 'echo x > "$1"' _ ${FREE}/plain`));
    expect(b.exists(`${FREE}/plain`)).toBe(true);
  }, 60_000);

  it('runs shift; echo x > "$0": shift leaves $0, bound to the word after the code', async () => {
    ran(await b.exec("worker", `sh -c 'shift; echo x > "$0"' ${FREE}/zero a`));
    expect(b.exists(`${FREE}/zero`)).toBe(true);
  }, 60_000);

  it("runs a function that writes its argument's text to a fixed file", async () => {
    ran(await b.exec("worker", `f() { echo "$1" > ${FREE}/fn; }; f hello`));
    expect(b.exists(`${FREE}/fn`)).toBe(true);
  }, 60_000);

  it("runs getopts option parsing that writes a fixed file", async () => {
    ran(await b.exec("worker", `sh -c 'while getopts v o; do :; done; echo x > ${FREE}/opts' sh -v`));
    expect(b.exists(`${FREE}/opts`)).toBe(true);
  }, 60_000);
});
