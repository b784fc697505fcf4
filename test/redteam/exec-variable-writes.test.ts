// Red team: a written, redirected or cd'd word whose value is known only through a variable or
// a `sh -c CODE NAME ARGS` positional. Removals were judged with the values the command gives
// such a word (exec-removals.ts assignedPaths); every other site judged only the fixed text in
// front of it, which for `"$1"` or `"$d/f"` is nothing: `sh -c 'cp E "$1"' _ D`, `d=D; cp E
// "$d"`, `d=V; echo x > "$d/x"` and `sh -c 'cd "$1" && cat keep' _ V` each wrote or read past
// the operator's deny rule (which Landlock does not implement inside a granted tree) and, with
// `sandbox.landlock: off`, outside every grant. Each is now judged with every value the word may
// take, as the literal would be; a value the judge cannot know (`read d`, `${d:=V}`) is refused
// as unjudgeable, the word named. The common forms still run.
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

const PROGRAMS = ["echo", "sh", "cat", "cp", "tee", "dd", "ln", "touch", "mkdir", "mktemp"];

const S = "/workspace/out";
const FREE = `${S}/free`;
const VAULT = `${S}/vault`;
const T = `${VAULT}/x`;
const E = `${FREE}/evil`;
/** Readable, not writable: outside every file_write grant. */
const PUB = "/workspace/pub";
const P = `${PUB}/x`;

/** The operator's rule, refusing what is named. */
const RULE = `denied by policy rule "path: ${escapeRegExp(VAULT)}/\\*\\*": `;
/** A path-rule refusal of a write to T. */
const DENIED_T = new RegExp(`${RULE}file_write ${escapeRegExp(T)} `);

/** Attacks on the deny rule: each would write T. */
const DENY_ATTACKS: [string, RegExp][] = [
  [`sh -c 'echo x > "$1"' _ ${T}`, /the redirection >/],
  [`d=${VAULT}; echo x > "$d/x"`, /the redirection >/],
  [`d=${T}; echo x >> "$d"`, /the redirection >>/],
  [`sh -c 'cp ${E} "$1"' _ ${T}`, /argument 2 of cp/],
  [`sh -c 'cp ${E} "$@"' _ ${T}`, /argument 2 of cp/],
  [`d=${T}; cp ${E} "$d"`, /argument 2 of cp/],
  [`a=${T}; d=$a; cp ${E} "$d"`, /argument 2 of cp/],
  [`d=${T}; export d; echo x | tee "$d"`, /argument 1 of tee/],
  [`d=${T}; touch "$d"`, /argument 1 of touch/],
  [`d=${T}; mkdir "$d"`, /argument 1 of mkdir/],
  [`d=${T}; dd if=${E} of="$d"`, /argument 2 of dd/],
  [`sh -c 'ln -s ${E} "$1"' _ ${T}`, /argument 3 of ln/],
  [`d=${T} sh -c 'cp ${E} "$d"'`, /argument 2 of cp/],
  [`d=${T} :; cp ${E} "$d"`, /argument 2 of cp/],
  [`for d in ${FREE}/a ${T}; do cp ${E} "$d"; done`, /argument 2 of cp/],
  // A variable used with other text around it (read-only review: each was judged as text).
  [`d=${VAULT}/; cp ${E} "\${d}x"`, /argument 2 of cp/],
  [`a=${S}/vau b=lt/x; cp ${E} "$a$b"`, /argument 2 of cp/],
  [`sh -c 'echo x > "$1/$2"' _ ${VAULT} x`, /the redirection >/],
  // A quote closed before more text, an operator on a variable the command never sets holding
  // one it does, an operator followed (third review: each was judged as text, or as a glob).
  [`d=${VAULT}/; cp ${E} "$d"x`, /argument 2 of cp/],
  [`d=${VAULT}/; echo x | tee "$d""x"`, /argument 1 of tee/],
  [`b=${T}; cp ${E} "\${a:-$b}"`, /argument 2 of cp/],
  [`b=${T}; echo x > "\${a-$b}"`, /the redirection >/],
  [`d=${T}Q; cp ${E} "\${d%%Q}"`, /argument 2 of cp/],
  [`d=${T}; echo x > "\${d:-}"`, /the redirection >/],
  [`sh -c 'cp ${E} "\${1%.txt}"' _ ${T}.txt`, /argument 2 of cp/],
  [`f=${VAULT}/y/z.c; cp ${E} "\${f%/y/*}/x"`, /argument 2 of cp/],
  // A value that trims the variable itself stands for the trim of its other values.
  [`d=${T}/; d="\${d%/}"; cp ${E} "$d"`, /argument 2 of cp/],
];

/** Attacks through a value only known at run time (a glob): each would write below the vault. */
const GLOB_ATTACKS: string[] = [
  `for f in ${VAULT}/*; do cp ${E} "\${f%.md}.html"; done`,
  `for f in ${VAULT}/*.md; do cp ${E} "\${f%.md}"; done`,
];

/** Attacks outside every write grant: each would write P. */
const OUTSIDE_ATTACKS: string[] = [
  `sh -c 'echo x > "$1"' _ ${P}`,
  `d=${PUB}; echo x > "$d/x"`,
  `sh -c 'cp ${E} "$1"' _ ${P}`,
  `d=${P}; cp ${E} "$d"`,
  `d=${P}; touch "$d"`,
];

/** Values the judge cannot know: refused as unjudgeable, the word named. */
const UNKNOWN_ATTACKS: [string, RegExp][] = [
  [`echo ${T} | { read d; cp ${E} "$d"; }`, /read sets d at run time/],
  [`echo ${T} | { read d; echo x > "$d"; }`, /read sets d at run time/],
  [`: "\${d:=${T}}"; cp ${E} "$d"`, /\$\{d:=\.\.\.\} sets d at run time/],
  // getopts sets OPTARG as well as the variable it names: read past the deny rule.
  [`getopts o: d -o ${VAULT}/keep; cat "$OPTARG"`, /getopts sets OPTARG at run time/],
  // Forms the judge does not follow, of a variable the command gives a value.
  [`d=${T}; echo x > "${S}/\${#d}"`, /it uses .* in a form the judge does not follow/],
  [`d=${T}; cp ${E} "\${d%[x]}"`, /it uses .* in a form the judge does not follow/],
  [`for f in ${VAULT}/*; do cp ${E} "\${f#*/}"; done`, /it uses .* in a form the judge does not follow/],

  [`IFS=:; d=${FREE}/a:${T}; echo x | tee $d`, /the command sets IFS/],
  // Values that name the variable again multiply at each step: 40 of them held the daemon's
  // event loop for hours (20: 9 s) before the count was bounded.
  [
    `d=${FREE}; ${Array.from({ length: 40 }, (_, i) => `d=$d/a${i}`).join("; ")}; echo x > "$d"`,
    /its variables(' values make more than 256 paths| name each other)/,
  ],
  // Deeper than the chain is followed, the last value was judged as its text (`$a/x`: nothing).
  [`a=${VAULT}; b=$a; c=$b; e=$c; f=$e; d=$f; echo x > "$d/x"`, /its variables name each other/],
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
          [`${FREE}/one.txt`]: "1\n",
          [`${FREE}/two.txt`]: "2\n",
          [`${PUB}/.keep`]: "",
        },
        setup: `chmod -R a+rwX /workspace && mkdir -p ${FREE}/copies && chmod a+rwx ${FREE}/copies`,
        deny: [`path: ${VAULT}/**`],
        landlock,
      });
    }, 240_000);

    afterAll(async () => {
      await b?.close();
    });

    describe("a variable's or positional's value, written past a deny rule", () => {
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

    // Within bounds, values whose every use holds more: a word longer than any path is refused
    // at once (a 15 KB command held the daemon's event loop for 123 s, judged use by use).
    it("refuses at once a word its values make longer than any path", async () => {
      const r = await b.exec(
        "worker",
        `a=${"$z".repeat(2800)}; a=/x${"$z".repeat(2800)}; echo x > "$a$a$a$a$a$a$a"`,
      );
      expectRefused(b, "worker", r, "policy", /its variables' values make a word longer than any path/);
    }, 60_000);

    describe("a run-time value's operator, written past a deny rule", () => {
      it.each(GLOB_ATTACKS)(
        "refuses %s",
        async (command) => {
          const r = await b.exec("worker", command);
          expectRefused(b, "worker", r, "policy", new RegExp(RULE));
          expect(b.exists(T)).toBe(false);
        },
        60_000,
      );
    });

    describe("a variable's or positional's value, written outside every grant", () => {
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

    describe("a variable's or positional's value as the folder the shell moves to", () => {
      it.each([`sh -c 'cd "$1" && cat keep' _ ${VAULT}`, `d=${VAULT}; cd "$d" && cat keep`])(
        "refuses %s",
        async (command) => {
          const r = await b.exec("worker", command);
          expectRefused(b, "worker", r, "policy", new RegExp(`${RULE}file_read ${escapeRegExp(VAULT)} `));
        },
        60_000,
      );
    });

    describe("a value known only at run time", () => {
      it.each(UNKNOWN_ATTACKS)(
        "refuses %s as unjudgeable",
        async (command, why) => {
          const r = await b.exec("worker", command);
          expectRefused(b, "worker", r, "policy", new RegExp(`cannot judge .*: ${why.source}`));
          expect(b.exists(T)).toBe(false);
        },
        60_000,
      );
    });

    describe("the common forms still run", () => {
      it.each([
        [`sh -c 'cp ${E} "$1"' _ ${FREE}/c1`, `${FREE}/c1`],
        [`d=${FREE}; cp ${E} "$d/c2"`, `${FREE}/c2`],
        [`d=${FREE}; echo x > "$d/c3"`, `${FREE}/c3`],
        [`cd ${FREE} && for f in *.txt; do cp "$f" copies/; done`, `${FREE}/copies/two.txt`],
        [`for f in c4 c5; do echo x > "${FREE}/$f"; done`, `${FREE}/c5`],
        [`cd ${FREE} && for f in *.txt; do cp "$f" "copies/\${f%.txt}.bak"; done`, `${FREE}/copies/two.bak`],
        [`for i in 1 2; do for j in a b; do echo x > "${FREE}/c$i$j"; done; done`, `${FREE}/c2b`],
        [`f=${FREE}/one.txt; cp "$f" "\${f%.txt}.bak"`, `${FREE}/one.bak`],
        [`for f in ${FREE}/one.txt ${FREE}/two.txt; do cp "$f" "\${f%.txt}.bak2"; done`, `${FREE}/two.bak2`],
        [`f=${FREE}/one.txt; cp "$f" "\${f%/*}/c6"`, `${FREE}/c6`],
        [`d=${FREE}/; d="\${d%/}"; cp ${E} "$d/c7"`, `${FREE}/c7`],
        [`f=${FREE}/one.txt; cp "$f" "${FREE}/copies/\${f##*/}"`, `${FREE}/copies/one.txt`],
      ])(
        "runs %s",
        async (command, made) => {
          ran(await b.exec("worker", command));
          expect(b.exists(made)).toBe(true);
        },
        60_000,
      );

      // Confined, mktemp makes its folder in the caller's private folder (unconfined, in /tmp: no grant).
      if (landlock === "on") {
        it("runs d=$(mktemp -d); echo x > $d/f in the private folder", async () => {
          ran(await b.exec("worker", `d=$(mktemp -d); echo x > "$d/f" && cat "$d/f"`));
        }, 60_000);
      }
    });
  });
}
