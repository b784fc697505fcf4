// Spellings of the image's compilers and binutils that write a file the write table did not
// see: an option's value attached after a long name (`-MF/F`), the linker's, assembler's and
// preprocessor's options passed through gcc (`-Wl,-Map=F`, `-Xlinker`, `-Wa,-al=F`,
// `-Wp,-MD,F`), gcc's dump files (`-fdump-tree-X=F`), `-dumpdir`'s prefix (a prefix, not a
// folder: `-dumpdir /w/o` makes /w/oNAME.i), as's listing (`-al=F`), ld's long options by a
// prefix (`--outp=F`), strip's `--output-file=F`, objcopy's valued options the table read
// as flags (its OUT then taken for IN), and ld's one-dash long options that begin with "o"
// (`-orph=place` and `-out-i=F` are no `-o`: ld writes a.out in the cwd). Each was checked
// against the image's gcc and binutils.

import { describe, expect, it } from "vitest";
import { isAidoError } from "../../src/errors.js";
import { analyzeCommand } from "../../src/security/shell.js";
import { targets } from "../support/write-targets.js";

describe("what gcc writes through its own options", () => {
  it.each([
    ["-MF attached", "gcc -M -MF/w/a.d a.c", "/w/a.d"],
    ["-MF attached, relative", "gcc -M -MF../a.d a.c", "../a.d"],
    ["-fdump-tree-X=F", "gcc -c a.c -o o/a.o -fdump-tree-original=/w/t", "/w/t"],
    ["-fopt-info-all=F", "gcc -O2 -c a.c -o o/a.o -fopt-info-all=/w/i", "/w/i"],
    ["-fprofile-note=F", "gcc -c --coverage a.c -o o/a.o -fprofile-note=/w/n.gcno", "/w/n.gcno"],
    ["-dumpdir PREFIX (files named PREFIX+NAME)", "gcc -save-temps -dumpdir /w/o -c a.c -o /w/o/a.o", "/w"],
    ["-dumpbase with a folder (-save-temps)", "gcc -save-temps -dumpbase ../db -c ../a.c -o x.o", ".."],
    ["-dumpbase after -dumpdir", "gcc -save-temps -dumpdir o/ -dumpbase ../../db -c a.c -o o/x.o", "o/../.."],
    [
      "-dumpbase with -fsave-optimization-record",
      "gcc -fsave-optimization-record -dumpbase /w/r -c a.c -o o/x.o",
      "/w",
    ],
  ])("judges %s as a write", (_how, cmd, file) => {
    expect(targets(cmd)).toContain(file);
  });

  it("keeps a -dumpdir that ends with / as the folder", () => {
    expect(targets("gcc -save-temps -dumpdir /w/o/ -c a.c -o /w/o/a.o")).not.toContain("/w");
  });
});

describe("what gcc passes to the linker, assembler and preprocessor", () => {
  it.each([
    ["-Wl,-Map=F", "gcc a.c -o o/x -Wl,-Map=/w/m", "/w/m"],
    ["-Wl,-Map,F", "gcc a.c -o o/x -Wl,-Map,/w/m", "/w/m"],
    ["-Wl,--output=F", "gcc a.c -o o/x -Wl,--output=/w/x", "/w/x"],
    ["-Wl,-o,F", "gcc a.c -o o/x -Wl,-o,/w/x", "/w/x"],
    ["-Xlinker -Map=F", "gcc a.c -o o/x -Xlinker -Map=/w/m", "/w/m"],
    ["-Xlinker -Map -Xlinker F", "gcc a.c -o o/x -Xlinker -Map -Xlinker /w/m", "/w/m"],
    ["--for-linker=-Map=F", "gcc a.c -o o/x --for-linker=-Map=/w/m", "/w/m"],
    ["-Wa,-al=F (the listing)", "gcc -c a.c -o o/a.o -Wa,-al=/w/l", "/w/l"],
    ["-Xassembler --MD -Xassembler F", "gcc -c a.c -o o/a.o -Xassembler --MD -Xassembler /w/d", "/w/d"],
    ["-Wp,-MD,F", "gcc -c a.c -o o/a.o -Wp,-MD,/w/d", "/w/d"],
    [
      "-Xpreprocessor -MF -Xpreprocessor F",
      "gcc -c a.c -o o/a.o -Xpreprocessor -MF -Xpreprocessor /w/d",
      "/w/d",
    ],
  ])("judges %s as a write", (_how, cmd, file) => {
    expect(targets(cmd)).toContain(file);
  });

  it.each([
    "gcc a.c -o o/x -Wl,@o/opts",
    "gcc a.c -o o/x --for-linker=@o/opts",
    "gcc -c a.c -o o/a.o -Wa,@o/opts",
    "gcc -c a.c -o o/a.o -Wp,@o/opts",
    "gcc -c a.c -o o/a.o -Xpreprocessor @o/opts",
  ])("refuses %s: the options it passes are read from a file", (cmd) => {
    let error: unknown;
    try {
      analyzeCommand(cmd);
    } catch (e) {
      error = e;
    }
    expect(isAidoError(error, "policy_denied"), `${cmd} was not refused`).toBe(true);
    expect(String((error as Error).message)).toMatch(/reads options from a file/);
  });

  it("keeps ordinary linker options: nothing more is written", () => {
    expect(targets("gcc a.c -o o/x -Wl,--as-needed,-rpath,/usr/lib -Xlinker -z -Xlinker now")).toEqual([
      "o/x",
    ]);
  });
});

describe("what as, ld, strip and objcopy write", () => {
  it.each([
    ["as -al=F (the listing)", "as -al=/w/l -o o/a.o a.s", "/w/l"],
    ["as -a=F", "as -a=/w/l -o o/a.o a.s", "/w/l"],
    ["ld --outp=F (a prefix of --output)", "ld --outp=/w/x a.o", "/w/x"],
    ["ld --outp F", "ld --outp /w/x a.o", "/w/x"],
    ["ld --Ma=F (a prefix of -Map)", "ld -o o/x --Ma=/w/m a.o", "/w/m"],
    ["strip --output-file=F", "strip --output-file=/w/b o/bin", "/w/b"],
    ["strip --output-f F", "strip --output-f /w/b o/bin", "/w/b"],
    ["objcopy --long-section-names V IN OUT", "objcopy --long-section-names keep o/bin /w/x", "/w/x"],
    ["objcopy --elf-stt-common V IN OUT", "objcopy --elf-stt-common yes o/bin /w/x", "/w/x"],
  ])("judges %s as a write", (_how, cmd, file) => {
    expect(targets(cmd)).toContain(file);
  });
});

describe("ld's --error-handling-script, a program ld runs on a link error (seen with the image's ld)", () => {
  it.each([
    "ld --error-handling-script=/w/s.sh -o o/x a.o -lnone",
    "ld --error-handling-script /w/s.sh -o o/x a.o",
    "ld --error-h=/w/s.sh -o o/x a.o",
    "gcc a.c -o o/x -Wl,--error-handling-script=/w/s.sh",
    "gcc a.c -o o/x -Xlinker --error-handling-script=/w/s.sh",
    "gcc a.c -o o/x --for-linker=--error-handling-script=/w/s.sh",
    "gcc a.c -o o/x --for-linker -plugin --for-linker /w/p.so",
    "gcc a.c -o o/x --for-linker=-plugin=/w/p.so",
  ])("refuses %s", (cmd) => {
    let error: unknown;
    try {
      analyzeCommand(cmd);
    } catch (e) {
      error = e;
    }
    expect(isAidoError(error, "policy_denied"), `${cmd} was not refused`).toBe(true);
    expect(String((error as Error).message)).toMatch(
      /runs or loads a program|loads a program into the linker/,
    );
  });
});

describe("ld's one-dash long options that begin with o", () => {
  it.each([
    ["-orphan-handling=place", "ld -orphan-handling=place a.o"],
    ["-orph=place", "ld -orph=place a.o"],
    ["-out-implib=F", "ld -out-implib=o/x a.o"],
    ["-out-i F", "ld -out-i o/x a.o"],
    ["gcc -Wl,-orphan-handling=place", "gcc -Wl,-orphan-handling=place a.o"],
  ])("judges %s as no -o: a.out in the cwd", (_how, cmd) => {
    expect(targets(cmd)).toContain(".");
    expect(targets(cmd).some((t) => t.startsWith("rph") || t.startsWith("ut-"))).toBe(false);
  });

  it.each([
    ["-omagic (ld reads -o magic)", "ld -omagic a.o", "magic"],
    ["-oformat=T (ld reads -o format=T)", "ld -oformat=elf64-x86-64 a.o", "format=elf64-x86-64"],
    ["-out-implib=F writes F", "ld -out-implib=/w/x a.o", "/w/x"],
  ])("reads %s as ld does", (_how, cmd, file) => {
    expect(targets(cmd)).toContain(file);
  });

  it("keeps --omagic a flag: a.out in the cwd", () => {
    expect(targets("ld --omagic a.o")).toEqual(["."]);
  });
});
