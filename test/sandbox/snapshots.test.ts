// Snapshots of a goal's workspace on the host: content, folders, modes, owners and links
// come back exactly; links are never followed; only what changed is read or rewritten.

import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isAidoError } from "../../src/errors.js";
import { SnapshotStore } from "../../src/sandbox/snapshots.js";
import { makeTempHome, type TempHome } from "../support/home.js";

let home: TempHome;
let ws: string;
let out: string;
let roots: { workspace: string; output: string };
let outside: string;
let store: SnapshotStore;
const goal = "g1";

beforeEach(() => {
  home = makeTempHome();
  ws = join(home.config.goalsDir, goal, "workspace");
  out = join(home.config.goalsDir, goal, "output");
  roots = { workspace: ws, output: out };
  mkdirSync(out, { recursive: true });
  outside = join(home.dir, "host-secrets");
  mkdirSync(join(ws, "src", "lib"), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(outside, "secret"), "host secret\n");
  writeFileSync(join(ws, "README.md"), "hello\n");
  writeFileSync(join(ws, "src", "main.py"), "print(1)\n");
  writeFileSync(join(ws, "src", "lib", "util.py"), "x = 1\n");
  store = new SnapshotStore({ goalsDir: home.config.goalsDir, maxMb: 1024 });
});
afterEach(() => home.cleanup());

const read = (rel: string) => readFileSync(join(ws, rel), "utf8");
const packsDir = () => join(home.config.goalsDir, goal, "snapshots", "packs");

/** Every stored content, read by the pack indexes: "AIDOIDX1", then sha256, offset, length rows. */
const storedContents = () => {
  const out: { pack: string; offset: number; length: number; text: string }[] = [];
  if (!existsSync(packsDir())) return out;
  for (const name of readdirSync(packsDir()).filter((n) => n.endsWith(".idx"))) {
    const pack = name.slice(0, -4);
    const idx = readFileSync(join(packsDir(), name));
    const data = readFileSync(join(packsDir(), `${pack}.pack`));
    for (let at = 8; at < idx.length; at += 48) {
      const offset = Number(idx.readBigUInt64LE(at + 32));
      const length = Number(idx.readBigUInt64LE(at + 40));
      out.push({ pack, offset, length, text: data.subarray(offset, offset + length).toString("utf8") });
    }
  }
  return out;
};
const blobContents = () => storedContents().map((b) => b.text);

describe("SnapshotStore", () => {
  it("restores changed, deleted and new files, folders and modes exactly", async () => {
    chmodSync(join(ws, "src", "main.py"), 0o750);
    const snap = await store.create(goal, roots, "before");
    expect(snap).toMatchObject({ files: 3, changed: 3 });

    writeFileSync(join(ws, "README.md"), "changed\n");
    rmSync(join(ws, "src", "lib"), { recursive: true });
    writeFileSync(join(ws, "new.txt"), "new\n");
    mkdirSync(join(ws, "newdir", "deep"), { recursive: true });
    chmodSync(join(ws, "src", "main.py"), 0o600);

    const result = await store.restore(goal, roots, snap.id);
    expect(result.files_failed).toEqual([]);
    expect(read("README.md")).toBe("hello\n");
    expect(read("src/lib/util.py")).toBe("x = 1\n");
    expect(existsSync(join(ws, "new.txt"))).toBe(false);
    expect(existsSync(join(ws, "newdir"))).toBe(false);
    expect(statSync(join(ws, "src", "main.py")).mode & 0o777).toBe(0o750);
    // README, lib, lib/util.py, new.txt, newdir, newdir/deep, main.py mode
    expect(result.files_restored).toBe(7);
  });

  it("rewrites only files that differ: an unchanged file keeps its inode", async () => {
    const snap = await store.create(goal, roots);
    const ino = statSync(join(ws, "src", "main.py")).ino;
    writeFileSync(join(ws, "README.md"), "changed\n");
    const result = await store.restore(goal, roots, snap.id);
    expect(result).toEqual({ files_restored: 1, files_failed: [] });
    expect(statSync(join(ws, "src", "main.py")).ino).toBe(ino);
  });

  it("reads only changed files on an incremental snapshot, and counts deletions", async () => {
    await store.create(goal, roots);
    writeFileSync(join(ws, "README.md"), "changed\n");
    rmSync(join(ws, "src", "lib", "util.py"));
    const second = await store.create(goal, roots);
    expect(second).toMatchObject({ files: 2, changed: 2 });
  });

  it("keeps one intact blob per content when files and snapshots repeat it, and files of any size whole", async () => {
    const big = "0123456789abcdef".repeat(70_000); // over one 1 MiB read
    writeFileSync(join(ws, "copy.md"), "hello\n"); // same content as README.md
    writeFileSync(join(ws, "big.bin"), big);
    writeFileSync(join(ws, "empty"), "");
    const first = await store.create(goal, roots);
    rmSync(join(home.config.goalsDir, goal, "snapshots", "stat-index.bin")); // forget stats: read all again
    await store.create(goal, roots);
    const blobs = blobContents();
    expect(blobs.filter((b) => b === "hello\n")).toHaveLength(1);
    expect(blobs.filter((b) => b === big)).toHaveLength(1);
    writeFileSync(join(ws, "big.bin"), "small now");
    rmSync(join(ws, "empty"));
    await store.restore(goal, roots, first.id);
    expect(read("big.bin")).toBe(big);
    expect(read("empty")).toBe("");
    expect(read("copy.md")).toBe("hello\n");
  });

  it("sees a change whose mtime was set back with touch -d (ctime cannot be forged)", async () => {
    const file = join(ws, "README.md");
    const before = statSync(file);
    const snap = await store.create(goal, roots);
    writeFileSync(file, "HELLO\n"); // same size
    utimesSync(file, before.atime, before.mtime);
    const second = await store.create(goal, roots);
    expect(second.changed).toBe(1);
    const result = await store.restore(goal, roots, snap.id);
    expect(result.files_restored).toBe(1);
    expect(read("README.md")).toBe("hello\n");
  });

  it("snapshots a symlink to /etc/passwd as a link and never copies what it points at", async () => {
    symlinkSync("/etc/passwd", join(ws, "passwd-link"));
    symlinkSync(join(outside, "secret"), join(ws, "secret-link"));
    const snap = await store.create(goal, roots);
    expect(blobContents().some((c) => c.includes("host secret") || c.includes("root:"))).toBe(false);
    rmSync(join(ws, "passwd-link"));
    rmSync(join(ws, "secret-link"));
    writeFileSync(join(ws, "secret-link"), "now a file\n");
    await store.restore(goal, roots, snap.id);
    expect(readlinkSync(join(ws, "passwd-link"))).toBe("/etc/passwd");
    expect(lstatSync(join(ws, "secret-link")).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(outside, "secret"), "utf8")).toBe("host secret\n");
  });

  it("never writes through a symlink the container put where a file was", async () => {
    const snap = await store.create(goal, roots);
    rmSync(join(ws, "README.md"));
    symlinkSync(join(outside, "secret"), join(ws, "README.md"));
    const result = await store.restore(goal, roots, snap.id);
    expect(result.files_failed).toEqual([]);
    expect(readFileSync(join(outside, "secret"), "utf8")).toBe("host secret\n");
    expect(lstatSync(join(ws, "README.md")).isFile()).toBe(true);
    expect(read("README.md")).toBe("hello\n");
  });

  it("never writes into a host folder the container linked in place of a workspace folder", async () => {
    const snap = await store.create(goal, roots);
    rmSync(join(ws, "src"), { recursive: true });
    symlinkSync(outside, join(ws, "src"));
    await store.restore(goal, roots, snap.id);
    expect(readdirSync(outside)).toEqual(["secret"]);
    expect(lstatSync(join(ws, "src")).isDirectory()).toBe(true);
    expect(read("src/lib/util.py")).toBe("x = 1\n");
  });

  it("does not copy host files reached through a linked folder when snapshotting", async () => {
    symlinkSync(outside, join(ws, "escape"));
    const snap = await store.create(goal, roots);
    expect(snap.files).toBe(3);
    expect(blobContents().some((c) => c.includes("host secret"))).toBe(false);
  });

  it("preserves the container user's uid and gid on restore", async () => {
    chownSync(join(ws, "README.md"), 1000, 1000);
    chownSync(join(ws, "src"), 1000, 1000);
    const snap = await store.create(goal, roots);
    rmSync(join(ws, "README.md"));
    chownSync(join(ws, "src"), 0, 0);
    await store.restore(goal, roots, snap.id);
    expect(statSync(join(ws, "README.md"))).toMatchObject({ uid: 1000, gid: 1000 });
    expect(statSync(join(ws, "src"))).toMatchObject({ uid: 1000, gid: 1000 });
  });

  it("reports a file it cannot restore with the reason, and restores the rest", async () => {
    const snap = await store.create(goal, roots);
    writeFileSync(join(ws, "README.md"), "changed\n");
    writeFileSync(join(ws, "src", "main.py"), "changed\n");
    // damage the stored copy of README.md's content, same length
    const hello = storedContents().find((b) => b.text === "hello\n")!;
    const file = join(packsDir(), `${hello.pack}.pack`);
    const data = readFileSync(file);
    data.write("junk!\n", hello.offset, "utf8");
    writeFileSync(file, data);
    const result = await store.restore(goal, roots, snap.id);
    expect(result.files_failed).toEqual([
      { path: "/workspace/README.md", reason: expect.stringContaining("damaged") },
    ]);
    expect(read("README.md")).toBe("changed\n");
    expect(read("src/main.py")).toBe("print(1)\n");
    expect(readdirSync(ws).filter((n) => n.startsWith(".aido-restore"))).toEqual([]);
  });

  it("restores a snapshot whose contents span two packs", async () => {
    await store.create(goal, roots);
    writeFileSync(join(ws, "src", "main.py"), "print(2)\n");
    writeFileSync(join(ws, "new.txt"), "new\n");
    const second = await store.create(goal, roots);
    const packs = new Set(storedContents().map((b) => b.pack));
    expect(packs.size).toBe(2);
    // the second pack holds only what the second snapshot saw first
    expect(storedContents().filter((b) => b.pack.startsWith(second.id))).toHaveLength(2);
    rmSync(join(ws, "src"), { recursive: true });
    rmSync(join(ws, "README.md"));
    rmSync(join(ws, "new.txt"));
    const result = await store.restore(goal, roots, second.id);
    expect(result.files_failed).toEqual([]);
    expect(read("README.md")).toBe("hello\n"); // from the first pack
    expect(read("src/lib/util.py")).toBe("x = 1\n"); // from the first pack
    expect(read("src/main.py")).toBe("print(2)\n"); // from the second
    expect(read("new.txt")).toBe("new\n"); // from the second
  });

  it("reports files in a torn pack as failed with the reason, and never writes what is missing", async () => {
    writeFileSync(join(ws, "big.bin"), "B".repeat(300_000));
    const snap = await store.create(goal, roots);
    // contents go into the pack in path order: README.md, big.bin, src/lib/util.py, src/main.py
    const big = storedContents().find((b) => b.length === 300_000)!;
    truncateSync(join(packsDir(), `${big.pack}.pack`), big.offset + 1000); // torn inside big.bin
    writeFileSync(join(ws, "big.bin"), "current\n");
    rmSync(join(ws, "README.md"));
    rmSync(join(ws, "src"), { recursive: true });
    const result = await store.restore(goal, roots, snap.id);
    expect(result.files_failed.map((f) => f.path).sort()).toEqual([
      "/workspace/big.bin",
      "/workspace/src/lib/util.py",
      "/workspace/src/main.py",
    ]);
    for (const f of result.files_failed) expect(f.reason).toMatch(/damaged: pack snap_\w+ ends at byte \d+/);
    expect(read("README.md")).toBe("hello\n"); // stored before the cut
    expect(read("big.bin")).toBe("current\n"); // left as it was, not half-restored
    expect(existsSync(join(ws, "src", "main.py"))).toBe(false);
    expect(existsSync(join(ws, "src", "lib", "util.py"))).toBe(false);
    expect(readdirSync(join(ws, "src", "lib"))).toEqual([]);
    expect(readdirSync(ws).filter((n) => n.startsWith(".aido-restore"))).toEqual([]);
  });

  it("stores a content repeated within one snapshot once, also when it is larger than the write buffer", async () => {
    const big = "0123456789abcdef".repeat(330_000); // 5.3 MB: past one 4 MiB buffered pack write
    writeFileSync(join(ws, "a.bin"), big);
    writeFileSync(join(ws, "b.bin"), big);
    writeFileSync(join(ws, "c.txt"), "after the duplicate\n");
    writeFileSync(join(ws, "d.txt"), "after the duplicate\n"); // a small repeat, within the buffer
    const snap = await store.create(goal, roots);
    expect(blobContents().filter((b) => b === big)).toHaveLength(1);
    const packs = readdirSync(packsDir()).filter((n) => n.endsWith(".pack"));
    const stored = storedContents().reduce((n, b) => n + b.length, 0);
    expect(statSync(join(packsDir(), packs[0]!)).size).toBe(stored); // no bytes of the dropped copy left
    for (const f of ["a.bin", "b.bin", "c.txt", "d.txt"]) rmSync(join(ws, f));
    expect((await store.restore(goal, roots, snap.id)).files_failed).toEqual([]);
    expect(read("b.bin")).toBe(big);
    expect(read("d.txt")).toBe("after the duplicate\n");
  });

  it("clears what a snapshot that crashed before its index left behind, and keeps committed packs", async () => {
    const snap = await store.create(goal, roots);
    writeFileSync(join(packsDir(), ".tmp-crashed"), "half a pack");
    writeFileSync(join(packsDir(), ".tmp-1-live"), "a pack pid 1 is still writing");
    writeFileSync(join(packsDir(), "snap_crashed1.pack"), "a pack whose index never landed");
    writeFileSync(join(packsDir(), "snap_inflight1.pack"), "renamed just now, its index comes next");
    const hourAgo = new Date(Date.now() - 3600_000);
    utimesSync(join(packsDir(), "snap_crashed1.pack"), hourAgo, hourAgo);
    writeFileSync(join(ws, "README.md"), "changed\n");
    await store.create(goal, roots);
    const names = readdirSync(packsDir());
    expect(names.filter((n) => n.includes("crashed"))).toEqual([]);
    expect(names).toContain("snap_inflight1.pack"); // may belong to a snapshot still running
    expect(names).toContain(".tmp-1-live"); // its writer is alive
    expect(names.filter((n) => n.endsWith(".idx"))).toHaveLength(2);
    await store.restore(goal, roots, snap.id);
    expect(read("README.md")).toBe("hello\n");
  });

  it("treats a damaged stat index as empty: every file is read again, nothing is skipped wrongly", async () => {
    const statIndex = join(home.config.goalsDir, goal, "snapshots", "stat-index.bin");
    await store.create(goal, roots);
    const intact = readFileSync(statIndex);
    for (const damaged of [intact.subarray(0, intact.length - 7), Buffer.from("junk"), Buffer.alloc(0)]) {
      writeFileSync(statIndex, damaged);
      const again = await store.create(goal, roots);
      expect(again.changed).toBe(3); // all re-read
    }
    writeFileSync(join(ws, "README.md"), "after\n");
    expect((await store.create(goal, roots)).changed).toBe(1); // the rewritten index is used again
  });

  it("refuses a manifest path that escapes the workspace", async () => {
    const snap = await store.create(goal, roots);
    const file = join(home.config.goalsDir, goal, "snapshots", "manifests", `${snap.id}.json`);
    const m = JSON.parse(readFileSync(file, "utf8"));
    m.entries.push({ ...m.entries.find((e: { t: string }) => e.t === "file"), p: "../../evil" });
    writeFileSync(file, JSON.stringify(m));
    await expect(store.restore(goal, roots, snap.id)).rejects.toThrow(/escapes/);
    expect(existsSync(join(home.config.goalsDir, "evil"))).toBe(false);
  });

  it("lists snapshots with labels, and names unknown or malformed ids", async () => {
    const a = await store.create(goal, roots, "first");
    const b = await store.create(goal, roots);
    const list = await store.list(goal);
    expect(list.map((s) => [s.id, s.label])).toEqual([
      [a.id, "first"],
      [b.id, undefined],
    ]);
    await expect(store.restore(goal, roots, "snap_zzzzzzzz")).rejects.toSatisfy((e) =>
      isAidoError(e, "not_found"),
    );
    await expect(store.restore(goal, roots, "../../x")).rejects.toSatisfy((e) =>
      isAidoError(e, "invalid_input"),
    );
    expect(await store.list("other")).toEqual([]);
  });
});

describe("SnapshotStore over /workspace and /output", () => {
  it("covers /output as well: a changed, deleted or new output file is brought back", async () => {
    mkdirSync(join(out, "report"), { recursive: true });
    writeFileSync(join(out, "report", "final.md"), "v1\n");
    writeFileSync(join(out, "keep.txt"), "keep\n");
    const snap = await store.create(goal, roots);
    expect(snap.files).toBe(5);
    writeFileSync(join(out, "report", "final.md"), "v2\n");
    rmSync(join(out, "keep.txt"));
    writeFileSync(join(out, "stray.txt"), "stray\n");
    const r = await store.restore(goal, roots, snap.id);
    expect(r.files_failed).toEqual([]);
    expect(readFileSync(join(out, "report", "final.md"), "utf8")).toBe("v1\n");
    expect(readFileSync(join(out, "keep.txt"), "utf8")).toBe("keep\n");
    expect(existsSync(join(out, "stray.txt"))).toBe(false);
  });

  it("never brings back setuid or setgid bits, on files or folders, whoever owns them", async () => {
    writeFileSync(join(ws, "suid"), "#!/bin/sh\nid\n");
    chownSync(join(ws, "suid"), 1000, 1000);
    chmodSync(join(ws, "suid"), 0o6755);
    mkdirSync(join(out, "shared"));
    chmodSync(join(out, "shared"), 0o2775);
    chmodSync(join(ws, "src"), 0o1777); // sticky is not a privilege: it stays
    const snap = await store.create(goal, roots);
    writeFileSync(join(ws, "suid"), "changed\n");
    chmodSync(join(out, "shared"), 0o755);
    chmodSync(join(ws, "src"), 0o755);
    expect((await store.restore(goal, roots, snap.id)).files_failed).toEqual([]);
    expect(readFileSync(join(ws, "suid"), "utf8")).toBe("#!/bin/sh\nid\n");
    expect(statSync(join(ws, "suid")).mode & 0o7777).toBe(0o755);
    expect(statSync(join(out, "shared")).mode & 0o7777).toBe(0o775);
    expect(statSync(join(ws, "src")).mode & 0o7777).toBe(0o1777);
    // A bit set after the snapshot on an unchanged file goes too: the restored mode is the snapshot's, without it.
    chmodSync(join(ws, "suid"), 0o4755);
    await store.restore(goal, roots, snap.id);
    expect(statSync(join(ws, "suid")).mode & 0o7777).toBe(0o755);
  });

  it("leaves every path the permit refuses as it is, reports it as refused, and restores the rest", async () => {
    mkdirSync(join(ws, "secret"));
    writeFileSync(join(ws, "secret", "k.txt"), "key v1\n");
    writeFileSync(join(out, "o.txt"), "o v1\n");
    const snap = await store.create(goal, roots);
    writeFileSync(join(ws, "README.md"), "changed\n");
    writeFileSync(join(ws, "secret", "k.txt"), "key v2\n");
    writeFileSync(join(ws, "secret", "new.txt"), "new\n");
    writeFileSync(join(out, "o.txt"), "o v2\n");
    const asked: string[] = [];
    const permit = (path: string) => {
      asked.push(path);
      return path.startsWith("/workspace/secret") || path.startsWith("/output/")
        ? `no grant for ${path}`
        : undefined;
    };
    const r = await store.restore(goal, roots, snap.id, permit);
    expect(r.files_restored).toBe(1);
    expect(r.files_failed.sort((a, b) => a.path.localeCompare(b.path))).toEqual([
      { path: "/output/o.txt", reason: "no grant for /output/o.txt", refused: true },
      { path: "/workspace/secret/k.txt", reason: "no grant for /workspace/secret/k.txt", refused: true },
      { path: "/workspace/secret/new.txt", reason: "no grant for /workspace/secret/new.txt", refused: true },
    ]);
    expect(read("README.md")).toBe("hello\n");
    expect(read("secret/k.txt")).toBe("key v2\n");
    expect(read("secret/new.txt")).toBe("new\n");
    expect(readFileSync(join(out, "o.txt"), "utf8")).toBe("o v2\n");
    // Only paths that would change are asked about.
    expect(asked.sort()).toEqual([
      "/output/o.txt",
      "/workspace/README.md",
      "/workspace/secret/k.txt",
      "/workspace/secret/new.txt",
    ]);
  });

  it("restores a snapshot made before /output was covered without touching /output", async () => {
    writeFileSync(join(out, "o.txt"), "output now\n");
    const snap = await store.create(goal, roots);
    const file = join(home.config.goalsDir, goal, "snapshots", "manifests", `${snap.id}.json`);
    const m = JSON.parse(readFileSync(file, "utf8"));
    const v2 = {
      ...m,
      version: 2,
      roots: undefined,
      entries: m.entries
        .filter((e: { p: string }) => e.p.startsWith("workspace/"))
        .map((e: { p: string }) => ({ ...e, p: e.p.slice("workspace/".length) })),
    };
    writeFileSync(file, JSON.stringify(v2));
    writeFileSync(join(ws, "README.md"), "changed\n");
    writeFileSync(join(out, "later.txt"), "written after\n");
    expect((await store.restore(goal, roots, snap.id)).files_failed).toEqual([]);
    expect(read("README.md")).toBe("hello\n");
    expect(readFileSync(join(out, "later.txt"), "utf8")).toBe("written after\n");
  });
});
