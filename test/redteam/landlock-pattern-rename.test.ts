// Red team: a read grant that is a file pattern, with write on the same folder.
// `file_read: /workspace/pub/*.md` becomes file rules for the .md files that exist when an
// exec starts, so inside the domain a new name in pub/ was write-only, and Landlock lets a
// file move in from a write-only folder (no right is gained in the domain) or be renamed
// within pub/. By path, though, the new name matches the read grant, and file_read read it:
// `mv /workspace/inbox/k.txt /workspace/pub/k.md` handed the write-only inbox's file over.
// Now a write hierarchy rule never spans a folder whose reads are mixed (some names below
// it readable by path, others not): pub/ and /workspace get write-file rules for what they
// hold instead, so no name can be created, moved or renamed in them by an exec, while the
// inbox (nothing readable below it) keeps its hierarchy rule.

import { chownSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AidoError } from "../../src/errors.js";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import { noSnapshots, useBench } from "./fixture.js";

const b = useBench(noSnapshots);

const text = (r: unknown) => (r instanceof AidoError ? r.message : (r as { output: string }).output);

describe("an agent that reads pub/*.md, writes pub/ and writes (only) inbox/", () => {
  it("cannot read the inbox's file by moving it into pub/ as .md, nor rename pub's other files to .md", async () => {
    const a = b.agent("renamer", [
      "tool: exec",
      "tool: file_read",
      "file_read: /workspace/pub",
      "file_read: /workspace/pub/*.md",
      "file_write: /workspace/pub/**",
      "file_write: /workspace/inbox/**",
      "exec: mv *",
      "exec: cp *",
    ]);
    await ((await b.rt.backend.acquire(a.goalId)) as DockerSandbox).ready();
    const ws = join(b.home.config.goalsDir, a.goalId, "workspace");
    const { uid, gid } = statSync(ws);
    const plant = (f: string, content: string) => {
      writeFileSync(join(ws, f), content);
      chownSync(join(ws, f), uid, gid);
    };
    for (const d of ["pub", "inbox", "pub/sub"]) {
      mkdirSync(join(ws, d));
      chownSync(join(ws, d), uid, gid);
    }
    plant("inbox/k.txt", "INBOX-ONLY-1212\n");
    plant("pub/readme.md", "readable\n");
    plant("pub/notes.txt", "NOT-MD-3434\n");
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
    expect(moved).toMatch(/cannot move .* Permission denied/);
    expect(renamed).toMatch(/cannot move .* Permission denied/);
    expect(text(await b.call(a.id, "file_read", { path: "/workspace/pub/k.md" }))).toMatch(/no such file/);
    expect(text(await b.call(a.id, "file_read", { path: "/workspace/pub/notes.md" }))).toMatch(
      /no such file/,
    );
    expect(readFileSync(join(ws, "inbox", "k.txt"), "utf8")).toBe("INBOX-ONLY-1212\n");
    // What it may still do: rewrite the files pub/ holds, and write where nothing is readable
    // (the inbox, and pub/sub/, which no read grant reaches).
    const writes = text(
      await b.call(a.id, "exec", {
        command:
          "cp /workspace/pub/readme.md /workspace/pub/notes.txt && cp /workspace/pub/readme.md /workspace/inbox/copy.md && mv /workspace/inbox/copy.md /workspace/pub/sub/copy.md",
        cwd,
      }),
    );
    expect(writes).toMatch(/^exit code 0/);
    expect(readFileSync(join(ws, "pub", "notes.txt"), "utf8")).toBe("readable\n");
    expect(readFileSync(join(ws, "pub", "sub", "copy.md"), "utf8")).toBe("readable\n");
  });
});
