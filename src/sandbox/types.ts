// sandbox/types.ts — the seam between tools and the container a goal runs in. Tools
// only ever touch the world through a SandboxHandle; the Docker backend implements it
// with a long-lived executor inside the goal's container (sandbox/executor/).

/**
 * What one agent's commands may touch, as the gate computed it from the agent's verified
 * grants and the operator's deny rules (gate/confinement.ts). The executor turns it into a
 * Landlock domain for each exec (executor/confinement.ts): never wider than these globs.
 */
export interface Confinement {
  /** Readable: file_read globs, and /skills/<name>/** for each skill the agent may read. */
  read: string[];
  /** Writable: file_write globs. */
  write: string[];
  /** Neither readable nor writable (policy `path:` deny rules). */
  deny: string[];
  /** Not readable (policy `file_read:` deny rules). */
  denyRead: string[];
  /** Not writable (policy `file_write:` deny rules). */
  denyWrite: string[];
  /** The agent's private temp folder, /tmp/<name>: HOME and TMPDIR point there. */
  tmp: string;
  /**
   * The agent may run programs from the goal's folders (/workspace, /output, /inputs,
   * /skills, its temp folder): its exec grants allow a program named by a path there
   * (gate/confinement.ts). false: it reads and writes files there but execve()s none.
   */
  execute: boolean;
  /**
   * TCP ports its commands may connect to, in a container on an egress network: the
   * agent's relay port when it holds a network grant, else none (no TCP connect at all).
   * Absent: connects are not restricted (a container on no network reaches nothing but
   * itself). Enforced by Landlock ABI >= 4 (aido-landlock --tcp-connect).
   */
  connect?: number[];
}

export interface ExecRequest {
  /** Either argv (no shell) or a shell command string run by /bin/dash -c. */
  argv?: string[];
  command?: string;
  /**
   * The Landlock domain the command runs in. "unconfined" only for trusted internal callers
   * (the human sandbox, image tests); with `sandbox.landlock: off` every exec runs so.
   */
  confinement: Confinement | "unconfined";
  /**
   * With confinement "unconfined" only: the TCP ports the command may connect to (a human
   * sandbox on its egress network: the proxy's port; aido-landlock --unconfined
   * --tcp-connect, Landlock ABI >= 4). A confined exec names its ports in confinement.connect.
   */
  connect?: number[];
  /**
   * The command makes no Unix socket of its own (aido-landlock --no-unix-sockets): it
   * connects to none it finds in its mounts, by path or abstract name. A stream socketpair
   * and pipes still work. A human sandbox's task unless its file allows them.
   */
  denyUnixSockets?: boolean;
  cwd?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Bytes kept of stdout and of stderr each; the rest is cut with a visible marker. */
  maxOutputBytes?: number;
  stdin?: string;
  /**
   * Largest file the command (and what it starts) may write, in bytes: RLIMIT_FSIZE, so a
   * single write cannot pass the goal's remaining room (sandbox.workspace_max_mb). 0: no
   * file may grow (deleting still works). Absent: no limit.
   */
  maxFileBytes?: number;
  /** Abort: the call fails as cancelled and the command's process group is killed. */
  signal?: AbortSignal;
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
  /** The call was cancelled (its signal aborted) and the command killed. */
  cancelled?: boolean;
}

/** What grep may read: files matched by a `read` glob and by no `deny` glob. */
export interface ReadView {
  read: string[];
  deny: string[];
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
  /**
   * The caller's cancel (its agent stopped, its client left): the call ends as cancelled while
   * it waits (the goal's container frozen by its node's fence, the executor starting). A read,
   * list, stat or grep is given up at any time (its late answer dropped). A write or edit is given
   * up only until it is sent: once sent it is awaited to its end, so it has either landed whole
   * (written to a temp file and renamed over the target) or not at all when the caller hears.
   */
  signal?: AbortSignal;
}

export interface GrepOptions extends FileOpOptions {
  /** Bounds the search inside the container (a pathological regex is stopped). */
  timeoutMs?: number;
  /** Only files this view allows are opened; folders it cannot reach are not entered. */
  view?: ReadView;
}

/** A goal's sandbox as tools see it. Paths are container paths (/workspace/...). */
export interface SandboxHandle {
  readonly goalId: string;
  /**
   * Canonical absolute path as resolved inside the container: symlinks followed (for the
   * longest existing prefix), "." and ".." removed. The gate checks grants on this.
   */
  realpath(path: string, opts?: { signal?: AbortSignal }): Promise<string>;
  exec(req: ExecRequest): Promise<ExecResult>;
  /**
   * A confined exec here runs in a Landlock domain with HOME and TMPDIR at the agent's
   * private folder (executor/exec.ts): Landlock is not turned off and the kernel has it.
   * Known once the executor has answered a call (false before). Absent: false; an exec
   * then has the container's HOME (/tmp) and no TMPDIR.
   */
  confinesWithPrivateTmp?(): boolean;
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
  grep(
    pattern: string,
    path: string,
    glob?: string,
    maxMatches?: number,
    opts?: GrepOptions,
  ): Promise<GrepMatch[]>;
}
