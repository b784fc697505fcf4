// sandbox/executor/op-error.ts — how an operation inside the executor fails: an OpError
// with a short code the host maps to an AidoError (executor-session.ts), and a message that
// names the path. Node's fs errors are translated here, in one table.

export type OpCode =
  | "not_found"
  | "invalid_input"
  | "permission_denied"
  | "path_changed"
  | "timeout"
  | "io_error"
  | "confinement_too_large"
  | "landlock_unavailable";

export class OpError extends Error {
  constructor(
    readonly code: OpCode,
    message: string,
  ) {
    super(message);
    this.name = "OpError";
  }
}

export function fail(code: OpCode, message: string): never {
  throw new OpError(code, message);
}

const FS_CODES: Record<string, [OpCode, string]> = {
  ENOENT: ["not_found", "no such file or directory"],
  ENOTDIR: ["not_found", "a parent is not a directory"],
  EISDIR: ["invalid_input", "is a directory"],
  EACCES: ["permission_denied", "permission denied"],
  EPERM: ["permission_denied", "operation not permitted"],
  EROFS: ["permission_denied", "read-only file system"],
  ELOOP: ["invalid_input", "too many levels of symbolic links"],
  ENOSPC: ["io_error", "no space left on device"],
  EFBIG: ["io_error", "file too large"],
};

/** Rethrow any error as an OpError naming `path`. */
export function fsFail(e: unknown, path: string): never {
  if (e instanceof OpError) throw e;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const what = code === undefined ? undefined : FS_CODES[code];
  if (what) throw new OpError(what[0], `${path}: ${what[1]}`);
  throw new OpError("io_error", `${path}: ${e instanceof Error ? e.message : String(e)}`);
}

export function errnoOf(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/** The wire form of any error thrown by an op. */
export function errorBody(e: unknown): { code: string; message: string } {
  if (e instanceof OpError) return { code: e.code, message: e.message };
  return { code: "io_error", message: e instanceof Error ? e.message : String(e) };
}
