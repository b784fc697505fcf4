// OPEN (red team): what one agent's commands can see of another's in the same goal (they
// share the container). Landlock's ptrace scoping closes another domain's /proc/<pid>/fd,
// cwd, root, environ and mem, and its scoping closes signals and abstract unix sockets; but
// /proc is readable, and /proc/<pid>/cmdline needs no ptrace right: a child agent reads the
// command lines of its parent's running commands, with whatever the parent's model wrote into
// them. And a unix socket that a parent's program binds in its private temp folder ($TMPDIR,
// where programs put their sockets) can be connected to by path from any domain: Landlock
// (ABI <= 7) does not guard connect(2) on a path, only making the socket file.
// Not fixed here: both need the exec helper or the container's /proc (hidepid, or a /proc
// rule for the command's own processes only; a Landlock version with a unix-connect right,
// or a seccomp rule on connect to AF_UNIX paths), which are in the image.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseManifestValue } from "../../src/manifest/load.js";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import { type Bench, expectOk, openBench } from "./fixture.js";

let b: Bench;
beforeAll(async () => {
  b = await openBench({}, (c) => {
    c.policy.snapshotBeforeMutation = false;
  });
}, 180_000);
afterAll(async () => {
  await b?.close();
});

/** A parent that may do anything in /workspace and a child that may only run python3 there. */
async function family(name: string): Promise<{ parent: string; child: string }> {
  const parent = b.agent(name, [
    "tool: exec",
    "file_read: /workspace/**",
    "file_write: /workspace/**",
    "exec: python3 *",
    "spawn_child: [*]",
  ]);
  await ((await b.rt.backend.acquire(parent.goalId)) as DockerSandbox).ready();
  const child = b.rt.spawner.spawn({
    goalId: parent.goalId,
    manifest: parseManifestValue(
      {
        name: `${name}-child`,
        system_prompt: "x",
        capabilities: ["tool: exec", "file_read: /workspace/**", "exec: python3 *"],
      },
      "test",
    ),
    parent: b.rt.registry.require(parent.id),
  });
  return { parent: parent.id, child: child.id };
}

const py = (code: string) => ({ command: `python3 -c "${code}"` });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("a child agent and its parent's running commands", () => {
  it("cannot read the command line of the parent's command", async () => {
    const f = await family("cmdline");
    const running = b.call(f.parent, "exec", py("import time; time.sleep(3) # db password: hunter2-4711"));
    await sleep(1000);
    const spy = expectOk(
      await b.call(
        f.child,
        "exec",
        py(
          "import os\nfor p in os.listdir('/proc'):\n    if p.isdigit():\n        try: print(open('/proc/'+p+'/cmdline','rb').read())\n        except OSError: pass",
        ),
      ),
    );
    await running;
    expect(spy.output).not.toContain("hunter2-4711");
  });

  it("cannot connect to a unix socket the parent's program bound in its private temp folder", async () => {
    const f = await family("socket");
    const server = b.call(
      f.parent,
      "exec",
      py(
        "import os,socket; s=socket.socket(socket.AF_UNIX); s.bind(os.environ['TMPDIR']+'/agent.sock'); s.listen(); s.settimeout(4)\ntry:\n    c,_=s.accept(); c.send(b'parent-only-6060')\nexcept OSError: pass",
      ),
    );
    await sleep(1000);
    const tmp = `/tmp/agent-${f.parent}`;
    const client = expectOk(
      await b.call(
        f.child,
        "exec",
        py(
          `import socket; s=socket.socket(socket.AF_UNIX)\ntry:\n    s.connect('${tmp}/agent.sock'); print('got', s.recv(100))\nexcept OSError as e: print('refused', e)`,
        ),
      ),
    );
    await server;
    expect(client.output).not.toContain("parent-only-6060");
  });
});
