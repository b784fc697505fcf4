// The executor's side of the path check: a file op called with `expect` (the canonical path
// the host judged) acts on exactly that path or refuses. These tests put the swap in place
// deterministically — a parent folder or the file itself replaced by a symlink after the
// host resolved it — and check that nothing is read from or written through the link.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isAidoError } from "../../src/errors.js";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import { makeSandboxFixture, type SandboxFixture } from "../sandbox/fixture.js";

let fx: SandboxFixture;
let sb: DockerSandbox;

beforeAll(async () => {
  fx = makeSandboxFixture();
  sb = await fx.backend.acquire("anchored-goal");
  // /workspace/p was judged as a real folder; then it became a symlink to /tmp/out.
  await sb.exec({
    confinement: "unconfined",
    command:
      "mkdir -p /tmp/out /workspace/p && printf secret > /tmp/out/s.txt && printf x > /workspace/p/s.txt && " +
      "mv /workspace/p /workspace/p.real && ln -s /tmp/out /workspace/p && ln -s /tmp/out/s.txt /workspace/f",
  });
});
afterAll(async () => {
  await fx?.cleanup();
});

const changed = (e: unknown) =>
  isAidoError(e, "capability_denied") && /changed after it was checked/.test(String(e));
const outside = async () =>
  (await sb.exec({ confinement: "unconfined", command: "ls -A /tmp/out; cat /tmp/out/s.txt" })).stdout;

describe("file ops with expect", () => {
  it("refuse to write, edit, read, list, stat or grep through a parent swapped for a symlink", async () => {
    const at = { expect: "/workspace/p/s.txt" };
    await expect(sb.writeFile("/workspace/p/s.txt", "pwned", at)).rejects.toSatisfy(changed);
    await expect(
      sb.writeFile("/workspace/p/new.txt", "pwned", { expect: "/workspace/p/new.txt" }),
    ).rejects.toSatisfy(changed);
    await expect(sb.editFile("/workspace/p/s.txt", "secret", "pwned", false, at)).rejects.toSatisfy(changed);
    await expect(sb.readFile("/workspace/p/s.txt", at)).rejects.toSatisfy(changed);
    await expect(sb.list("/workspace/p", { expect: "/workspace/p" })).rejects.toSatisfy(changed);
    await expect(sb.stat("/workspace/p/s.txt", at)).rejects.toSatisfy(changed);
    await expect(
      sb.grep("secret", "/workspace/p", undefined, undefined, { expect: "/workspace/p" }),
    ).rejects.toSatisfy(changed);
    expect(await outside()).toBe("s.txt\nsecret");
  });

  it("refuse a final component that is now a symlink", async () => {
    const at = { expect: "/workspace/f" };
    await expect(sb.readFile("/workspace/f", at)).rejects.toSatisfy(changed);
    await expect(sb.writeFile("/workspace/f", "pwned", at)).rejects.toSatisfy(changed);
    await expect(sb.grep("secret", "/workspace/f", undefined, undefined, at)).rejects.toSatisfy(changed);
    expect(await outside()).toBe("s.txt\nsecret");
  });

  it("grep skips a folder swapped for a symlink inside the tree instead of following it", async () => {
    await sb.exec({
      confinement: "unconfined",
      command: "mkdir -p /workspace/tree/sub && printf 'needle here\\n' > /workspace/tree/a.txt",
    });
    await sb.exec({
      confinement: "unconfined",
      command: "ln -s /tmp/out /workspace/tree/link && printf 'needle secret\\n' > /tmp/out/n.txt",
    });
    const hits = await sb.grep("needle", "/workspace/tree", undefined, undefined, {
      expect: "/workspace/tree",
    });
    expect(hits.map((h) => h.path)).toEqual(["/workspace/tree/a.txt"]);
  });

  it("act on the judged path when nothing changed, making missing folders", async () => {
    const path = "/workspace/fresh/deep/x.txt";
    expect(await sb.writeFile(path, "hello\n", { expect: path })).toEqual({ bytes: 6 });
    expect((await sb.readFile(path, { expect: path })).content).toBe("hello\n");
    expect(await sb.editFile(path, "hello", "bye", false, { expect: path })).toEqual({ replacements: 1 });
    expect(
      (await sb.list("/workspace/fresh/deep", { expect: "/workspace/fresh/deep" })).map((e) => e.name),
    ).toEqual(["x.txt"]);
    expect((await sb.stat(path, { expect: path }))?.type).toBe("file");
    expect(await sb.stat("/workspace/fresh/none", { expect: "/workspace/fresh/none" })).toBeNull();
    expect(
      await sb.grep("bye", "/workspace/fresh", undefined, undefined, { expect: "/workspace/fresh" }),
    ).toEqual([{ path, line: 1, text: "bye" }]);
  });

  it("refuse an expect that is not the path, or not canonical", async () => {
    await expect(sb.readFile("/workspace/a", { expect: "/workspace/b" })).rejects.toThrow(/not the expected/);
    await expect(
      sb.readFile("/workspace/../etc/passwd", { expect: "/workspace/../etc/passwd" }),
    ).rejects.toThrow(/not canonical/);
  });
});
