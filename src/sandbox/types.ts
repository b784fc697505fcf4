// sandbox/types.ts — the seam between tools and the container a goal runs in. Tools
// only ever touch the world through a SandboxHandle; the Docker backend implements it
// with a long-lived executor inside the goal's container (sandbox/executor/).

export interface ExecRequest {
  /** Either argv (no shell) or a shell command string run by /bin/sh -c. */
  argv?: string[];
  command?: string;
  cwd?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Bytes kept of stdout and of stderr each; the rest is cut with a visible marker. */
  maxOutputBytes?: number;
  stdin?: string;
}

export interface ExecResult {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  truncated: boolean;
  durationMs: number;
  /** The command was killed because the sandbox ran out of memory (cgroup OOM kill). */
  oomKilled?: boolean;
}

export interface FileStat {
  path: string;
  type: "file" | "dir" | "symlink" | "other";
  size: number;
  mode: number;
  mtimeMs: number;
}

export interface GrepMatch {
  path: string;
  line: number;
  text: string;
}

export interface ListEntry {
  name: string;
  type: FileStat["type"];
  size: number;
}

/**
 * `expect`: the canonical path the host judged (the same string as `path`). The executor
 * then refuses (capability_denied) unless the path still resolves to it, and acts without
 * following a symlink anywhere along it: each folder is opened with O_NOFOLLOW from "/" and
 * the op is done inside the opened folder, so a symlink swapped in by a parallel command
 * cannot redirect it. Without `expect` the path is used as given.
 */
export interface FileOpOptions {
  expect?: string;
}

export interface GrepOptions extends FileOpOptions {
  /** Bounds the search inside the container (a pathological regex is stopped). */
  timeoutMs?: number;
}

/** A goal's sandbox as tools see it. Paths are container paths (/workspace/...). */
export interface SandboxHandle {
  readonly goalId: string;
  /**
   * Canonical absolute path as resolved inside the container: symlinks followed (for the
   * longest existing prefix), "." and ".." removed. The gate checks grants on this.
   */
  realpath(path: string): Promise<string>;
  exec(req: ExecRequest): Promise<ExecResult>;
  readFile(
    path: string,
    opts?: { offset?: number; limit?: number; maxBytes?: number } & FileOpOptions,
  ): Promise<{ content: string; truncated: boolean; size: number }>;
  /** Atomic: written to a temp file in the same folder, then renamed over the target. */
  writeFile(path: string, content: string, opts?: FileOpOptions): Promise<{ bytes: number }>;
  editFile(
    path: string,
    oldString: string,
    newString: string,
    replaceAll: boolean,
    opts?: FileOpOptions,
  ): Promise<{ replacements: number }>;
  list(path: string, opts?: FileOpOptions): Promise<ListEntry[]>;
  stat(path: string, opts?: FileOpOptions): Promise<FileStat | null>;
  glob(pattern: string, cwd: string): Promise<string[]>;
  grep(
    pattern: string,
    path: string,
    glob?: string,
    maxMatches?: number,
    opts?: GrepOptions,
  ): Promise<GrepMatch[]>;
}
