// Red team: `git grep -O[CMD]` (--open-files-in-pager) opens the matching files with CMD,
// which git runs through sh -c whether or not stdout is a terminal, and a short option git
// takes with its value attached (`clone -u<CMD>`, `-c<key=value>`, `rebase -x<CMD>`) is that
// option. The git table refused such options only as separate, exactly spelled words. An
// agent holding `exec: git *` ran any command, a push past the operator's confirm rule on
// `git push *` among them. Through the real gate, in a real container: each is refused
// before anything runs, audited, and did nothing; git grep without -O still runs. So is git's
// internal `submodule--helper`, whose foreach runs its argument through sh in each submodule
// (the porcelain's `git submodule foreach` was refused; its helper, one of git's own
// commands, was not), and the other internal helpers that run or start programs. And
// `git ls-remote --exec=CMD`, a hidden name ls-remote keeps for --upload-pack: git runs CMD
// through sh for a local repository (seen pushing in the image); the table knew only -u and
// --upload-pack for ls-remote.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOk } from "./fixture.js";
import { expectRefused, openSharedBench, type SharedBench } from "./shared-bench.js";

let b: SharedBench;

beforeAll(async () => {
  b = await openSharedBench({
    profiles: {
      gitter: ["tool: exec", "file_read: /workspace/**", "file_write: /workspace/**", "exec: git *"],
    },
    confirm: ["git push *"],
    files: { "/workspace/repo/f": "hello\n" },
    setup: [
      "git init -q /workspace/repo && git -C /workspace/repo add f",
      "git -C /workspace/repo -c user.email=a@b -c user.name=n commit -q -m one",
      "git init -q --bare /workspace/remote.git",
      "git init -q /workspace/sub && git -C /workspace/sub -c user.email=a@b -c user.name=n commit -q --allow-empty -m s",
      "git init -q /workspace/super && cd /workspace/super && git -c protocol.file.allow=always submodule add -q /workspace/sub s && cd /",
      "chmod -R a+rwX /workspace",
    ].join(" && "),
  });
}, 240_000);

afterAll(async () => {
  await b?.close();
});

const branches = async (): Promise<string> =>
  (await b.inner.exec({ argv: ["git", "-C", "/workspace/remote.git", "branch"], confinement: "unconfined" }))
    .stdout;

describe("git runs no program named in an option's attached value", () => {
  it.each([
    [
      "git grep -O, the pager pushing",
      "cd /workspace/repo && git grep -O'git push /workspace/remote.git HEAD:refs/heads/g1 #' hello",
      /git grep -O/,
    ],
    [
      "git grep -O in a cluster",
      "cd /workspace/repo && git grep -iO'touch /workspace/pwn-grep #' hello",
      /git grep -iO/,
    ],
    [
      "git grep --open-files-in-pager=",
      "cd /workspace/repo && git grep --open-files-in-pager='touch /workspace/pwn-grep #' hello",
      /--open-files-in-pager names a program/,
    ],
    [
      "git grep --open-files, an abbreviation",
      "cd /workspace/repo && git grep --open-files='touch /workspace/pwn-grep #' hello",
      /--open-files names a program/,
    ],
    [
      "git submodule--helper foreach, pushing",
      "cd /workspace/super && git submodule--helper foreach 'git -C /workspace/repo push /workspace/remote.git HEAD:refs/heads/s1'",
      /git submodule--helper runs/,
    ],
    [
      "git bisect--helper",
      "cd /workspace/repo && git bisect--helper --bisect-run touch /workspace/pwn-grep",
      /git bisect--helper runs/,
    ],
    [
      "git ls-remote --exec, its hidden name for --upload-pack, pushing",
      "git ls-remote --exec='git -C /workspace/repo push /workspace/remote.git HEAD:refs/heads/l1 #' /workspace/repo",
      /git ls-remote --exec names a program/,
    ],
    [
      "git ls-remote --exe, an abbreviation",
      "git ls-remote --exe 'touch /workspace/pwn-grep #' /workspace/repo",
      /git ls-remote --exe names a program/,
    ],
    [
      "git clone -u with the program attached",
      "git clone -u'touch /workspace/pwn-clone #' /workspace/repo /workspace/c1",
      /git clone -u/,
    ],
  ])(
    "refuses %s",
    async (_how, command, why) => {
      const r = await b.exec("gitter", command);
      expectRefused(b, "gitter", r, "policy", why);
      expect(await branches()).toBe("");
      expect(b.exists("/workspace/pwn-grep")).toBe(false);
      expect(b.exists("/workspace/pwn-clone")).toBe(false);
    },
    60_000,
  );

  it("still commits with git -c setting the identity, and refuses -c for any other key", async () => {
    const r = expectOk(
      await b.exec(
        "gitter",
        "cd /workspace/repo && git -c user.name=bot -c user.email=b@x commit -q --allow-empty -m m && git log -1 --format=%an",
      ),
    );
    expect(r.output).toContain("bot");
    const refused = await b.exec(
      "gitter",
      "cd /workspace/repo && git -c user.name=bot -c core.fsmonitor='touch /workspace/pwn-grep' status",
    );
    expectRefused(b, "gitter", refused, "policy", /git -c may set only user\.name, user\.email/);
    expect(b.exists("/workspace/pwn-grep")).toBe(false);
  }, 60_000);

  it("still greps", async () => {
    const r = expectOk(await b.exec("gitter", "cd /workspace/repo && git grep -n hello"));
    expect(r.output).toContain("f:1:hello");
  }, 60_000);
});
