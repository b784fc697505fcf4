// tools/exec-resolver.ts — one exec's paths resolved in its container and turned into needs:
// from each folder the command may start in (dash's logical $PWD for a cd target, the real
// folder for what a program opens), a path under the goal's mounts needs the grant its access
// asks for, but one in the caller's private folder (its exec's Landlock domain reads and writes
// all of it), except the folder itself when it is what is removed. exec-paths.ts finds the words.

import { posix } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";
import { isWithin } from "../fs/within.js";
import type { Need } from "../gate/types.js";
import type { SandboxHandle } from "../sandbox/types.js";
import type { ResolvedPath } from "../security/shell.js";
import type { DirPath } from "../security/shell-dirs.js";

/** The folders a goal's container mounts from the host or gives it: grants are needed inside. */
export const MOUNT_ROOTS: readonly string[] = ["/workspace", "/output", "/inputs", "/skills", "/tmp"];
/** More distinct paths than this in one exec are refused (each is a round trip to the container). */
export const MAX_EXEC_PATHS = 256;

/** Where a command may start: dash's $PWD (the path as cd'd to) and the real folder. */
export interface StartDir {
  logical: string;
  canonical: string;
}

function underMounts(path: string): boolean {
  return MOUNT_ROOTS.some((root) => isWithin(root, path));
}

export class Resolver {
  readonly needs: Need[] = [];
  readonly paths: ResolvedPath[] = [];
  private readonly seen = new Set<string>();
  private readonly cache = new Map<string, Promise<string>>();
  private readonly dirCache = new Map<string, Promise<StartDir>>();

  constructor(
    private readonly sandbox: SandboxHandle,
    private readonly cwd: string,
    private readonly privateTmp: string | undefined,
  ) {}

  private realpath(path: string): Promise<string> {
    let hit = this.cache.get(path);
    if (!hit) {
      if (this.cache.size >= MAX_EXEC_PATHS) {
        throw new AidoError(ErrorCode.policyDenied, `the command names more than ${MAX_EXEC_PATHS} paths`);
      }
      hit = this.sandbox.realpath(path);
      this.cache.set(path, hit);
    }
    return hit;
  }

  /**
   * A possible starting directory. dash's cd is logical by default: it keeps the path as
   * typed (its $PWD) and takes `..` off that text before symlinks are followed (`cd link/..`
   * stays where link is); `cd -P` resolves first. The exec starts in its canonical cwd.
   */
  dir(path: DirPath): Promise<StartDir> {
    const key = JSON.stringify(path);
    let hit = this.dirCache.get(key);
    if (!hit) {
      hit = (async () => {
        let logical = this.cwd;
        for (const step of path) {
          if (!step.physical) logical = posix.resolve(logical, step.target);
          else {
            const from = await this.realpath(logical);
            logical = await this.realpath(
              step.target.startsWith("/") ? step.target : `${from}/${step.target}`,
            );
          }
        }
        return { logical, canonical: await this.realpath(logical) };
      })();
      this.dirCache.set(key, hit);
    }
    return hit;
  }

  /**
   * Judge `written` from each directory: as a program opens it (from the real folder, `..`
   * after symlinks), or, for a cd target (`logical`), as dash's cd does (from $PWD, `..` first).
   */
  async judge(
    written: string,
    dirs: StartDir[] | undefined,
    access: ResolvedPath["access"] | "readwrite",
    via: string,
    explicit: boolean,
    logical = false,
    removes = false,
  ): Promise<void> {
    if (!written.startsWith("/") && dirs === undefined) {
      throw new AidoError(
        ErrorCode.policyDenied,
        `cannot judge the relative path "${written}" (${via}): the command moves to a directory known only at run time (cd $DIR, cd -, a relative cd in a loop or function, a sourced script that changes directory); give an absolute path`,
        { rule: "unjudgeable" },
      );
    }
    const bases = written.startsWith("/") ? [""] : dirs!.map((d) => (logical ? d.logical : d.canonical));
    for (const base of bases) {
      const full = written.startsWith("/") ? written : `${base}/${written}`;
      const path = removes
        ? await this.removed(full)
        : await this.realpath(logical ? posix.resolve(full) : full);
      if (!explicit && (await this.sandbox.stat(posix.dirname(path))) === null) continue;
      const accesses = access === "readwrite" ? (["read", "write"] as const) : [access];
      for (const a of accesses) this.add(path, a, `${via}: "${written}"`, removes);
    }
  }

  /**
   * What removing `full` removes: rm, rmdir, unlink and find -delete remove a link, not what it
   * leads to (`rm -r L`, L a link to the private folder, removes L), so its folder is resolved and
   * its last name kept. Written with a trailing `/`, `.` or `..` (`rm -r L/`), the name is
   * followed: judged where it leads.
   */
  private async removed(full: string): Promise<string> {
    const name = full.slice(full.lastIndexOf("/") + 1);
    if (name === "" || name === "." || name === "..") return this.realpath(full);
    const folder = await this.realpath(full.slice(0, full.lastIndexOf("/")) || "/");
    return folder === "/" ? `/${name}` : `${folder}/${name}`;
  }

  private add(path: string, access: ResolvedPath["access"], via: string, removes = false): void {
    // Removed is kept apart: `touch $TMPDIR && rm -rf $TMPDIR` must still ask for the removal.
    const key = `${access}\0${removes}\0${path}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.paths.push({ path, access, via });
    if (!underMounts(path)) return;
    // The caller's private folder: its exec's Landlock domain reads and writes all of it,
    // whatever the grants (sandbox/executor/confinement.ts confinementArgs), so no grant is
    // asked for. `path` is canonical: a link in the folder is judged where it leads. The
    // policy still sees the path (above). The folder itself is an entry of /tmp: removing it
    // (`rm -rf $TMPDIR`) needs a grant there, as Landlock does (without one, rm empties the folder and
    // fails on it): judged as any /tmp path, so the refusal comes before anything is removed.
    const itself = removes && path === this.privateTmp;
    if (this.privateTmp !== undefined && isWithin(this.privateTmp, path) && !itself) return;
    const kind = access === "read" ? "file_read" : access === "write" ? "file_write" : "file_access";
    this.needs.push({ kind, path, via });
  }
}
