// security/shell-writes-system.ts — what the image's file-system and loader tools write, read
// as each reads its arguments (e2fsprogs 1.47, glibc's ldconfig, util-linux's blkid, gpgv;
// checked against the image), for a file-system image the agent keeps in a regular file:
// e2fsck (the image, unless -n), resize2fs, tune2fs, e2label IMG LABEL, e2image (IMG OUT; -I
// writes IMG), badblocks (-o F; -w and -n write the image) and each one's `-z UNDO` file;
// `ldconfig` (links in each folder operand, beside each -l library; its cache, -C F, else
// /etc/ld.so.cache under -r ROOT); `blkid -c/-w F` (its cache); `gpgv -o/--output F`.
// debugfs is refused (shell-programs.ts): its requests (-R, -f, stdin) dump files anywhere.
// shell-writes.ts dispatches.

import { posix } from "node:path";
import { type Getopt, getopt, has, longs, type Read, values } from "./shell-getopt.js";
import type { ProgramWrite } from "./shell-writes.js";

/** A system file the program writes by default: the policy's system-path rule refuses it. */
const implied = (value: string): ProgramWrite => ({ value, at: -1 });

/** Each program's getopt letters that take a value. */
const E2FS: Record<string, string> = {
  e2fsck: "CBEMbIjPlLNz",
  "fsck.ext2": "CBEMbIjPlLNz",
  "fsck.ext3": "CBEMbIjPlLNz",
  "fsck.ext4": "CBEMbIjPlLNz",
  resize2fs: "dSz",
  tune2fs: "cegimorsuCEIJLMOTUzQ",
  e2image: "bBoO",
  badblocks: "bcdeiopt",
  e2label: "",
};

function e2fsWrites(name: string, argv: readonly string[]): ProgramWrite[] {
  const r: Read = getopt(argv, 1, { short: E2FS[name]!, long: {} });
  const undo = values(r, "z");
  const [img, second] = r.operands;
  const out: ProgramWrite[] = [...undo];
  switch (name) {
    case "resize2fs":
      if (img && !has(r, "P")) out.push(img);
      break;
    case "tune2fs":
      if (img && !(has(r, "l") && r.opts.length === 1)) out.push(img);
      break;
    case "e2label":
      if (img && second) out.push(img);
      break;
    case "e2image":
      // e2image IMG OUT; -I IMG OUT puts the metadata saved in OUT back into IMG.
      if (has(r, "I")) out.push(...(img ? [img] : []));
      else if (second && second.value !== "-") out.push(second);
      break;
    case "badblocks":
      out.push(...values(r, "o"));
      if (img && has(r, "w", "n")) out.push(img);
      break;
    default:
      // e2fsck: -n opens the file system read-only.
      if (img && !has(r, "n")) out.push(img);
  }
  return out;
}

const LDCONFIG: Getopt = {
  short: "CfrcS",
  long: longs(["format"], ["print-cache", "verbose", "version", "help", "usage"]),
};
/** ldconfig: links in each folder it is given (beside each library with -l) unless -X, its cache unless -N. */
function ldconfigWrites(argv: readonly string[]): ProgramWrite[] {
  const r = getopt(argv, 1, LDCONFIG);
  if (has(r, "p", "print-cache", "V", "version", "?", "help", "usage")) return [];
  const root = values(r, "r").at(-1);
  const out: ProgramWrite[] = [];
  if (!has(r, "X")) {
    for (const o of r.operands) out.push(has(r, "l") ? { value: posix.dirname(o.value), at: o.at } : o);
  }
  if (!has(r, "N") && !has(r, "n")) {
    const cache = values(r, "C").at(-1);
    if (cache)
      out.push(
        root && cache.value.startsWith("/") ? { value: `${root.value}${cache.value}`, at: cache.at } : cache,
      );
    else
      out.push(root ? { value: `${root.value}/etc/ld.so.cache`, at: root.at } : implied("/etc/ld.so.cache"));
  }
  return out;
}

/** blkid's getopt letters that take a value; -c and -w name its cache file (/dev/null: none). */
const BLKID: Getopt = { short: "cHLnoOsStuUw", long: {} };

/** gpgv's options that take a value (gpg's argparse: `--opt V` or `--opt=V`, any unique prefix). */
const GPGV: Getopt = {
  short: "o",
  long: longs(
    [
      "keyring",
      "output",
      "status-fd",
      "logger-fd",
      "log-file",
      "homedir",
      "weak-digest",
      "assert-pubkey-algo",
    ],
    ["quiet", "verbose", "ignore-time-conflict", "enable-special-filenames"],
  ),
};

export const SYSTEM_TOOL_NAMES = [...Object.keys(E2FS), "ldconfig", "blkid", "gpgv"];

export function systemToolWrites(name: string, argv: readonly string[]): ProgramWrite[] {
  if (name in E2FS) return e2fsWrites(name, argv);
  if (name === "ldconfig") return ldconfigWrites(argv);
  if (name === "blkid") {
    return values(getopt(argv, 1, BLKID), "c", "w").filter((c) => c.value !== "/dev/null");
  }
  return values(getopt(argv, 1, GPGV), "o", "output").filter((o) => o.value !== "-");
}
