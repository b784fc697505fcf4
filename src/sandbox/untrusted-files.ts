// sandbox/untrusted-files.ts — what the host's walks over files a sandbox wrote share:
// reaching an entry through the descriptor of the folder it was opened in, never by a path
// again (a running task can swap a folder for a link between two steps), and the rule both
// copies of a sandbox's output (`aido run`'s outputs, `aido output`'s deliverables) apply to
// sparse files.

/** The path that reaches `name` inside the open folder `fd` (or the open file or folder itself). */
export function fdPath(fd: number, name?: string): string {
  return name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`;
}

/**
 * A file whose size exceeds what is stored of it by more than this (its holes: a task makes
 * a terabyte with one ftruncate, for nothing) is not copied: the copy would write the holes
 * out in full and fill the disk. A dense file costs the copy no more than the task already
 * wrote to the host.
 */
export const MAX_HOLE_BYTES = 64 * 1024 * 1024;

/** Why a file of `size` bytes, `blocks` 512-byte blocks stored, is not copied; undefined when it is. */
export function sparseRefusal(size: number, blocks: number): string | undefined {
  const holes = size - blocks * 512;
  return holes > MAX_HOLE_BYTES
    ? `sparse: ${size} bytes of which ${holes} were never written (holes over ${MAX_HOLE_BYTES} bytes are not copied)`
    : undefined;
}

// ignoreBOM: the decoder's default drops a leading byte order mark, and a file named
// "\uFEFFb.txt" was shown as "b.txt", another file's name (the dashboard served neither).
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * A file name read as bytes, as it is shown (reports, the dashboard's listing): the name
 * itself (a leading BOM kept) when it is UTF-8, else with every byte above 0x7f written as
 * \xNN. A task can name a file with any bytes but "/" and NUL; read as a string, such a
 * name lost its bytes (each became U+FFFD) and no longer reached the file, which the walks
 * then skipped in silence.
 * What a terminal would act on is left to the printer (terminal-text.ts inert).
 */
export function displayName(name: Buffer): string {
  try {
    return UTF8.decode(name);
  } catch {
    let out = "";
    for (const b of name) out += b > 0x7f ? `\\x${b.toString(16).padStart(2, "0")}` : String.fromCharCode(b);
    return out;
  }
}

/** fdPath for a name read as bytes. */
export function fdEntryPath(fd: number, name: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${fdPath(fd)}/`), name]);
}
