// A human sandbox's task and the Unix sockets in its inputs. A read-only bind does not stop
// connect(2) to a socket in it, and the task runs as the person's uid, so an input holding
// an ssh-agent's, a D-Bus bus's or the Docker engine's socket gave an AI-written script the
// host's services. Here the host's side is this test's own listeners (stream, datagram) in an input
// folder: by default the task reaches neither by any way an attacker would try (a plain
// connect, a datagram socketpair's sendto, an int argument with high bits set, the x32
// syscall ABI), and they see nothing; `permissions.unix_sockets: allow` lets it reach them.
// A normal task (files, pipes, a stream socketpair, python's multiprocessing) still runs.

import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeProject, type Project } from "./fixture.js";

let p: Project;
let server: Server;
const received: string[] = [];
let connections = 0;
/** The host's datagram socket (python3: node has no Unix datagram sockets) and what it got. */
let dgram: ChildProcess | undefined;
const datagrams: string[] = [];

const PROBE = `
import ctypes, os, socket, sys
SOCK = "/inputs/hostsock/host.sock"
libc = ctypes.CDLL(None, use_errno=True)
def attempt(name, f):
    try:
        f()
        print(name, "ok")
    except OSError as e:
        print(name, "refused", e.errno)
def plain():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    s.connect(SOCK)
    s.sendall(b"from-task")
    s.close()
def dgram_pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.sendto(b"from-task-dgram", "/inputs/hostsock/host.dgram")
def raw(nr, domain):
    def go():
        fd = libc.syscall(ctypes.c_long(nr), ctypes.c_long(domain), ctypes.c_long(1), ctypes.c_long(0))
        if fd < 0:
            raise OSError(ctypes.get_errno(), "syscall")
        s = socket.socket(fileno=fd)
        s.connect(SOCK)
        s.sendall(b"from-task-raw")
        s.close()
    return go
attempt("connect", plain)
attempt("dgram-socketpair", dgram_pair)
attempt("high-bits", raw(41, 0x100000001))
attempt("x32", raw(0x40000000 | 41, 1))
`;

const NORMAL = `
import multiprocessing, os, socket
def square(x):
    return x * x
if __name__ == "__main__":
    with multiprocessing.Pool(2) as pool:
        print("pool", pool.map(square, [1, 2, 3]))
    a, b = socket.socketpair()
    a.sendall(b"pair")
    print("socketpair", b.recv(4).decode())
    r, w = os.pipe()
    os.write(w, b"pipe")
    print("pipe", os.read(r, 4).decode())
    os.makedirs("/workspace/out", exist_ok=True)
    open("/workspace/out/done.txt", "w").write("done")
    print("file", open("/workspace/out/done.txt").read())
`;

beforeAll(async () => {
  p = await makeProject();
  const dir = join(p.dir, "hostsock");
  mkdirSync(dir);
  server = createServer((c) => {
    connections++;
    c.on("data", (d) => received.push(d.toString()));
  });
  const path = join(dir, "host.sock");
  await new Promise<void>((resolve) => server.listen(path, resolve));
  // The task runs as the person's uid; here (root) as 1000, which needs write on the socket.
  chmodSync(path, 0o777);
  const dgramPath = join(dir, "host.dgram");
  const child = spawn(
    "python3",
    [
      "-u",
      "-c",
      `import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o777)
print("ready")
while True:
    print(s.recv(100).decode())`,
      dgramPath,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  dgram = child;
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (d: Buffer) => {
      for (const line of d.toString().split("\n").filter(Boolean)) {
        if (line === "ready") resolve();
        else datagrams.push(line);
      }
    });
    child.on("exit", () => reject(new Error("the host's datagram listener ended")));
  });
  p.write("probe.py", PROBE);
  p.write("normal.py", NORMAL);
});
afterAll(async () => {
  dgram?.kill();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await p?.cleanup();
});

function sandboxFolder(id: string): string {
  return join(p.dir, ".aido", "sandboxes", id);
}

describe("unix sockets in a human sandbox", () => {
  it("are refused to the task by default: the host's listener sees no connection", async () => {
    p.write("sandbox.yaml", ["inputs: [hostsock]", "outputs: [out/done.txt]"].join("\n"));
    const up = await p.aido("sandbox", "up", "--json");
    expect(up.code, up.err.join("\n")).toBe(0);
    const run = await p.aido("run", "probe.py");
    expect(run.code, run.err.join("\n")).toBe(0);
    expect(run.out).toEqual([
      "connect refused 13",
      "dgram-socketpair refused 13",
      "high-bits refused 13",
      "x32 refused 1",
    ]);
    await new Promise((r) => setTimeout(r, 200));
    expect(connections).toBe(0);
    expect(received).toEqual([]);
    expect(datagrams).toEqual([]);

    const box = up.json<{ id: string; unix_sockets: string }>();
    expect(box.unix_sockets).toBe("deny");
    expect(up.err.join("\n")).toMatch(/unix sockets: refused to the script/);
    const record = JSON.parse(readFileSync(join(sandboxFolder(box.id), "sandbox.json"), "utf8"));
    expect(record.permissions.unix_sockets).toBe("deny");
    const created = readFileSync(join(sandboxFolder(box.id), "events.log"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .find((e) => e.event === "created");
    expect(created.unix_sockets).toBe("deny");
    expect((await p.aido("sandbox", "destroy")).code).toBe(0);
  });

  it("leave a normal task alone: files, pipes, a stream socketpair, multiprocessing", async () => {
    const up = await p.aido("sandbox", "up");
    expect(up.code, up.err.join("\n")).toBe(0);
    const normal = await p.aido("run", "normal.py");
    expect(normal.code, normal.err.join("\n")).toBe(0);
    expect(normal.out).toEqual(["pool [1, 4, 9]", "socketpair pair", "pipe pipe", "file done"]);
    expect(p.read("out/done.txt")).toBe("done");
    expect((await p.aido("sandbox", "destroy")).code).toBe(0);
  });

  it("reach the host's listener with permissions.unix_sockets: allow, a warning recorded", async () => {
    p.write("allow.yaml", ["inputs: [hostsock]", "permissions: { unix_sockets: allow }"].join("\n"));
    const up = await p.aido("sandbox", "up", "-f", "allow.yaml", "--json");
    expect(up.code, up.err.join("\n")).toBe(0);
    const box = up.json<{ id: string; unix_sockets: string }>();
    expect(box.unix_sockets).toBe("allow");
    const events = readFileSync(join(sandboxFolder(box.id), "events.log"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(events.find((e) => e.event === "created").unix_sockets).toBe("allow");
    expect(events).toContainEqual(
      expect.objectContaining({ event: "warning", flag: "permissions.unix_sockets" }),
    );

    const run = await p.aido("run", "probe.py");
    expect(run.code, run.err.join("\n")).toBe(0);
    expect(run.out.slice(0, 2)).toEqual(["connect ok", "dgram-socketpair ok"]);
    await new Promise((r) => setTimeout(r, 200));
    expect(connections).toBeGreaterThanOrEqual(1);
    expect(received.join("")).toContain("from-task");
    expect(datagrams).toContain("from-task-dgram");
    expect((await p.aido("sandbox", "destroy")).code).toBe(0);
  });

  it("refuses to run in a sandbox whose record predates the choice (its helper may not refuse them)", async () => {
    const up = await p.aido("sandbox", "up", "--json");
    expect(up.code, up.err.join("\n")).toBe(0);
    const file = join(sandboxFolder(up.json<{ id: string }>().id), "sandbox.json");
    const record = JSON.parse(readFileSync(file, "utf8"));
    delete record.permissions.unix_sockets;
    writeFileSync(file, JSON.stringify(record));
    const before = connections;
    const run = await p.aido("run", "probe.py");
    expect(run.code).not.toBe(0);
    expect(run.err.join("\n")).toMatch(/was made before a script was refused Unix sockets/);
    expect(run.out).toEqual([]);
    expect(connections).toBe(before);
    expect((await p.aido("sandbox", "destroy")).code).toBe(0);
  });

  it("refuses a bad value at up, naming the key and its line", async () => {
    p.write("bad.yaml", ["inputs: [hostsock]", "permissions:", "  unix_sockets: yes"].join("\n"));
    const up = await p.aido("sandbox", "up", "-f", "bad.yaml");
    expect(up.code).toBe(2);
    expect(up.err.join("\n")).toMatch(/bad\.yaml:3: permissions\.unix_sockets: must be "deny" .* or "allow"/);
  });
});
