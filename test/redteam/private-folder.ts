// test/redteam/private-folder.ts — the caller's private folder (/tmp/agent-<id>, gate/confinement.ts
// privateTmpOf) as the red-team files that try to remove it use it on a shared bench: made and
// given a `keep` file before an attack (unconfined, in the shared container), read back after,
// and the attack refused before anything ran. Shared by private-tmp-removal.test.ts,
// exec-runtime-args.test.ts and exec-runtime-attacks.test.ts.

import { expect } from "vitest";
import { privateTmpOf } from "../../src/gate/confinement.js";
import { expectOk } from "./fixture.js";
import { expectRefused, type SharedBench } from "./shared-bench.js";

/** The exec ran and exited 0. */
export function ran(r: Awaited<ReturnType<SharedBench["exec"]>>): void {
  expect((expectOk(r).data as { exit_code?: number } | undefined)?.exit_code, JSON.stringify(r)).toBe(0);
}

export interface PrivateFolder {
  /** The folder's path. */
  tmp(): string;
  /** The private folder exists (made by a first exec) and holds `keep`. */
  keep(): Promise<void>;
  /** What the private folder's `keep` holds now ("" when it is gone). */
  kept(): Promise<string>;
  /**
   * `command` (its `@P` the folder's path) refused before anything ran, audited: as unjudgeable
   * (stage policy) with a reason matching `why` when given, else as a file_write on the folder
   * itself; and the folder kept.
   */
  expectKept(command: string, why?: RegExp): Promise<void>;
}

/** The private folder of the agent of `profile` on the bench `bench()` (read at each call: set in beforeAll). */
export function privateFolder(bench: () => SharedBench, profile = "worker"): PrivateFolder {
  const tmp = () => privateTmpOf(bench().agents.get(profile)!);
  const keep = async () => {
    ran(await bench().exec(profile, "echo made"));
    const r = await bench().inner.exec({
      argv: ["sh", "-c", 'mkdir -p "$1" && echo k > "$1/keep"', "sh", tmp()],
      confinement: "unconfined",
    });
    expect(r.exitCode, r.stderr).toBe(0);
  };
  const kept = async () => {
    const r = await bench().inner.exec({
      argv: ["sh", "-c", 'cat "$1/keep" 2>/dev/null || true', "sh", tmp()],
      confinement: "unconfined",
    });
    return r.stdout;
  };
  const expectKept = async (command: string, why?: RegExp) => {
    await keep();
    const r = await bench().exec(profile, command.replaceAll("@P", tmp()));
    if (why) expectRefused(bench(), profile, r, "policy", why);
    else expectRefused(bench(), profile, r, "capability", new RegExp(`file_write on ${tmp()} `));
    expect(await kept()).toBe("k\n");
  };
  return { tmp, keep, kept, expectKept };
}
