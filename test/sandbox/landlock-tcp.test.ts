// The second wall of egress (issue 13, item 3): aido-landlock --tcp-connect lets a command
// connect over TCP to the given ports only (Landlock ABI >= 4), and the executor passes an
// agent's Confinement.connect as that option. Each probe binds and listens on a loopback
// port itself (binding is not restricted) and then tries to connect to it, so no server
// has to outlive a call: a refused connect is EACCES (13), an allowed one succeeds.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import type { Confinement, ExecResult } from "../../src/sandbox/types.js";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

let fx: SandboxFixture;
let sb: DockerSandbox;

const HELPER = "/opt/aido/aido-landlock";
const SYSTEM = ["--read", "/usr", "--read", "/etc", "--write-file", "/dev/null"];
/** Listen on each port given, connect to it, print `port:ok` or `port:<errno>`. */
const PROBE = [
  "import socket, sys",
  "out = []",
  "for p in map(int, sys.argv[1:]):",
  "    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)",
  "    l.bind(('127.0.0.1', p)); l.listen()",
  "    try:",
  "        socket.create_connection(('127.0.0.1', p), timeout=2); out.append(f'{p}:ok')",
  "    except OSError as e:",
  "        out.append(f'{p}:{e.errno}')",
  "print(' '.join(out))",
].join("\n");
const probe = (ports: number[]) => ["python3", "-c", PROBE, ...ports.map(String)];

const helper = (args: string[]): Promise<ExecResult> =>
  sb.exec({ argv: [HELPER, ...args], confinement: "unconfined" });

const agent: Confinement = {
  read: ["/workspace/**"],
  write: ["/workspace/**"],
  deny: [],
  denyRead: [],
  denyWrite: [],
  tmp: "/tmp/agent-tcp",
  execute: false,
};

beforeAll(async () => {
  fx = makeSandboxFixture();
  sb = await fx.backend.acquire("tcp-goal");
});
afterAll(async () => {
  await fx?.cleanup();
});

describe("aido-landlock --tcp-connect", () => {
  it("lets a confined command connect to the given ports and to no other (EACCES)", async () => {
    const r = await helper([...SYSTEM, "--tcp-connect", "3130,3131", "--", ...probe([3130, 3131, 3132, 80])]);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("3130:ok 3131:ok 3132:13 80:13");
  });

  it("with none, refuses every TCP connect", async () => {
    const r = await helper([...SYSTEM, "--tcp-connect", "none", "--", ...probe([3130, 8080])]);
    expect(r.stdout.trim()).toBe("3130:13 8080:13");
  });

  it("without the option, leaves TCP alone (a container on no network)", async () => {
    const r = await helper([...SYSTEM, "--", ...probe([3130, 8080])]);
    expect(r.stdout.trim()).toBe("3130:ok 8080:ok");
  });

  it("restricts an unconfined command too, reaper or not, and leaves its files alone", async () => {
    for (const reap of [[], ["--reap"]]) {
      const r = await helper([
        "--unconfined",
        ...reap,
        "--tcp-connect",
        "3133",
        "--",
        "/bin/dash",
        "-c",
        `mkdir -p /workspace/a /workspace/b && echo x > /workspace/a/f && mv /workspace/a/f /workspace/b/f && echo moved; python3 -c "$0" 3133 3134`,
        PROBE,
      ]);
      expect(r.stdout).toBe("moved\n3133:ok 3134:13\n");
    }
  });

  it("holds through a program the command starts, which cannot lift it", async () => {
    const r = await helper([
      ...SYSTEM,
      "--read-file",
      HELPER,
      "--tcp-connect",
      "3135",
      "--",
      HELPER,
      ...SYSTEM,
      "--tcp-connect",
      "3135,3136",
      "--",
      ...probe([3135, 3136]),
    ]);
    expect(r.stdout.trim()).toBe("3135:ok 3136:13");
  });

  it.each([
    [["--tcp-connect", "0", "--", "true"], /--tcp-connect needs ports 1-65535 or none, got "0"/],
    [["--tcp-connect", "65536", "--", "true"], /needs ports 1-65535 or none/],
    [["--tcp-connect", "80,", "--", "true"], /needs ports 1-65535 or none, got "80,"/],
    [["--tcp-connect", "http", "--", "true"], /needs ports 1-65535 or none/],
    [["--tcp-connect", "80", "--tcp-connect", "443", "--", "true"], /--tcp-connect is given once/],
    [
      ["--tcp-connect", Array.from({ length: 17 }, (_, i) => 1000 + i).join(","), "--", "true"],
      /at most 16 ports/,
    ],
  ])("refuses %j with exit 2 and a message", async (args, message) => {
    const r = await helper(args);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});

describe("the executor's Confinement.connect", () => {
  it("runs an agent's exec with its relay port only", async () => {
    const r = await sb.exec({ argv: probe([3128, 3129]), confinement: { ...agent, connect: [3128] } });
    expect(r.stdout.trim()).toBe("3128:ok 3129:13");
  });

  it("gives an agent without a port no TCP connect at all", async () => {
    const r = await sb.exec({ argv: probe([3128, 3129]), confinement: { ...agent, connect: [] } });
    expect(r.stdout.trim()).toBe("3128:13 3129:13");
  });

  it("leaves TCP alone when the confinement names no ports", async () => {
    const r = await sb.exec({ argv: probe([3128]), confinement: agent });
    expect(r.stdout.trim()).toBe("3128:ok");
  });

  it("refuses a confinement whose ports are not ports", async () => {
    await expect(sb.exec({ argv: ["true"], confinement: { ...agent, connect: [0] } })).rejects.toThrow(
      /confinement.connect must be a list of TCP ports/,
    );
  });
});

describe("the executor's connect for an unconfined exec (a human sandbox on its egress network)", () => {
  it("holds an unconfined exec to the given port, its files untouched", async () => {
    const write =
      "open('/workspace/unconfined-tcp', 'w').write('x'); print(open('/workspace/unconfined-tcp').read())";
    const r = await sb.exec({
      argv: ["python3", "-c", `${PROBE}\n${write}`, "3128", "3129"],
      confinement: "unconfined",
      connect: [3128],
    });
    expect(r.stdout.trim()).toBe("3128:ok 3129:13\nx");
  });

  it("leaves TCP alone for an unconfined exec without connect", async () => {
    const r = await sb.exec({ argv: probe([3129]), confinement: "unconfined" });
    expect(r.stdout.trim()).toBe("3129:ok");
  });

  it("refuses ports that are not ports", async () => {
    await expect(sb.exec({ argv: ["true"], confinement: "unconfined", connect: [70000] })).rejects.toThrow(
      /connect must be a list of TCP ports/,
    );
  });
});
