// Red team: a variable set where the judge did not look, then written to. A script the command
// sources (`. ./env.sh`) runs in its shell, so what it assigns, reads into a variable or defaults
// (`${d:=V}`) holds for the command's words after it; the judge followed the command's own
// assignments only, so `. ./s.sh; cp E "$d"` was judged as if d had no value (its text, which
// names nothing) and wrote past the operator's deny rule and, with `sandbox.landlock: off`,
// outside every grant. The other way round too: a sourced script's `echo x > "$d"` sees the d of
// the code that sources it, or of a script sourced before it (judged as if d had no value). And a
// variable that extends itself (`d=$d/sub`, `p=$p:/x`) was refused as a chain of variables "more
// than 4 deep": it is judged now, with each value it may grow to. The common forms still run.
// The agent may read /workspace/** and write /workspace/out/**; `path: /workspace/out/vault/**`
// is denied.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ran } from "./private-folder.js";
import {
  escapeRegExp,
  expectRefused,
  openSharedBench,
  readAllWriteOut,
  type SharedBench,
} from "./shared-bench.js";

// set_d: a function a sourced script defines, which the command runs by its name.
const PROGRAMS = ["echo", "sh", "cat", "cp", "touch", "mkdir", "set_d"];

const S = "/workspace/out";
const FREE = `${S}/free`;
const VAULT = `${S}/vault`;
const T = `${VAULT}/x`;
const E = `${FREE}/evil`;
/** Readable, not writable: outside every file_write grant. */
const PUB = "/workspace/pub";
const P = `${PUB}/x`;
const SCRIPTS = "/workspace/scripts";

/** The scripts the attacks source, by name. */
const FILES: Record<string, string> = {
  "set.sh": `d=${T}\n`,
  "export.sh": `export d=${T}\n`,
  "default.sh": `x="\${d:=${T}}"\n`,
  "read.sh": "read d\n",
  "function.sh": `set_d() { d=${T}; }\n`,
  "nested.sh": `. ${SCRIPTS}/set.sh\n`,
  "vault.sh": `d=${VAULT}\n`,
  "pub.sh": `d=${P}\n`,
  "copy.sh": `cp ${E} "$1"\n`,
  "write.sh": 'echo x > "$d"\n',
  "nested-write.sh": `. ${SCRIPTS}/write.sh\n`,
  "env.sh": `d=${FREE}\nexport LIBS=$LIBS:/workspace/lib\n`,
};

/** A path-rule refusal of a write to T (or of T as a script's argument, which it may write). */
const DENIED_T = new RegExp(
  `denied by policy rule "path: ${escapeRegExp(VAULT)}/\\*\\*": file_(write|access) ${escapeRegExp(T)} `,
);

/** Attacks on the deny rule: each would write T. */
const DENY_ATTACKS: [string, RegExp][] = [
  [`. ${SCRIPTS}/set.sh; cp ${E} "$d"`, /argument 2 of cp/],
  [`. ${SCRIPTS}/set.sh; echo x > "$d"`, /the redirection >/],
  [`. ${SCRIPTS}/export.sh; touch "$d"`, /argument 1 of touch/],
  [`. ${SCRIPTS}/function.sh; set_d; cp ${E} "$d"`, /argument 2 of cp/],
  [`. ${SCRIPTS}/nested.sh; cp ${E} "$d"`, /argument 2 of cp/],
  [`. ${SCRIPTS}/vault.sh; echo x > "$d/x"`, /the redirection >/],
  // The value a sourced script gives, handed on to code and to a script the command runs.
  [`. ${SCRIPTS}/set.sh; sh -c 'cp ${E} "$1"' _ "$d"`, /argument 2 of cp/],
  [`. ${SCRIPTS}/set.sh; sh ${SCRIPTS}/copy.sh "$d"`, /argument 2 of sh/],
  // A value the code that sources a script gives, or a script sourced before it.
  [`d=${T}; . ${SCRIPTS}/write.sh`, /the redirection >/],
  [`d=${T}; . ${SCRIPTS}/nested-write.sh`, /the redirection >/],
  [`. ${SCRIPTS}/set.sh; . ${SCRIPTS}/write.sh`, /the redirection >/],
  // A variable that extends itself: each value it may grow to is judged.
  [`d=${S}; d=$d/vault/x; cp ${E} "$d"`, /argument 2 of cp/],
  [`d=${S}; d="$d/vault"; echo x > "$d/x"`, /the redirection >/],
  // Given no value of its own, it starts empty.
  [`d=$d${T}; touch "$d"`, /argument 1 of touch/],
];

/** Attacks outside every write grant: each would write P. */
const OUTSIDE_ATTACKS: string[] = [
  `. ${SCRIPTS}/pub.sh; cp ${E} "$d"`,
  `. ${SCRIPTS}/pub.sh; touch "$d"`,
  `d=${P}; . ${SCRIPTS}/write.sh`,
  `d=${S}; d=$d/../pub/x; touch "$d"`,
  `d=$d${P}; touch "$d"`,
];

/** Values the judge cannot know: refused as unjudgeable, the word named. */
const UNKNOWN_ATTACKS: [string, RegExp][] = [
  [
    `echo ${T} | { . ${SCRIPTS}/read.sh; cp ${E} "$d"; }`,
    new RegExp(`read in the sourced script ${escapeRegExp(SCRIPTS)}/read.sh sets d at run time`),
  ],
  [
    `echo ${T} | { read d; . ${SCRIPTS}/write.sh; }`,
    /read in the command that sources it sets d at run time/,
  ],
  [
    `. ${SCRIPTS}/default.sh; cp ${E} "$d"`,
    new RegExp(`\\$\\{d:=\\.\\.\\.\\} in the sourced script ${escapeRegExp(SCRIPTS)}/default.sh sets d`),
  ],
  // Where the exec's HOME starts is not followed here.
  [`HOME=$HOME/../out/vault; touch "$HOME/x"`, /HOME extends itself from the value it starts with/],
];

for (const landlock of ["on", "off"] as const) {
  describe(`with sandbox.landlock ${landlock}`, () => {
    let b: SharedBench;

    beforeAll(async () => {
      b = await openSharedBench({
        profiles: { worker: readAllWriteOut(PROGRAMS) },
        files: {
          [E]: "evil\n",
          [`${VAULT}/keep`]: "secret\n",
          [`${PUB}/.keep`]: "",
          ...Object.fromEntries(Object.entries(FILES).map(([name, text]) => [`${SCRIPTS}/${name}`, text])),
        },
        setup: "chmod -R a+rwX /workspace",
        deny: [`path: ${VAULT}/**`],
        landlock,
      });
    }, 240_000);

    afterAll(async () => {
      await b?.close();
    });

    describe("a value a sourced script or a self-extension gives, written past a deny rule", () => {
      it.each(DENY_ATTACKS)(
        "refuses %s",
        async (command, site) => {
          const r = await b.exec("worker", command);
          expectRefused(b, "worker", r, "policy", DENIED_T);
          expect((r as Error).message).toMatch(site);
          expect(b.exists(T)).toBe(false);
        },
        60_000,
      );
    });

    describe("a value a sourced script or a self-extension gives, written outside every grant", () => {
      it.each(OUTSIDE_ATTACKS)(
        "refuses %s",
        async (command) => {
          const r = await b.exec("worker", command);
          expectRefused(b, "worker", r, "capability", new RegExp(`file_write on ${escapeRegExp(P)} `));
          expect(b.exists(P)).toBe(false);
        },
        60_000,
      );
    });

    describe("a value set where the judge cannot know it", () => {
      it.each(UNKNOWN_ATTACKS)(
        "refuses %s as unjudgeable",
        async (command, why) => {
          const r = await b.exec("worker", command);
          expectRefused(b, "worker", r, "policy", new RegExp(`cannot judge .*: ${why.source}`));
          expect(b.exists(T)).toBe(false);
          expect(b.exists(`${S}/x`)).toBe(false);
        },
        60_000,
      );
    });

    describe("the common forms still run", () => {
      it.each([
        [`. ${SCRIPTS}/env.sh; echo x > "$d/s1"`, `${FREE}/s1`],
        [`d=${FREE}/s4; . ${SCRIPTS}/write.sh`, `${FREE}/s4`],
        [`d=${FREE}; d=$d/sub; mkdir -p "$d" && echo x > "$d/s2"`, `${FREE}/sub/s2`],
        [`p=${FREE}; for x in a b; do p=$p/$x; done; mkdir -p "$p"`, `${FREE}/a/b`],
        [`export CLASSPATH=$CLASSPATH:/workspace/lib; echo x > ${FREE}/s3`, `${FREE}/s3`],
      ])(
        "runs %s",
        async (command, made) => {
          ran(await b.exec("worker", command));
          expect(b.exists(made)).toBe(true);
        },
        60_000,
      );
    });
  });
}
