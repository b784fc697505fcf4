// sandbox/executor/executor.js — the long-lived program inside a goal's container that
// carries out every built-in tool call, so that a call costs a frame on an open stream
// instead of a `docker exec` (~100 ms). Plain CommonJS for Debian bookworm's Node 18: no
// TypeScript, no dependencies. It is copied into the image (its hash is part of the
// image's recipe label) and started by the host with one `docker exec` session.
//
// Protocol: frames on stdin/stdout, each a 4-byte big-endian length and a UTF-8 JSON body.
//   host -> executor  {id, op, args}
//   executor -> host  {id, ok: true, result} | {id, ok: false, error: {code, message}}
// Frame id 0 is the executor's hello ({hello: "aido-executor", version, pid}). Several
// calls may be in flight; answers come back in completion order. stderr is diagnostics.

const fs = require("node:fs");
const fsp = require("node:fs/promises");
const path = require("node:path");
const { spawn } = require("node:child_process");
const { Worker, isMainThread, parentPort, workerData } = require("node:worker_threads");

const VERSION = 1;
const WORKSPACE = "/workspace";
const MAX_FRAME = 256 * 1024 * 1024;
const DEFAULT_OUTPUT_CAP = 1024 * 1024;
const DEFAULT_READ_BYTES = 256 * 1024;
const GLOB_MAX_RESULTS = 5000;
const WALK_MAX_ENTRIES = 200000;
const GREP_MAX_FILE = 20 * 1024 * 1024;
const GREP_TIMEOUT_MS = 30000;

class OpError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

function fail(code, message) {
  throw new OpError(code, message);
}

/** Map a Node fs error to a code the host understands, naming the path. */
function fsFail(e, p) {
  if (e instanceof OpError) throw e;
  const what = {
    ENOENT: ["not_found", "no such file or directory"],
    ENOTDIR: ["not_found", "a parent is not a directory"],
    EISDIR: ["invalid_input", "is a directory"],
    EACCES: ["permission_denied", "permission denied"],
    EPERM: ["permission_denied", "operation not permitted"],
    EROFS: ["permission_denied", "read-only file system"],
    ELOOP: ["invalid_input", "too many levels of symbolic links"],
    ENOSPC: ["io_error", "no space left on device"],
  }[e?.code];
  if (what) throw new OpError(what[0], `${p}: ${what[1]}`);
  throw new OpError("io_error", `${p}: ${e?.message ? e.message : String(e)}`);
}

function absolute(p) {
  if (typeof p !== "string" || p === "") fail("invalid_input", "path must be a non-empty string");
  if (p.includes("\0")) fail("invalid_input", "path contains a NUL byte");
  return path.posix.isAbsolute(p) ? p : path.posix.join(WORKSPACE, p);
}

// ---------------------------------------------------------------- realpath

/**
 * Canonical path with kernel semantics for the part that exists: each component is
 * looked up in turn, symlinks are followed where they are met (so "link/.." is the
 * parent of the link's target, as the kernel sees it), and once a component does not
 * exist the rest is appended with "." and ".." removed lexically.
 */
function realpathOf(input) {
  const queue = absolute(input)
    .split("/")
    .filter((c) => c !== "");
  let current = "/";
  let links = 0;
  let missing = false;
  while (queue.length > 0) {
    const comp = queue.shift();
    if (comp === ".") continue;
    if (comp === "..") {
      current = path.posix.dirname(current);
      continue;
    }
    const next = path.posix.join(current, comp);
    if (missing) {
      current = next;
      continue;
    }
    let st;
    try {
      st = fs.lstatSync(next);
    } catch {
      missing = true;
      current = next;
      continue;
    }
    if (st.isSymbolicLink()) {
      if (++links > 40) fail("invalid_input", `${input}: too many levels of symbolic links`);
      let target;
      try {
        target = fs.readlinkSync(next);
      } catch {
        // Replaced between lstat and readlink by a command running at the same time.
        fail("not_found", `${input}: changed while it was being resolved`);
      }
      if (target.startsWith("/")) current = "/";
      queue.unshift(...target.split("/").filter((c) => c !== ""));
      continue;
    }
    current = next;
  }
  return current;
}

// ---------------------------------------------------------------- anchored paths

// A file op called with `expect` (the canonical path the host judged) must act on exactly
// that path, even if a parallel command swaps a symlink in while the op runs. So the op
// never hands a path string to the kernel to resolve: it opens "/" and then each component
// of `expect` in turn with O_NOFOLLOW (| O_DIRECTORY for folders), each relative to the
// folder opened before it through /proc/self/fd/<fd>/<name>. A component that is now a
// symlink fails (ELOOP/ENOTDIR) and the op is refused; once a folder is open, renaming or
// replacing it cannot redirect what happens inside it.

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY } = fs.constants;

const fdPath = (fd, name) => (name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`);

function changed(expect, why) {
  return new OpError("path_changed", `${expect} changed after it was checked (${why}); refused`);
}

/** Components of a canonical absolute path; refuses anything that is not one. */
function components(expect) {
  if (typeof expect !== "string" || !expect.startsWith("/") || expect.includes("\0"))
    fail("invalid_input", "expect must be an absolute path");
  const parts = expect.split("/").filter((c) => c !== "");
  if (parts.some((c) => c === "." || c === "..")) fail("invalid_input", `expect ${expect} is not canonical`);
  return parts;
}

/**
 * Open the folder made of `parts` from "/", never following a symlink. With `create`,
 * missing folders are made (mkdir does not follow a symlink either). Returns the fd.
 */
function openDirNoFollow(parts, expect, create) {
  let fd = fs.openSync("/", O_RDONLY | O_DIRECTORY);
  try {
    for (const name of parts) {
      let next;
      try {
        next = fs.openSync(fdPath(fd, name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      } catch (e) {
        if (e.code === "ENOENT" && create) {
          try {
            fs.mkdirSync(fdPath(fd, name), 0o755);
          } catch (m) {
            if (m.code !== "EEXIST") throw m;
          }
          next = fs.openSync(fdPath(fd, name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        } else throw e;
      }
      fs.closeSync(fd);
      fd = next;
    }
    return fd;
  } catch (e) {
    fs.closeSync(fd);
    if (e.code === "ELOOP" || e.code === "ENOTDIR")
      throw changed(expect, `a symlink or file stands in the path`);
    fsFail(e, expect);
  }
}

/**
 * Before a file op: the path must still resolve to what the host judged. Returns the
 * parent folder's fd and the last component, for ops done through fdPath(dir, name).
 */
function anchorParent(a, create) {
  const p = absolute(a.path);
  const expect = a.expect;
  if (p !== expect) fail("invalid_input", `path ${p} is not the expected ${expect}`);
  const parts = components(expect);
  if (parts.length === 0) fail("invalid_input", "/ has no parent folder");
  const now = realpathOf(p);
  if (now !== expect) throw changed(expect, `it now resolves to ${now}`);
  const dir = openDirNoFollow(parts.slice(0, -1), expect, create);
  return { dir, name: parts[parts.length - 1], expect };
}

/** The whole path as an open folder (list, grep), after the same checks. */
function anchorDir(a) {
  const p = absolute(a.path);
  if (p !== a.expect) fail("invalid_input", `path ${p} is not the expected ${a.expect}`);
  const parts = components(a.expect);
  const now = realpathOf(p);
  if (now !== a.expect) throw changed(a.expect, `it now resolves to ${now}`);
  return openDirNoFollow(parts, a.expect, false);
}

/** lstat of the last component; a symlink there means the path changed. */
function lstatAnchored(at) {
  try {
    const st = fs.lstatSync(fdPath(at.dir, at.name));
    if (st.isSymbolicLink()) throw changed(at.expect, "it is now a symlink");
    return st;
  } catch (e) {
    if (e instanceof OpError) throw e;
    if (e.code === "ENOENT") return null;
    fsFail(e, at.expect);
  }
}

// ---------------------------------------------------------------- exec

/** Keeps the first and last `cap/2` bytes of a stream and counts what falls between. */
class Capture {
  constructor(cap) {
    this.headCap = Math.ceil(cap / 2);
    this.tailCap = cap - this.headCap;
    this.head = [];
    this.headLen = 0;
    this.tail = [];
    this.tailLen = 0;
    this.total = 0;
  }
  push(chunk) {
    this.total += chunk.length;
    if (this.headLen < this.headCap) {
      const take = Math.min(chunk.length, this.headCap - this.headLen);
      this.head.push(chunk.subarray(0, take));
      this.headLen += take;
      chunk = chunk.subarray(take);
    }
    if (chunk.length === 0 || this.tailCap === 0) return;
    this.tail.push(chunk);
    this.tailLen += chunk.length;
    while (this.tail.length > 1 && this.tailLen - this.tail[0].length >= this.tailCap) {
      this.tailLen -= this.tail.shift().length;
    }
  }
  get truncated() {
    return this.total > this.headLen + Math.min(this.tailLen, this.tailCap);
  }
  text() {
    const head = Buffer.concat(this.head).toString("utf8");
    let tail = Buffer.concat(this.tail);
    if (tail.length > this.tailCap) tail = tail.subarray(tail.length - this.tailCap);
    const omitted = this.total - this.headLen - tail.length;
    if (omitted <= 0) return head + tail.toString("utf8");
    return `${head}\n[... truncated ${omitted} bytes ...]\n${tail.toString("utf8")}`;
  }
}

const running = new Set();

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/**
 * Kill what finished calls left behind by leaving their process group (setsid, a
 * daemonising double fork): such a process is reparented to init (ppid 1) and is not the
 * container's main process (session 1). A group still owned by a running call is left to
 * that call. Without this, `setsid sleep 1000 &` outlives its call and the container.
 */
function killOrphans() {
  let names;
  try {
    names = fs.readdirSync("/proc");
  } catch {
    return;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === 1 || pid === process.pid) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue;
    }
    // After "comm)": state ppid pgrp session ...
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ppid = Number(f[1]);
    const pgrp = Number(f[2]);
    const session = Number(f[3]);
    if (ppid !== 1 || session === 1 || running.has(pgrp)) continue;
    killGroup(pgrp, "SIGKILL");
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

function readOomKills() {
  for (const f of ["/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"]) {
    try {
      const m = /oom_kill (\d+)/.exec(fs.readFileSync(f, "utf8"));
      if (m) return Number(m[1]);
    } catch {
      // not this cgroup layout
    }
  }
  return null;
}

function opExec(a) {
  const argv = Array.isArray(a.argv) && a.argv.length > 0 ? a.argv : null;
  if (!argv && typeof a.command !== "string") fail("invalid_input", "exec needs argv or command");
  const cwd = absolute(a.cwd || WORKSPACE);
  let cwdStat;
  try {
    cwdStat = fs.statSync(cwd);
  } catch (e) {
    fsFail(e, cwd);
  }
  if (!cwdStat.isDirectory()) fail("invalid_input", `${cwd}: cwd is not a directory`);
  const cap = a.maxOutputBytes > 0 ? a.maxOutputBytes : DEFAULT_OUTPUT_CAP;
  const [file, ...args] = argv || ["/bin/sh", "-c", a.command];
  const oomBefore = readOomKills();
  const started = Date.now();
  return new Promise((resolve) => {
    const out = new Capture(cap);
    const err = new Capture(cap);
    let child;
    try {
      child = spawn(file, args, {
        cwd,
        env: Object.assign({}, process.env, a.env || {}),
        detached: true,
        stdio: ["pipe", "pipe", "pipe"],
      });
    } catch (e) {
      resolve(spawnFailure(e, file, started));
      return;
    }
    let timedOut = false;
    let settled = false;
    const pid = child.pid;
    if (pid) {
      running.add(pid);
      // Prefer the command over the executor when the container runs out of memory.
      fs.writeFile(`/proc/${pid}/oom_score_adj`, "1000", () => {});
    }
    const timer =
      a.timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            if (pid) killGroup(pid, "SIGKILL");
          }, a.timeoutMs)
        : null;
    child.stdout.on("data", (c) => out.push(c));
    child.stderr.on("data", (c) => err.push(c));
    child.stdin.on("error", () => {});
    child.stdin.end(typeof a.stdin === "string" ? a.stdin : undefined);
    child.on("error", (e) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      resolve(spawnFailure(e, file, started));
    });
    let exitCode = null;
    let exitSignal = null;
    const finish = () => {
      if (settled) return;
      settled = true;
      const oomAfter = readOomKills();
      // Killed outright, or a shell reporting its child's SIGKILL (128 + 9), while the
      // container's OOM-kill counter went up.
      const killed = exitSignal === "SIGKILL" || exitCode === 137;
      const oomKilled =
        killed && !timedOut && oomBefore !== null && oomAfter !== null && oomAfter > oomBefore;
      let stderr = err.text();
      if (oomKilled) stderr += "\n[aido: the command was killed because the sandbox ran out of memory]\n";
      if (timedOut) stderr += `\n[aido: the command timed out after ${a.timeoutMs} ms and was killed]\n`;
      resolve({
        exitCode,
        signal: exitSignal,
        stdout: out.text(),
        stderr,
        timedOut,
        truncated: out.truncated || err.truncated,
        oomKilled,
        durationMs: Date.now() - started,
      });
    };
    child.on("exit", (code, signal) => {
      if (timer) clearTimeout(timer);
      exitCode = code;
      exitSignal = signal || null;
      // A call is one unit: whatever it left running in its process group goes with it.
      if (pid) {
        killGroup(pid, "SIGKILL");
        running.delete(pid);
      }
      killOrphans();
      // A process that left the group (setsid) may still hold the pipes: do not wait on it.
      setTimeout(() => {
        killOrphans();
        child.stdout.destroy();
        child.stderr.destroy();
        finish();
      }, 250).unref();
    });
    // "close" comes after "exit" once both pipes are drained and closed.
    child.on("close", finish);
  });
}

function spawnFailure(e, file, started) {
  return {
    exitCode: 127,
    signal: null,
    stdout: "",
    stderr: `${file}: ${e && e.code === "ENOENT" ? "command not found" : e?.message}\n`,
    timedOut: false,
    truncated: false,
    oomKilled: false,
    durationMs: Date.now() - started,
  };
}

// ---------------------------------------------------------------- files

function typeOf(st) {
  if (st.isSymbolicLink()) return "symlink";
  if (st.isDirectory()) return "dir";
  if (st.isFile()) return "file";
  return "other";
}

async function opRead(a) {
  const p = absolute(a.path);
  const skip = a.offset > 0 ? Math.floor(a.offset) : 0;
  const limit = a.limit > 0 ? Math.floor(a.limit) : Number.POSITIVE_INFINITY;
  const maxBytes = a.maxBytes > 0 ? a.maxBytes : DEFAULT_READ_BYTES;
  let fh;
  if (a.expect !== undefined) fh = await openExpected(a);
  else {
    try {
      fh = await fsp.open(p, "r");
    } catch (e) {
      fsFail(e, p);
    }
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) fail("invalid_input", `${p}: is a directory`);
    const buf = Buffer.alloc(1024 * 1024);
    const kept = [];
    let keptBytes = 0;
    let line = 0;
    let taken = 0;
    let truncated = false;
    let carry = Buffer.alloc(0);
    let pos = 0;
    // Line by line, stopping as soon as the window is full: a huge file costs its window.
    outer: for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      pos += bytesRead;
      const chunk = bytesRead === 0 ? carry : Buffer.concat([carry, buf.subarray(0, bytesRead)]);
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(10, start);
        if (nl < 0 && bytesRead > 0) break;
        const end = nl < 0 ? chunk.length : nl + 1;
        if (end > start) {
          if (line >= skip) {
            if (taken >= limit) {
              truncated = true;
              break outer;
            }
            const piece = chunk.subarray(start, end);
            if (keptBytes + piece.length > maxBytes) {
              kept.push(piece.subarray(0, maxBytes - keptBytes));
              keptBytes = maxBytes;
              truncated = true;
              break outer;
            }
            kept.push(piece);
            keptBytes += piece.length;
            taken++;
          }
          line++;
        }
        start = end;
        if (nl < 0) break outer;
      }
      carry = chunk.subarray(start);
      if (bytesRead === 0) break;
    }
    return { content: Buffer.concat(kept).toString("utf8"), truncated, size: st.size };
  } catch (e) {
    fsFail(e, p);
  } finally {
    await fh.close();
  }
}

/** Open `a.expect` for reading: anchored parent, O_NOFOLLOW on the file itself. */
async function openExpected(a) {
  const at = anchorParent(a, false);
  try {
    return await fsp.open(fdPath(at.dir, at.name), O_RDONLY | O_NOFOLLOW);
  } catch (e) {
    if (e.code === "ELOOP") throw changed(at.expect, "it is now a symlink");
    fsFail(e, at.expect);
  } finally {
    fs.closeSync(at.dir);
  }
}

/**
 * Atomic replace of `a.expect`: the temp file is created O_EXCL|O_NOFOLLOW in the anchored
 * parent folder and renamed over the name within that same folder (rename replaces a name,
 * it never follows one). Missing parent folders are made, each checked the same way.
 */
function writeExpected(a, data) {
  const at = anchorParent(a, true);
  try {
    const st = lstatAnchored(at);
    if (st?.isDirectory()) fail("invalid_input", `${at.expect}: is a directory`);
    const mode = st?.isFile() ? st.mode & 0o7777 : 0o644;
    const tmp = `.${at.name}.aido-${process.pid}-${Math.random().toString(36).slice(2)}.tmp`;
    let fd;
    try {
      fd = fs.openSync(fdPath(at.dir, tmp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fd = undefined;
      fs.renameSync(fdPath(at.dir, tmp), fdPath(at.dir, at.name));
    } catch (e) {
      if (fd !== undefined) fs.closeSync(fd);
      try {
        fs.unlinkSync(fdPath(at.dir, tmp));
      } catch {
        // never created, or already renamed
      }
      fsFail(e, at.expect);
    }
  } finally {
    fs.closeSync(at.dir);
  }
}

/** Atomic replace: a temp file in the same folder, fsync, rename over the target. */
async function writeAtomic(p, data, mode) {
  const dir = path.posix.dirname(p);
  const tmp = path.posix.join(
    dir,
    `.${path.posix.basename(p)}.aido-${process.pid}-${Math.random().toString(36).slice(2)}.tmp`,
  );
  let fh;
  try {
    fh = await fsp.open(tmp, "wx", mode);
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fsp.rename(tmp, p);
  } catch (e) {
    if (fh) await fh.close().catch(() => {});
    await fsp.unlink(tmp).catch(() => {});
    fsFail(e, p);
  }
}

async function existingMode(p) {
  try {
    const st = await fsp.lstat(p);
    if (st.isDirectory()) fail("invalid_input", `${p}: is a directory`);
    return st.isFile() ? st.mode & 0o7777 : 0o644;
  } catch (e) {
    if (e instanceof OpError) throw e;
    return 0o644;
  }
}

async function opWrite(a) {
  const p = absolute(a.path);
  if (typeof a.content !== "string") fail("invalid_input", "content must be a string");
  if (a.expect !== undefined) {
    const bytes = Buffer.from(a.content, "utf8");
    writeExpected(a, bytes);
    return { bytes: bytes.length };
  }
  const mode = await existingMode(p);
  try {
    await fsp.mkdir(path.posix.dirname(p), { recursive: true });
  } catch (e) {
    fsFail(e, path.posix.dirname(p));
  }
  const data = Buffer.from(a.content, "utf8");
  await writeAtomic(p, data, mode);
  return { bytes: data.length };
}

async function opEdit(a) {
  const p = absolute(a.path);
  if (typeof a.oldString !== "string" || a.oldString === "")
    fail("invalid_input", "old_string must be a non-empty string");
  if (typeof a.newString !== "string") fail("invalid_input", "new_string must be a string");
  if (a.oldString === a.newString) fail("invalid_input", "old_string and new_string are the same");
  const expected = a.expect !== undefined;
  const mode = expected ? 0 : await existingMode(p);
  let text;
  if (expected) {
    const fh = await openExpected(a);
    try {
      if ((await fh.stat()).isDirectory()) fail("invalid_input", `${p}: is a directory`);
      text = await fh.readFile("utf8");
    } catch (e) {
      fsFail(e, p);
    } finally {
      await fh.close();
    }
  } else {
    try {
      text = await fsp.readFile(p, "utf8");
    } catch (e) {
      fsFail(e, p);
    }
  }
  const parts = text.split(a.oldString);
  const count = parts.length - 1;
  if (count === 0) fail("invalid_input", `${p}: old_string not found`);
  if (count > 1 && !a.replaceAll) {
    fail("invalid_input", `${p}: old_string occurs ${count} times; give more context or set replace_all`);
  }
  let out;
  if (a.replaceAll) out = parts.join(a.newString);
  else {
    const at = text.indexOf(a.oldString);
    out = text.slice(0, at) + a.newString + text.slice(at + a.oldString.length);
  }
  if (expected) writeExpected(a, Buffer.from(out, "utf8"));
  else await writeAtomic(p, Buffer.from(out, "utf8"), mode);
  return { replacements: a.replaceAll ? count : 1 };
}

function listExpected(a) {
  const fd = anchorDir(a);
  try {
    const out = [];
    for (const name of fs.readdirSync(fdPath(fd)).sort()) {
      try {
        const st = fs.lstatSync(fdPath(fd, name));
        out.push({ name, type: typeOf(st), size: st.size });
      } catch {
        // vanished while listing
      }
    }
    return out;
  } catch (e) {
    fsFail(e, a.expect);
  } finally {
    fs.closeSync(fd);
  }
}

async function opList(a) {
  if (a.expect !== undefined) return listExpected(a);
  const p = absolute(a.path);
  let entries;
  try {
    entries = await fsp.readdir(p);
  } catch (e) {
    fsFail(e, p);
  }
  const out = [];
  for (const name of entries.sort()) {
    try {
      const st = await fsp.lstat(path.posix.join(p, name));
      out.push({ name, type: typeOf(st), size: st.size });
    } catch {
      // vanished while listing
    }
  }
  return out;
}

async function opStat(a) {
  const p = absolute(a.path);
  if (a.expect !== undefined) {
    let at;
    try {
      at = anchorParent(a, false);
    } catch (e) {
      if (e.code === "not_found") return null;
      throw e;
    }
    try {
      const st = lstatAnchored(at);
      return st && { path: p, type: typeOf(st), size: st.size, mode: st.mode & 0o7777, mtimeMs: st.mtimeMs };
    } finally {
      fs.closeSync(at.dir);
    }
  }
  try {
    const st = await fsp.lstat(p);
    return { path: p, type: typeOf(st), size: st.size, mode: st.mode & 0o7777, mtimeMs: st.mtimeMs };
  } catch (e) {
    if (e.code === "ENOENT" || e.code === "ENOTDIR") return null;
    fsFail(e, p);
  }
}

// ---------------------------------------------------------------- glob and grep

/** Glob to RegExp on "/" boundaries: * ? [..] {a,b} and ** (any depth, also none). */
function globToRegExp(glob) {
  return new RegExp(`^${globBody(glob)}$`);
}

function globBody(g) {
  let re = "";
  for (let i = 0; i < g.length; i++) {
    const c = g[i];
    if (c === "*") {
      if (g[i + 1] === "*") {
        while (g[i + 1] === "*") i++;
        if (g[i + 1] === "/") {
          re += "(?:.*/)?";
          i++;
        } else re += ".*";
      } else re += "[^/]*";
    } else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const close = g.indexOf("]", i + 2);
      if (close < 0) re += "\\[";
      else {
        let cls = g.slice(i + 1, close).replace(/\\/g, "\\\\");
        if (cls[0] === "!") cls = `^${cls.slice(1)}`;
        re += `(?!/)[${cls}]`;
        i = close;
      }
    } else if (c === "{") {
      let depth = 0;
      let j = i;
      for (; j < g.length; j++) {
        if (g[j] === "{") depth++;
        else if (g[j] === "}" && --depth === 0) break;
      }
      if (j >= g.length) re += "\\{";
      else {
        const alts = splitTopLevel(g.slice(i + 1, j));
        re += `(?:${alts.map(globBody).join("|")})`;
        i = j;
      }
    } else re += c.replace(/[.+^$()|\\\]}]/g, "\\$&");
  }
  return re;
}

function splitTopLevel(s) {
  const out = [];
  let depth = 0;
  let cur = "";
  for (const c of s) {
    if (c === "," && depth === 0) {
      out.push(cur);
      cur = "";
      continue;
    }
    if (c === "{") depth++;
    if (c === "}") depth--;
    cur += c;
  }
  out.push(cur);
  return out;
}

/** Depth-first walk that never follows a symlink; yields [absolute, relative, lstat]. */
function* walk(root) {
  const stack = [""];
  let seen = 0;
  while (stack.length > 0) {
    const rel = stack.pop();
    let names;
    try {
      names = fs.readdirSync(path.posix.join(root, rel)).sort().reverse();
    } catch {
      continue;
    }
    for (const name of names) {
      if (++seen > WALK_MAX_ENTRIES) return;
      const r = rel === "" ? name : `${rel}/${name}`;
      const abs = path.posix.join(root, r);
      let st;
      try {
        st = fs.lstatSync(abs);
      } catch {
        continue;
      }
      yield [abs, r, st];
      if (st.isDirectory()) stack.push(r);
    }
  }
}

function opGlob(a) {
  if (typeof a.pattern !== "string" || a.pattern === "")
    fail("invalid_input", "pattern must be a non-empty string");
  const isAbs = a.pattern.startsWith("/");
  const cwd = isAbs ? "/" : absolute(a.cwd || WORKSPACE);
  const pattern = isAbs ? a.pattern.slice(1) : a.pattern;
  // Walk only below the literal prefix of the pattern.
  const parts = pattern.split("/");
  const literal = [];
  while (parts.length > 1 && !/[*?[{]/.test(parts[0])) literal.push(parts.shift());
  const root = path.posix.join(cwd, ...literal);
  const re = globToRegExp(parts.join("/"));
  const out = [];
  for (const [abs, rel] of walk(root)) {
    if (re.test(rel)) {
      out.push(abs);
      if (out.length >= GLOB_MAX_RESULTS) break;
    }
  }
  return out.sort();
}

/** Read a file by name inside an open folder, never following a symlink. */
function readNoFollow(dirFd, name) {
  const fd = fs.openSync(fdPath(dirFd, name), O_RDONLY | O_NOFOLLOW);
  try {
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Open the folder `parts` below an open folder, each component with O_NOFOLLOW. */
function openUnder(baseFd, parts) {
  let fd = fs.openSync(fdPath(baseFd), O_RDONLY | O_DIRECTORY);
  try {
    for (const name of parts) {
      const next = fs.openSync(fdPath(fd, name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      fs.closeSync(fd);
      fd = next;
    }
    return fd;
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/**
 * walk() for an anchored root: each folder is opened from the root's fd component by
 * component with O_NOFOLLOW, and entries are looked at and read through that folder's fd,
 * so a folder swapped for a symlink mid-walk is skipped, never followed.
 * Yields [absolute, relative, lstat, read()].
 */
function* walkNoFollow(rootFd, root) {
  const stack = [""];
  let seen = 0;
  while (stack.length > 0) {
    const rel = stack.pop();
    let dirFd;
    try {
      dirFd = openUnder(rootFd, rel === "" ? [] : rel.split("/"));
    } catch {
      continue;
    }
    try {
      let names;
      try {
        names = fs.readdirSync(fdPath(dirFd)).sort().reverse();
      } catch {
        continue;
      }
      for (const name of names) {
        if (++seen > WALK_MAX_ENTRIES) return;
        const r = rel === "" ? name : `${rel}/${name}`;
        let st;
        try {
          st = fs.lstatSync(fdPath(dirFd, name));
        } catch {
          continue;
        }
        yield [path.posix.join(root, r), r, st, () => readNoFollow(dirFd, name)];
        if (st.isDirectory()) stack.push(r);
      }
    } finally {
      fs.closeSync(dirFd);
    }
  }
}

/** The files grep looks at, as [absolute, relative, lstat, read()]. */
function grepFiles(a) {
  const root = a.path;
  if (a.expect === undefined) {
    let st;
    try {
      st = fs.lstatSync(root);
    } catch (e) {
      fsFail(e, root);
    }
    const read = (abs) => () => fs.readFileSync(abs);
    if (!st.isDirectory()) return [[root, path.posix.basename(root), st, read(root)]];
    return (function* () {
      for (const [abs, rel, s] of walk(root)) yield [abs, rel, s, read(abs)];
    })();
  }
  if (a.expect === "/") {
    const fd = anchorDir(a);
    return (function* () {
      try {
        yield* walkNoFollow(fd, "/");
      } finally {
        fs.closeSync(fd);
      }
    })();
  }
  const at = anchorParent(a, false);
  let st;
  try {
    st = lstatAnchored(at);
    if (!st) throw new OpError("not_found", `${at.expect}: no such file or directory`);
    if (!st.isDirectory()) {
      const buf = st.isFile() ? readNoFollow(at.dir, at.name) : Buffer.alloc(0);
      return [[at.expect, at.name, st, () => buf]];
    }
  } catch (e) {
    if (e.code === "ELOOP") throw changed(at.expect, "it is now a symlink");
    fsFail(e, at.expect);
  } finally {
    fs.closeSync(at.dir);
  }
  const fd = anchorDir(a);
  return (function* () {
    try {
      yield* walkNoFollow(fd, at.expect);
    } finally {
      fs.closeSync(fd);
    }
  })();
}

/** Runs in a worker thread, so a pathological regex can be stopped by terminating it. */
function grepWork(a) {
  const re = new RegExp(a.pattern);
  const filter = a.glob ? globToRegExp(a.glob) : null;
  const onPath = a.glob ? a.glob.includes("/") : false;
  const max = a.maxMatches > 0 ? a.maxMatches : 500;
  const out = [];
  for (const [abs, rel, s, read] of grepFiles(a)) {
    if (!s.isFile() || s.size > GREP_MAX_FILE) continue;
    if (filter && !filter.test(onPath ? rel : path.posix.basename(rel))) continue;
    let buf;
    try {
      buf = read();
    } catch {
      continue;
    }
    if (buf.subarray(0, 8192).includes(0)) continue;
    const lines = buf.toString("utf8").split("\n");
    for (let i = 0; i < lines.length; i++) {
      if (re.test(lines[i])) {
        out.push({
          path: abs,
          line: i + 1,
          text: lines[i].length > 500 ? `${lines[i].slice(0, 500)}…` : lines[i],
        });
        if (out.length >= max) return out;
      }
    }
  }
  return out;
}

function opGrep(a) {
  if (typeof a.pattern !== "string" || a.pattern === "")
    fail("invalid_input", "pattern must be a non-empty string");
  try {
    new RegExp(a.pattern);
  } catch (e) {
    fail("invalid_input", `invalid regular expression: ${e.message}`);
  }
  const args = {
    pattern: a.pattern,
    path: absolute(a.path || WORKSPACE),
    glob: a.glob,
    maxMatches: a.maxMatches,
    expect: a.expect,
  };
  return new Promise((resolve, reject) => {
    const worker = new Worker(__filename, { workerData: args });
    const timeoutMs = a.timeoutMs > 0 ? a.timeoutMs : GREP_TIMEOUT_MS;
    const timer = setTimeout(() => {
      worker.terminate();
      reject(new OpError("timeout", `grep took longer than ${timeoutMs} ms and was stopped`));
    }, timeoutMs);
    worker.once("message", (m) => {
      clearTimeout(timer);
      worker.terminate();
      if (m.ok) resolve(m.result);
      else reject(new OpError(m.error.code, m.error.message));
    });
    worker.once("error", (e) => {
      clearTimeout(timer);
      reject(new OpError("io_error", `grep failed: ${e.message}`));
    });
  });
}

// ---------------------------------------------------------------- dispatch

const OPS = {
  ping: () => ({ pong: true, pid: process.pid }),
  exec: opExec,
  read: opRead,
  write: opWrite,
  edit: opEdit,
  list: opList,
  stat: opStat,
  glob: opGlob,
  grep: opGrep,
  realpath: (a) => realpathOf(a.path),
};

function send(msg) {
  const body = Buffer.from(JSON.stringify(msg), "utf8");
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length, 0);
  process.stdout.write(Buffer.concat([head, body]));
}

async function handle(frame) {
  let req;
  try {
    req = JSON.parse(frame.toString("utf8"));
  } catch {
    process.stderr.write("executor: dropped a frame that is not JSON\n");
    return;
  }
  const op = OPS[req.op];
  try {
    if (!op) fail("invalid_input", `unknown op ${JSON.stringify(req.op)}`);
    const result = await op(req.args || {});
    send({ id: req.id, ok: true, result: result === undefined ? null : result });
  } catch (e) {
    const error =
      e instanceof OpError
        ? { code: e.code, message: e.message }
        : { code: "io_error", message: String(e?.message) };
    send({ id: req.id, ok: false, error });
  }
}

function main() {
  let buf = Buffer.alloc(0);
  process.stdin.on("data", (chunk) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    while (buf.length >= 4) {
      const len = buf.readUInt32BE(0);
      if (len > MAX_FRAME) {
        process.stderr.write(`executor: frame of ${len} bytes is over the limit; exiting\n`);
        process.exit(2);
      }
      if (buf.length < 4 + len) break;
      const frame = buf.subarray(4, 4 + len);
      buf = buf.subarray(4 + len);
      handle(frame);
    }
  });
  // The host went away: take every running command with us.
  process.stdin.on("end", () => {
    for (const pid of running) killGroup(pid, "SIGKILL");
    process.exit(0);
  });
  process.on("uncaughtException", (e) => {
    process.stderr.write(`executor: ${e?.stack ? e.stack : e}\n`);
  });
  send({ id: 0, ok: true, result: { hello: "aido-executor", version: VERSION, pid: process.pid } });
}

if (isMainThread) main();
else {
  try {
    parentPort.postMessage({ ok: true, result: grepWork(workerData) });
  } catch (e) {
    const error =
      e instanceof OpError
        ? { code: e.code, message: e.message }
        : { code: "io_error", message: String(e?.message) };
    parentPort.postMessage({ ok: false, error });
  }
}
