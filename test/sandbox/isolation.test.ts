// The container as an attacker sees it from inside: no network, no root, no writable
// system files, no capabilities, read-only inputs and skills, and limits that stop fork
// and memory bombs without taking the sandbox down for the next call.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import { bridgeGateway } from "../support/docker.js";
import { makeSandboxFixture, type SandboxFixture } from "./fixture.js";

let fx: SandboxFixture;
let sb: DockerSandbox;
let gateway: string;
let skills: string;

beforeAll(async () => {
  skills = mkdtempSync(join(tmpdir(), "aido-skills-"));
  mkdirSync(join(skills, "demo"));
  // A valid skill: only what the skills registry discovers is mounted at /skills.
  writeFileSync(join(skills, "demo", "SKILL.md"), DEMO_SKILL);
  const input = join(skills, "input.txt");
  writeFileSync(input, "handed in\n");
  fx = makeSandboxFixture((c) => {
    c.skillsDirs = [skills];
    c.sandbox.pids = 64;
    c.sandbox.memoryMb = 256;
  });
  sb = await fx.backend.acquire("iso-goal", { inputs: [input] });
  gateway = bridgeGateway();
});
afterAll(async () => {
  await fx?.cleanup();
  if (skills) rmSync(skills, { recursive: true, force: true });
});

const connect = (host: string, port: number): string =>
  `python3 -c "import socket; s=socket.socket(); s.settimeout(3); s.connect(('${host}', ${port})); print('CONNECTED')"`;

const DEMO_SKILL = "---\nname: demo\ndescription: A demo skill for the isolation tests.\n---\n# demo\n";

describe("network", () => {
  it("cannot open a socket to a public address", async () => {
    const r = await sb.exec({ confinement: "unconfined", command: connect("1.1.1.1", 53) });
    expect(r.stdout).not.toContain("CONNECTED");
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/unreachable|OSError/i);
  });

  it("cannot reach the Docker bridge gateway (the host)", async () => {
    const r = await sb.exec({ confinement: "unconfined", command: connect(gateway, 2375) });
    expect(r.stdout).not.toContain("CONNECTED");
    expect(r.exitCode).not.toBe(0);
  });

  it("has only a loopback interface", async () => {
    const r = await sb.exec({
      confinement: "unconfined",
      command: "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '",
    });
    expect(r.stdout.trim().split("\n")).toEqual(["lo"]);
  });
});

describe("privileges", () => {
  it("runs as uid 1000 with no capabilities and no way to gain them", async () => {
    expect((await sb.exec({ confinement: "unconfined", argv: ["id", "-u"] })).stdout).toBe("1000\n");
    const status = (
      await sb.exec({
        confinement: "unconfined",
        command: "grep -E '^(CapEff|CapPrm|NoNewPrivs)' /proc/self/status",
      })
    ).stdout;
    expect(status).toMatch(/CapPrm:\s+0000000000000000/);
    expect(status).toMatch(/CapEff:\s+0000000000000000/);
    expect(status).toMatch(/NoNewPrivs:\s+1/);
  });

  it("cannot write the root filesystem, but can write /workspace, /output and /tmp", async () => {
    const ro = await sb.exec({
      confinement: "unconfined",
      command: "touch /etc/evil || touch /usr/bin/evil || echo x > /opt/aido/executor.js",
    });
    expect(ro.exitCode).not.toBe(0);
    expect(ro.stderr).toMatch(/Read-only file system|Permission denied/);
    const rw = await sb.exec({
      confinement: "unconfined",
      command: "touch /workspace/ok /output/ok /tmp/ok && echo fine",
    });
    expect(rw.stdout).toBe("fine\n");
  });

  it("sees inputs and skills read-only", async () => {
    expect((await sb.readFile("/inputs/input.txt")).content).toBe("handed in\n");
    expect((await sb.readFile("/skills/demo/SKILL.md")).content).toBe(DEMO_SKILL);
    const w = await sb.exec({
      confinement: "unconfined",
      command: "echo x > /inputs/input.txt; echo y > /skills/demo/SKILL.md",
    });
    expect(w.stderr).toMatch(/Read-only file system/);
    await expect(sb.writeFile("/inputs/new.txt", "x")).rejects.toThrow(/read-only|permission/i);
  });
});

describe("limits", () => {
  it("stops a fork bomb at the pids limit and stays usable", async () => {
    const r = await sb.exec({
      confinement: "unconfined",
      command: "bomb() { bomb | bomb & }; bomb; sleep 2",
      timeoutMs: 4000,
    });
    expect(r.exitCode === 0 && !r.timedOut && r.stderr === "").toBe(false);
    const after = await sb.exec({ confinement: "unconfined", argv: ["echo", "still here"] });
    expect(after.stdout).toBe("still here\n");
    const left = await sb.exec({ confinement: "unconfined", command: "ps -e --no-headers | wc -l" });
    expect(Number(left.stdout.trim())).toBeLessThan(10);
  });

  it("kills a memory bomb with a clear out-of-memory error and stays usable", async () => {
    const r = await sb.exec({
      confinement: "unconfined",
      command: "python3 -c \"b = bytearray(b'x') * (1024 * 1024 * 1024)\"",
      timeoutMs: 30_000,
    });
    expect(r.exitCode).not.toBe(0);
    expect({
      oomKilled: r.oomKilled,
      signal: r.signal,
      exitCode: r.exitCode,
      timedOut: r.timedOut,
      stderr: r.stderr.slice(-300),
    }).toMatchObject({ oomKilled: true });
    expect(r.stderr).toMatch(/out of memory/);
    expect((await sb.exec({ confinement: "unconfined", argv: ["echo", "alive"] })).stdout).toBe("alive\n");
  });

  it("caps /tmp at the configured size", async () => {
    const r = await sb.exec({
      confinement: "unconfined",
      command: "df -m /tmp | tail -1 | awk '{print $2}'",
    });
    expect(Number(r.stdout.trim())).toBeLessThanOrEqual(fx.config.sandbox.tmpfsMb);
  });
});
