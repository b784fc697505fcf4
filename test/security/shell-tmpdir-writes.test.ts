// What a program writes in $TMPDIR by default (mktemp, tempfile) is marked so, spelled with
// /tmp: the exec tool puts it in the caller's private folder when its exec runs with TMPDIR
// there (tools/exec-paths.ts). A folder the command names is not marked; where coreutils or
// tempnam prefer $TMPDIR to it (mktemp -t -p D, tempfile -d D), both are judged.

import { describe, expect, it } from "vitest";
import { analyzeCommand } from "../../src/security/shell.js";
import { writeTargets } from "../../src/security/shell-operands.js";

const written = (cmd: string) =>
  writeTargets(analyzeCommand(cmd).commands[0]!).map((t) => ({
    path: t.path,
    inTmpdir: t.inTmpdir === true,
  }));

describe("what mktemp and tempfile write in $TMPDIR", () => {
  it.each([
    ["mktemp", "mktemp", [{ path: "/tmp/tmp.XXXXXXXXXX", inTmpdir: true }]],
    ["mktemp -d", "mktemp -d", [{ path: "/tmp/tmp.XXXXXXXXXX", inTmpdir: true }]],
    ["mktemp -t T", "mktemp -t a.XXX", [{ path: "/tmp/a.XXX", inTmpdir: true }]],
    ["mktemp --tmpdir T", "mktemp --tmpdir a.XXX", [{ path: "/tmp/a.XXX", inTmpdir: true }]],
    ["mktemp -p D (D only)", "mktemp -p /w a.XXX", [{ path: "/w/a.XXX", inTmpdir: false }]],
    ["mktemp --tmpdir=D (D only)", "mktemp --tmpdir=/w a.XXX", [{ path: "/w/a.XXX", inTmpdir: false }]],
    [
      "mktemp -t -p D (TMPDIR first, then D: both)",
      "mktemp -t -p /w a.XXX",
      [
        { path: "/w/a.XXX", inTmpdir: false },
        { path: "/tmp/a.XXX", inTmpdir: true },
      ],
    ],
    ["mktemp T (the cwd)", "mktemp a.XXX", [{ path: "a.XXX", inTmpdir: false }]],
    ["mktemp -u (nothing)", "mktemp -u", []],
    ["tempfile", "tempfile", [{ path: "/tmp", inTmpdir: true }]],
    [
      "tempfile -d D (TMPDIR first, then D: both)",
      "tempfile -d /w",
      [
        { path: "/w", inTmpdir: false },
        { path: "/tmp", inTmpdir: true },
      ],
    ],
    ["tempfile -n F", "tempfile -n /w/t", [{ path: "/w/t", inTmpdir: false }]],
    [
      "tempfile -p P with a / (the prefix leads out of the folder)",
      "tempfile -p ../../w/x",
      [
        { path: "/tmp", inTmpdir: true },
        { path: "/tmp/../../w/x", inTmpdir: true },
      ],
    ],
    [
      "tempfile -d D --prefix=P with a / (out of both folders)",
      "tempfile -d /w --prefix=../v/x",
      [
        { path: "/w", inTmpdir: false },
        { path: "/tmp", inTmpdir: true },
        { path: "/w/../v/x", inTmpdir: false },
        { path: "/tmp/../v/x", inTmpdir: true },
      ],
    ],
    ["tempfile -p P without a / (in the folder)", "tempfile -p ab", [{ path: "/tmp", inTmpdir: true }]],
  ])("%s", (_how, cmd, want) => {
    expect(written(cmd)).toEqual(want);
  });
});
