// The image's file-system and loader tools, whose written files the write table did not know
// (each was judged as a read): an ext2 image the agent keeps in a regular file is written by
// e2fsck, resize2fs, tune2fs, e2label, e2image -I and badblocks -w; e2image, badblocks -o,
// blkid -c, ldconfig and gpgv -o write the file they name; debugfs writes what its requests name.
// Each reading was checked against the program in the image.

import { describe, expect, it } from "vitest";
import { isAidoError } from "../../src/errors.js";
import { analyzeCommand } from "../../src/security/shell.js";
import { targets } from "../support/write-targets.js";

describe("what the image's file-system and loader tools write", () => {
  it.each([
    ["e2fsck IMG", "e2fsck -fy /w/img", "/w/img"],
    ["e2fsck -n -z UNDO (the undo file)", "e2fsck -fn -z /w/u img", "/w/u"],
    ["resize2fs IMG SIZE", "resize2fs /w/img 3M", "/w/img"],
    ["tune2fs -L LABEL IMG", "tune2fs -L x /w/img", "/w/img"],
    ["tune2fs -z UNDO", "tune2fs -z /w/u -l img", "/w/u"],
    ["e2label IMG LABEL", "e2label /w/img x", "/w/img"],
    ["e2image IMG OUT", "e2image img /w/i", "/w/i"],
    ["e2image -I IMG SAVED", "e2image -I /w/img i", "/w/img"],
    ["badblocks -o F", "badblocks -o /w/bb img", "/w/bb"],
    ["badblocks -w IMG", "badblocks -w /w/img", "/w/img"],
    ["ldconfig -n DIR (its links)", "ldconfig -n /w", "/w"],
    ["ldconfig -C F", "ldconfig -C /w/c", "/w/c"],
    ["ldconfig -r ROOT (its cache under ROOT)", "ldconfig -r /w", "/w/etc/ld.so.cache"],
    ["ldconfig (the system's cache)", "ldconfig", "/etc/ld.so.cache"],
    ["blkid -c F", "blkid -c /w/c img", "/w/c"],
    ["gpgv --output F", "gpgv --output /w/o sig", "/w/o"],
    ["gpgv -oF", "gpgv -o/w/o sig", "/w/o"],
    ["gpgv --out F (a prefix)", "gpgv --out /w/o sig", "/w/o"],
  ])("judges %s as a write", (_how, cmd, file) => {
    expect(targets(cmd)).toContain(file);
  });

  it.each([
    ["e2fsck -n", "e2fsck -n /w/img"],
    ["resize2fs -P", "resize2fs -P /w/img"],
    ["tune2fs -l", "tune2fs -l /w/img"],
    ["e2label IMG (printed)", "e2label /w/img"],
    ["badblocks (read-only test)", "badblocks -b 1024 /w/img"],
    ["ldconfig -p", "ldconfig -p"],
    ["blkid -c /dev/null", "blkid -c /dev/null /w/img"],
    ["gpgv", "gpgv --keyring k /w/sig /w/data"],
  ])("keeps %s as a read", (_how, cmd) => {
    expect(targets(cmd)).toEqual([]);
  });

  it.each(["debugfs img", "debugfs -R 'dump a /w/x' img", "xargs debugfs -w"])("refuses %s", (cmd) => {
    let error: unknown;
    try {
      analyzeCommand(cmd);
    } catch (e) {
      error = e;
    }
    expect(isAidoError(error, "policy_denied"), `${cmd} was not refused`).toBe(true);
    expect(String((error as Error).message)).toMatch(/debugfs runs the requests/);
  });
});
