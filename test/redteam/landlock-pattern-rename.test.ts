// OPEN (red team): a read grant that is a file pattern, with write on the same folder.
// `file_read: /workspace/pub/*.md` becomes file rules for the .md files that exist when an
// exec starts; the folder itself gets no read rule, while `file_write: /workspace/pub/**`
// gives it a hierarchy rule (create, remove, rename, REFER). So inside the domain a new
// name in pub/ is write-only, and Landlock lets a file move in from a write-only folder
// (no right is gained) or be renamed within pub/. By path, though, the new name matches the
// read grant, and file_read (or the next exec's rules) reads it: a plain `mv` moves the
// write-only inbox's file into pub/ as k.md. Docs: "moving a secret into a readable folder
// fails even with write access to both". (Renaming pub/notes.txt to notes.md works too; that
// one is the documented same-folder case: write on a folder renames what it holds.) Not fixed here: the rules are built in the
// executor, which is in the image (a folder whose read rights are not the same for every
// name below it — read neither covered nor disjoint — should get no hierarchy write rule;
// that also subsumes the host-side rule that a file_read: deny denies writing).

import { chownSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AidoError } from "../../src/errors.js";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import { type Bench, openBench } from "./fixture.js";

let b: Bench;
beforeAll(async () => {
  b = await openBench({}, (c) => {
    c.policy.snapshotBeforeMutation = false;
  });
}, 180_000);
afterAll(async () => {
  await b?.close();
});

const text = (r: unknown) => (r instanceof AidoError ? r.message : (r as { output: string }).output);

describe("an agent that reads pub/*.md, writes pub/ and writes (only) inbox/", () => {
  it("cannot read the inbox's file by moving it into pub/ as .md", async () => {
    const a = b.agent("renamer", [
      "tool: exec",
      "tool: file_read",
      "file_read: /workspace/pub",
      "file_read: /workspace/pub/*.md",
      "file_write: /workspace/pub/**",
      "file_write: /workspace/inbox/**",
      "exec: mv *",
    ]);
    await ((await b.rt.backend.acquire(a.goalId)) as DockerSandbox).ready();
    const ws = join(b.home.config.goalsDir, a.goalId, "workspace");
    const { uid, gid } = statSync(ws);
    const plant = (f: string, content: string) => {
      writeFileSync(join(ws, f), content);
      chownSync(join(ws, f), uid, gid);
    };
    for (const d of ["pub", "inbox"]) {
      mkdirSync(join(ws, d));
      chownSync(join(ws, d), uid, gid);
    }
    plant("inbox/k.txt", "INBOX-ONLY-1212\n");
    plant("pub/readme.md", "readable\n");
    // Both are refused by name first.
    expect(text(await b.call(a.id, "file_read", { path: "/workspace/inbox/k.txt" }))).toContain(
      "no capability",
    );
    expect(text(await b.call(a.id, "file_read", { path: "/workspace/pub/notes.txt" }))).toContain(
      "no capability",
    );
    const cwd = "/workspace/pub";
    const moved = text(
      await b.call(a.id, "exec", { command: "mv /workspace/inbox/k.txt /workspace/pub/k.md", cwd }),
    );
    const renamed = text(
      await b.call(a.id, "exec", { command: "mv /workspace/pub/notes.txt /workspace/pub/notes.md", cwd }),
    );
    expect(text(await b.call(a.id, "file_read", { path: "/workspace/pub/k.md" })), moved).not.toContain(
      "INBOX-ONLY-1212",
    );
    expect(text(await b.call(a.id, "file_read", { path: "/workspace/pub/notes.md" })), renamed).not.toContain(
      "NOT-MD-3434",
    );
  });
});
