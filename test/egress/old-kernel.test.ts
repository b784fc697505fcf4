// Egress on a kernel without Landlock TCP rules (ABI < 4), played as test/sandbox/
// no-landlock.test.ts plays a kernel without Landlock: a seccomp profile makes Landlock's
// syscalls fail with ENOSYS, so the helper reports ABI 0. An exec with a TCP rule then runs
// without it (an agent whose grants cover every mount runs unconfined there), and the
// backend says so once in the daemon's log. What still tells a goal's agents apart is the
// port the listener maps and the credentials the proxy checks.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EgressPlumbing } from "../../src/egress/plumbing.js";
import type { EgressCaller, EgressProxy } from "../../src/egress/types.js";
import { DockerBackend } from "../../src/sandbox/docker.js";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import type { Confinement } from "../../src/sandbox/types.js";
import { parseGrant } from "../../src/security/grants.js";
import { requireDocker } from "../support/docker.js";
import { makeTempHome, type TempHome } from "../support/home.js";

const NO_LANDLOCK = JSON.stringify({
  defaultAction: "SCMP_ACT_ALLOW",
  syscalls: [
    {
      names: ["landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self"],
      action: "SCMP_ACT_ERRNO",
      errnoRet: 38,
    },
  ],
});
const GOAL = "egress-old-kernel";
const net = [parseGrant("network: example.org")];

let home: TempHome;
let backend: DockerBackend;
let plumbing: EgressPlumbing;
let sb: DockerSandbox;
const logs: string[] = [];
const seen: EgressCaller[] = [];

const standIn: EgressProxy = {
  handle(stream, caller) {
    seen.push(caller);
    stream.end(`caller=${caller.agentId}\n`);
  },
  close: async () => {},
};

/** Grants covering every mount: without Landlock such an agent still runs commands. */
const wide: Confinement = {
  read: ["/workspace/**", "/output/**", "/inputs/**", "/skills/**"],
  write: ["/workspace/**", "/output/**"],
  deny: [],
  denyRead: [],
  denyWrite: [],
  tmp: "/tmp/agent-old",
  execute: true,
};

const TALK =
  "import socket, sys\ns = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)\nprint(s.recv(64).decode().strip())";

beforeAll(async () => {
  requireDocker();
  home = makeTempHome();
  backend = new DockerBackend(home.config, {
    labels: { "aido.test": "sandbox" },
    securityOpt: [`seccomp=${NO_LANDLOCK}`],
    log: (m) => logs.push(m),
  });
  plumbing = new EgressPlumbing({
    home: home.config.home,
    backend,
    proxy: () => standIn,
    unheldPort: () => {},
    log: () => {},
  });
  sb = await backend.acquire(GOAL, { egressShare: await plumbing.open(GOAL) });
}, 120_000);

afterAll(async () => {
  await plumbing?.closeAll();
  await backend?.removeAll();
  home?.cleanup();
});

describe("egress below Landlock ABI 4", () => {
  it("runs without the TCP rule, says so once, and the port still names the caller", async () => {
    const a = plumbing.access(GOAL, "agent-a", net);
    const b = plumbing.access(GOAL, "agent-b", net);
    if (!a || !b) throw new Error("no access");
    const relay = new URL(a.env.HTTP_PROXY as string).hostname;
    // B reaches A's port: no Landlock rule stops it here, so A's port says A, and the real
    // proxy refuses B's credentials there (407, test/egress/proxy.test.ts).
    const r = await sb.exec({
      argv: ["python3", "-c", TALK, relay, String(a.connect[0])],
      confinement: { ...wide, connect: b.connect },
    });
    expect(r.stdout.trim()).toBe("caller=agent-a");
    await sb.exec({ argv: ["true"], confinement: { ...wide, connect: b.connect } });
    expect(sb.landlockAbi).toBe(0);
    expect(logs.filter((l) => l.includes("TCP rules need ABI 4"))).toHaveLength(1);
  });
});
