// What a run-time word names before it runs: ~, $HOME and $TMPDIR take the values the exec
// will have (the private folder when it runs confined with it), or stay unknown.

import { describe, expect, it } from "vitest";
import { knownPart } from "../../src/tools/exec-known.js";

const PRIVATE = "/tmp/agent-a1";
const confined = { home: PRIVATE, tmpdir: PRIVATE };
const unconfined = { home: "/tmp", tmpdir: undefined };
const homeSet = { home: undefined, tmpdir: PRIVATE };
/** The shell's braced form, spelled so no template literal is suspected. */
const BRACED_HOME = ["$", "{HOME}/f"].join("");

describe("knownPart", () => {
  it.each([
    ["~/f, confined", "~/f", confined, { path: `${PRIVATE}/f`, whole: true }],
    ["~/f, unconfined", "~/f", unconfined, { path: "/tmp/f", whole: true }],
    ["$HOME/f, confined", "$HOME/f", confined, { path: `${PRIVATE}/f`, whole: true }],
    ["$HOME in braces", BRACED_HOME, confined, { path: `${PRIVATE}/f`, whole: true }],
    ['"$HOME"/f', '"$HOME"/f', confined, { path: `${PRIVATE}/f`, whole: true }],
    ["$TMPDIR/f, confined", "$TMPDIR/f", confined, { path: `${PRIVATE}/f`, whole: true }],
    ["$TMPDIR/f, unconfined (unset: unknown)", "$TMPDIR/f", unconfined, undefined],
    ["~/f when the command sets HOME", "~/f", homeSet, undefined],
    ["$HOME/f when the command sets HOME", "$HOME/f", homeSet, undefined],
    ["$HOMEX/f is another variable", "$HOMEX/f", confined, undefined],
    [
      "$HOME/../../workspace/x",
      "$HOME/../../workspace/x",
      confined,
      { path: `${PRIVATE}/../../workspace/x`, whole: true },
    ],
    ["$HOME/d/$X", "$HOME/d/$X", confined, { path: `${PRIVATE}/d/`, whole: false }],
    ["$HOME/f when the command sets IFS (split)", "$HOME/f", { ...confined, splits: true }, undefined],
    [
      '"$HOME"/f when the command sets IFS',
      '"$HOME"/f',
      { ...confined, splits: true },
      { path: `${PRIVATE}/f`, whole: true },
    ],
    [
      "~/f when the command sets IFS",
      "~/f",
      { ...confined, splits: true },
      { path: `${PRIVATE}/f`, whole: true },
    ],
  ])("%s", (_how, word, vars, want) => {
    expect(knownPart(word, vars)).toEqual(want);
  });
});
