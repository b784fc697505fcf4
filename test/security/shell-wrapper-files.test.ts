// Files a command names outside its plain arguments, as the analysis hands them to the exec
// tool's path check: files in the options of wrappers that are not commands of their own
// (placed where the wrapper runs, not where the code it runs moves to), and the paths an
// option word may carry attached (`-o/out`).

import { describe, expect, it } from "vitest";
import { analyzeCommand } from "../../src/security/shell.js";
import { possibleDirs } from "../../src/security/shell-dirs.js";
import { pathTexts, symlinkOperands, writeTargets } from "../../src/security/shell-operands.js";

const files = (cmd: string) =>
  analyzeCommand(cmd).wrapperFiles.map((f) => ({ program: f.program, path: f.path, write: f.write }));

describe("files named in a wrapper's options", () => {
  it("keeps the files of xargs, strace, flock and script, which run something else", () => {
    expect(files("xargs -a /w/list echo")).toEqual([{ program: "xargs", path: "/w/list", write: false }]);
    expect(files("xargs --arg-file=l echo")).toEqual([{ program: "xargs", path: "l", write: false }]);
    expect(files("strace -o/w/t -f true")).toEqual([{ program: "strace", path: "/w/t", write: true }]);
    expect(files("flock /w/lock true")).toEqual([{ program: "flock", path: "/w/lock", write: true }]);
    expect(files("flock /w/lock -c 'true'")).toEqual([{ program: "flock", path: "/w/lock", write: true }]);
    expect(files("script -q -c true /w/log")).toEqual([{ program: "script", path: "/w/log", write: true }]);
    expect(files("script -q -c true -T /w/time /w/log")).toEqual([
      { program: "script", path: "/w/log", write: true },
      { program: "script", path: "/w/time", write: true },
    ]);
  });

  it("takes a number after flock for a descriptor, not a file", () => {
    expect(files("flock 9 true")).toEqual([]);
  });

  it("places a wrapper's file where the wrapper runs: a cd in the code it runs does not move it", () => {
    const a = analyzeCommand("cd /w/pub && flock lock -c 'cd /w/other && true'");
    const f = a.wrapperFiles[0]!;
    expect(possibleDirs(a, f.at, { place: f })).toEqual([[{ target: "/w/pub", physical: false }]]);
    const inner = a.commands.findIndex((c) => c.argv[0] === "true");
    expect(possibleDirs(a, inner)).toContainEqual([{ target: "/w/other", physical: false }]);
  });

  it("sees the moves of a whole loop body, and of the wrappers around it", () => {
    const a = analyzeCommand("for i in 1 2; do xargs -a l echo; cd /w/b; done");
    const f = a.wrapperFiles[0]!;
    expect(possibleDirs(a, f.at, { place: f })).toEqual([[], [{ target: "/w/b", physical: false }]]);
    const e = analyzeCommand("env -C /w/e xargs -a l echo").wrapperFiles[0]!;
    expect(e.localDirs).toEqual([{ path: "/w/e", dynamic: false }]);
  });
});

describe("paths in option words", () => {
  it("reads the text after each letter of a short option cluster", () => {
    expect(pathTexts("-o/out")).toEqual(["/out"]);
    expect(pathTexts("-rf./p")).toEqual(["f./p", "./p"]);
    expect(pathTexts("-t../d")).toEqual(["../d"]);
    expect(pathTexts("-n1")).toEqual(["1"]);
    expect(pathTexts("--file=/k")).toEqual(["/k"]);
    expect(pathTexts("of=/x")).toEqual(["/x"]);
    expect(pathTexts("--verbose")).toEqual([]);
    expect(pathTexts("plain/word")).toEqual(["plain/word"]);
  });

  it("writes the folder cp, install, ln and mv are given attached to -t", () => {
    const targets = (cmd: string) => writeTargets(analyzeCommand(cmd).commands[0]!).map((t) => t.path);
    expect(targets("cp -t/w/d /w/a")).toEqual(["/w/d"]);
    expect(targets("install -t/w/d /w/a")).toEqual(["/w/d"]);
    expect(targets("mv -t/w/d /w/a")).toEqual(["/w/a", "/w/d"]);
    expect(targets("sort -o/w/s /w/a")).toEqual(["/w/s"]);
  });

  it("writes the output files of rpcgen, dwp and utmpdump, and nothing for a compiler's version", () => {
    const targets = (cmd: string) => writeTargets(analyzeCommand(cmd).commands[0]!).map((t) => t.path);
    expect(targets("rpcgen -o /w/f x.x")).toEqual(["/w/f"]);
    expect(targets("dwp -o /w/f a.o")).toEqual(["/w/f"]);
    expect(targets("utmpdump -r -o /w/f in")).toEqual(["/w/f"]);
    expect(targets("x86_64-linux-gnu-ld -o/w/x a.o")).toEqual(["/w/x"]);
    expect(targets("gcc --version")).toEqual([]);
    expect(targets("gcc -E a.c")).toEqual([]);
  });

  it("keeps the .. of tar's -C chain: tar chdir()s to each, after any link before it", () => {
    const targets = (cmd: string) => writeTargets(analyzeCommand(cmd).commands[0]!).map((t) => t.path);
    expect(targets("tar -xf a.tar -C scratch/l/..")).toEqual(["scratch/l/.."]);
    expect(targets("tar -xf a.tar -C l -C ../d")).toEqual(["l", "l/../d"]);
    expect(targets("tar -xf a.tar -C l -C /w/d -C ..")).toEqual(["l", "/w/d", "/w/d/.."]);
  });
});

describe("where ln -s makes its links", () => {
  const ln = (cmd: string) => symlinkOperands(analyzeCommand(cmd).commands[0]!);

  it("gives the targets and the link's path, the folder of -t, or the cwd for a lone target", () => {
    expect(ln("ln -s ../k /w/l")).toEqual({
      targets: [{ value: "../k", at: 2, dynamic: false }],
      places: [{ path: "/w/l", dynamic: false, folder: false }],
    });
    expect(ln("ln -sf -t /w/d ../a ../b")?.places).toEqual([{ path: "/w/d", dynamic: false, folder: true }]);
    expect(ln("ln -sf -t /w/d ../a ../b")?.targets.map((t) => t.value)).toEqual(["../a", "../b"]);
    expect(ln("ln -s -t/w/d ../a")?.places[0]?.path).toBe("/w/d");
    expect(ln("ln -s ../a")?.places).toEqual([{ path: ".", dynamic: false, folder: true }]);
    expect(ln('ln -s ../a "$D/l"')?.places[0]?.dynamic).toBe(true);
  });

  it("is nothing for a hard link", () => {
    expect(ln("ln ../k /w/l")).toBeUndefined();
  });
});
