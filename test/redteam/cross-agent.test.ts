// Red team: what one agent's commands can see of another's in the same goal (they share the
// container and its uid). This pins the documented boundary (docs/security.md, "What
// remains") exactly, so the test fails if it moves either way.
//   Holds (Landlock's ptrace and signal scoping, abstract-socket scoping): a child cannot
//   read the environment, working folder, root or open files of its parent's running
//   command through /proc (it can list its descriptor numbers, not what they are), cannot
//   signal it, and cannot connect to its abstract unix socket.
//   Does not hold: /proc/<pid>/cmdline needs no ptrace right, so the child reads the command
//   line of the parent's command (and whatever its model wrote into it: never put a secret
//   in a command line); a unix socket bound by path — even in the parent's private temp
//   folder, 0700 but the same uid — accepts the child's connect(2), which Landlock (ABI <= 7)
//   does not guard; and so does a TCP port on the shared loopback, until the egress issue
//   adds Landlock TCP rules. Hiding command lines would need hidepid, which same-uid
//   processes pass, and the program's own argv (python3 -c "...") holds them anyway.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseManifestValue } from "../../src/manifest/load.js";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import { expectOk, noSnapshots, useBench } from "./fixture.js";

const b = useBench(noSnapshots);

/** A parent that may do anything in /workspace and a child that may only run python3 there. */
async function family(name: string): Promise<{ parent: string; child: string; running(): Promise<void> }> {
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
  const up = join(b.home.config.goalsDir, parent.goalId, "workspace", "up");
  const running = async () => {
    for (let i = 0; i < 500 && !existsSync(up); i++) await sleep(20);
  };
  return { parent: parent.id, child: child.id, running };
}

const py = (lines: string[]) => ({ command: `python3 -c "${lines.join("\n")}"` });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("a child agent and its parent's running command", () => {
  it("reads its command line, and nothing else of it through /proc; cannot signal it", async () => {
    const f = await family("procs");
    const running = b.call(f.parent, "exec", {
      command:
        'cd /workspace && MARK=env-7373 python3 -c \'import time; open("up", "w"); time.sleep(3) # db password: hunter2-4711\'',
    });
    await f.running();
    const spy = expectOk(
      await b.call(
        f.child,
        "exec",
        py([
          "import os,signal",
          "for p in os.listdir('/proc'):",
          "    if not p.isdigit(): continue",
          "    try: cmd=open('/proc/'+p+'/cmdline','rb').read()",
          "    except OSError: continue",
          // (split, so that this command's own command line does not match)
          "    if b'hun'+b'ter2' not in cmd or int(p) == os.getpid(): continue",
          "    print('cmdline', cmd.split(b'#')[1].split(b'\\x27')[0].strip(b' \\0').decode())",
          "    def t(what, f):",
          "        try: f(); print(what, 'ok')",
          "        except OSError as e: print(what, e.errno)",
          "    d='/proc/'+p+'/'",
          "    t('environ', lambda: open(d+'environ').read())",
          "    t('cwd', lambda: os.listdir(d+'cwd'))",
          "    t('root', lambda: os.listdir(d+'root'))",
          "    t('fd-list', lambda: os.listdir(d+'fd'))",
          "    t('fd-link', lambda: os.readlink(d+'fd/0'))",
          "    t('fd-open', lambda: open(d+'fd/1', 'w'))",
          "    t('kill', lambda: os.kill(int(p), signal.SIGKILL))",
        ]),
      ),
    );
    expect(expectOk(await running).isError).toBe(false); // it ran to its end
    // Every process of that command (its shell, the helper, python3) shows the same.
    expect(spy.output).toContain(
      "cmdline db password: hunter2-4711\nenviron 13\ncwd 13\nroot 13\nfd-list ok\nfd-link 13\nfd-open 13\nkill 1\n",
    );
    expect(spy.output).not.toContain("env-7373");
  });

  it("can connect to a unix socket the parent bound by path, and to its loopback port, not to its abstract socket", async () => {
    const f = await family("sockets");
    const tmp = `/tmp/agent-${f.parent}`;
    const server = b.call(
      f.parent,
      "exec",
      py([
        "import os,socket,threading",
        "def serve(s, what):",
        "    s.listen(); s.settimeout(3)",
        "    try: c,_=s.accept(); c.send(what)",
        "    except OSError: pass",
        "u=socket.socket(socket.AF_UNIX); u.bind(os.environ['TMPDIR']+'/agent.sock')",
        "a=socket.socket(socket.AF_UNIX); a.bind('\\0parent-abstract')",
        "t=socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(('127.0.0.1', 47011))",
        "ts=[threading.Thread(target=serve, args=x) for x in [(u, b'by-path'), (a, b'abstract'), (t, b'loopback')]]",
        "[x.start() for x in ts]; open('/workspace/up', 'w'); [x.join() for x in ts]",
      ]),
    );
    await f.running();
    const client = expectOk(
      await b.call(
        f.child,
        "exec",
        py([
          "import socket",
          "def get(family, addr):",
          "    s=socket.socket(family)",
          "    try: s.connect(addr); return s.recv(100).decode()",
          "    except OSError as e: return 'refused %d' % e.errno",
          `print(get(socket.AF_UNIX, '${tmp}/agent.sock'), get(socket.AF_UNIX, '\\0parent-abstract'), get(socket.AF_INET, ('127.0.0.1', 47011)))`,
        ]),
      ),
    );
    await server;
    expect(client.output).toContain("by-path refused 1 loopback");
  });
});
