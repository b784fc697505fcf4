// What a run-time word names before it runs: ~, $HOME and $TMPDIR take the values the exec
// will have (the private folder when it runs confined with it), or stay unknown.

import { describe, expect, it } from "vitest";
import { execStartVars, knownPart, knownVars, scriptStartVars } from "../../src/tools/exec-known.js";

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
      "$TMPDIR with a default, set",
      ["$", "{TMPDIR:-/tmp}/f"].join(""),
      confined,
      { path: `${PRIVATE}/f`, whole: true },
    ],
    ["$HOME with a default, quoted", ['"$', '{HOME-x}"'].join(""), confined, { path: PRIVATE, whole: true }],
    ["$TMPDIR with a default, unset", ["$", "{TMPDIR:-/tmp}/f"].join(""), unconfined, undefined],
    [
      "$HOME with a default, empty",
      ["$", "{HOME:-/w}/f"].join(""),
      { home: "", tmpdir: undefined },
      undefined,
    ],
    ["$HOME with an alternative (not its value)", ["$", "{HOME:+/w}/f"].join(""), confined, undefined],
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

describe("scriptStartVars: what a script starts with", () => {
  const start = execStartVars(PRIVATE);
  it.each([
    ["sh s.sh: the command's own", [], [], { home: PRIVATE, tmpdir: PRIVATE }],
    ["HOME=/w sh s.sh: the value given", ["HOME"], ["HOME=/w"], { home: "/w", tmpdir: PRIVATE }],
    ["TMPDIR=/w sh s.sh", ["TMPDIR"], ["TMPDIR=/w"], { home: PRIVATE, tmpdir: "/w" }],
    ["HOME= sh s.sh: empty (dash's ~ is then /)", ["HOME"], ["HOME="], { home: "", tmpdir: PRIVATE }],
    [
      "TMPDIR= sh s.sh: not known (mktemp /tmp, tempfile /)",
      ["TMPDIR"],
      ["TMPDIR="],
      { home: PRIVATE, tmpdir: undefined },
    ],
    ["HOME=$D sh s.sh: not known", ["HOME"], ["HOME=$D"], { home: undefined, tmpdir: PRIVATE }],
    ["HOME=~x sh s.sh: not known", ["HOME"], ["HOME=~x"], { home: undefined, tmpdir: PRIVATE }],
    [
      "HOME=--target-directory=/w sh s.sh: an option, not known (cp F ~ copies into /w)",
      ["HOME"],
      ["HOME=--target-directory=/w"],
      { home: undefined, tmpdir: PRIVATE },
    ],
    ["HOME=- sh s.sh: not known (cd ~ is cd -)", ["HOME"], ["HOME=-"], { home: undefined, tmpdir: PRIVATE }],
    [
      "HOME='/a /w' sh s.sh: not known ($HOME/x is split into /a and /w/x)",
      ["HOME"],
      ["HOME=/a /w"],
      { home: undefined, tmpdir: PRIVATE },
    ],
    ["TMPDIR=-x sh s.sh: not known", ["TMPDIR"], ["TMPDIR=-x"], { home: PRIVATE, tmpdir: undefined }],
    ["export HOME=/w; sh s.sh: not followed", ["HOME"], [], { home: undefined, tmpdir: PRIVATE }],
    ["env -u TMPDIR sh s.sh", ["TMPDIR"], [], { home: PRIVATE, tmpdir: undefined }],
    ["env -i sh s.sh: cleared", ["*"], [], { home: undefined, tmpdir: undefined }],
    [
      "HOME=/w env -i sh s.sh: cleared after",
      ["HOME", "*"],
      ["HOME=/w"],
      { home: undefined, tmpdir: undefined },
    ],
    [
      "HOME=/w env -u HOME sh s.sh: unset after",
      ["HOME", "HOME"],
      ["HOME=/w"],
      { home: undefined, tmpdir: PRIVATE },
    ],
    [
      "HOME=/a env HOME=/b sh s.sh: env's",
      ["HOME", "HOME"],
      ["HOME=/a", "HOME=/b"],
      { home: "/b", tmpdir: PRIVATE },
    ],
    [
      "unset HOME; HOME=/w sh s.sh: not followed",
      ["HOME", "HOME"],
      ["HOME=/w"],
      { home: undefined, tmpdir: PRIVATE },
    ],
  ])("%s", (_how, assigned, site, want) => {
    expect(scriptStartVars(start, assigned, site, false)).toEqual(want);
  });

  it("splits a sourced script's words on the IFS its code set, not those of a script sh runs", () => {
    expect(scriptStartVars(start, ["IFS"], [], true)).toEqual({ ...start, splits: true });
    expect(scriptStartVars(start, ["IFS"], [], false)).toEqual(start);
    const sourcedTwice = scriptStartVars({ ...start, splits: true }, [], [], true);
    expect(knownPart("$HOME/x", knownVars(sourcedTwice, []))).toBeUndefined();
  });

  it("keeps an unconfined exec's unset TMPDIR unset", () => {
    expect(scriptStartVars(execStartVars(undefined), [], [], false)).toEqual({ home: "/tmp", tmpdir: null });
  });
});

describe("knownVars: where mktemp's $TMPDIR default lands", () => {
  it.each([
    ["confined", execStartVars(PRIVATE), [], PRIVATE],
    ["unconfined (TMPDIR unset)", execStartVars(undefined), [], "/tmp"],
    ["env -i: no TMPDIR, /tmp", execStartVars(PRIVATE), ["*"], "/tmp"],
    ["setpriv --reset-env: no TMPDIR, /tmp", execStartVars(PRIVATE), ["*"], "/tmp"],
    ["a script handed a run-time TMPDIR: not known", { home: PRIVATE, tmpdir: undefined }, [], undefined],
    ["a script handed TMPDIR=/w", { home: PRIVATE, tmpdir: "/w" }, [], "/w"],
  ])("%s", (_how, start, assigned, want) => {
    expect(knownVars(start, assigned).tmpdirDefault).toBe(want);
  });

  it("leaves ~ unknown under a cleared environment (no HOME: dash keeps ~ as written)", () => {
    const vars = knownVars(execStartVars(PRIVATE), ["*"]);
    expect(knownPart("~/f", vars)).toBeUndefined();
    expect(knownPart("$TMPDIR/f", vars)).toBeUndefined();
  });
});
