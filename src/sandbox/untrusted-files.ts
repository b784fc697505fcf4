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
