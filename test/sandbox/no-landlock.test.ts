// A kernel without Landlock, played honestly: the containers run with a seccomp profile
// that makes landlock_create_ruleset fail with ENOSYS, as a kernel without it does. The
// helper reports ABI 0; an agent whose grants are narrower than the goal's mounts (files it
// may not read or write there, or programs there it may not run) is refused exec with an
// error naming the kernel requirement (audited as the call's failure); an agent whose grants
// cover every mount runs as before. Without Landlock there is no reaper either: a call ends
// by its process group, and the orphan sweep kills what left the group — what a finished
// call left, never what a running call still owns.

import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AidoError } from "../../src/errors.js";
import { Runtime } from "../../src/kernel/runtime.js";
import { DockerBackend } from "../../src/sandbox/docker.js";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import { requireDocker } from "../support/docker.js";
import { makeTempHome, type TempHome } from "../support/home.js";

/** Everything allowed but Landlock's three syscalls, which answer ENOSYS. */
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

let home: TempHome;
let rt: Runtime;

beforeAll(async () => {
  requireDocker();
  home = makeTempHome({ AIDO_MODEL: "anthropic/claude-test", ANTHROPIC_API_KEY: "sk-ant-unused" });
  home.config.policy.snapshotBeforeMutation = false;
  const backend = new DockerBackend(home.config, {
    labels: { "aido.test": "sandbox" },
    securityOpt: [`seccomp=${NO_LANDLOCK}`],
  });
  rt = await Runtime.open(home.config, { backend });
}, 180_000);
afterAll(async () => {
  await rt?.close();
  home?.cleanup();
});

const spawn = (name: string, capabilities: string[]) => {
  const s = rt.spawnAgent({
    name,
    system_prompt: "no landlock",
    capabilities,
    budget: { max_tokens: 10_000 },
  });
  return { id: s.agent_id, goalId: rt.registry.require(s.agent_id).goalId };
};
const call = (agentId: string, command: string) =>
  rt.invokeTool(agentId, "exec", { command }).catch((e: unknown) => e as AidoError);

describe("exec on a kernel without Landlock", () => {
  it("refuses an agent whose grants are narrower than the mounts, naming the kernel requirement", async () => {
    const narrow = spawn("narrow", [
      "tool: exec",
      "file_read: /workspace",
      "file_read: /workspace/public/**",
      "exec: echo *",
    ]);
    const r = await call(narrow.id, "echo should-not-run");
    expect(r).toBeInstanceOf(AidoError);
    const e = r as AidoError;
    expect(e.code).toBe("sandbox_unavailable");
    expect(e.message).toMatch(
      /exec needs Landlock \(Linux 5\.13 or later with landlock among the active LSMs\)/,
    );
    expect(e.message).toMatch(/sandbox\.landlock: off/);
    const sandbox = (await rt.backend.acquire(narrow.goalId)) as DockerSandbox;
    expect(sandbox.landlockAbi).toBe(0);
    const failed = rt.audit.query({ agent_id: narrow.id, kind: "tool.failed" });
    expect(failed.map((f) => (f.payload as { code?: string }).code)).toContain("sandbox_unavailable");
  });

  it("runs an agent whose grants cover every mount, may run programs there, and that nothing is denied", async () => {
    const files = [
      "tool: exec",
      "file_read: /workspace/**",
      "file_read: /output/**",
      "file_read: /inputs/**",
      "file_read: /skills/**",
      "file_write: /workspace/**",
      "file_write: /output/**",
    ];
    const full = spawn("full", [...files, "exec: echo *", "exec: /workspace/bin/*"]);
    const r = await call(full.id, "echo ran");
    expect(r).not.toBeInstanceOf(AidoError);
    expect((r as { output: string }).output).toContain("ran");
    // Whose grants name no program in the goal's folders: Landlock would keep it from running
    // what it writes there, and there is none to do it.
    const noExecute = spawn("no-execute", [...files, "exec: echo *"]);
    const refused = await call(noExecute.id, "echo should-not-run");
    expect((refused as AidoError).code).toBe("sandbox_unavailable");
    expect((refused as AidoError).message).toMatch(/programs there it may not run/);
  });

  it("sweeps what a finished call left, and leaves a running call's orphans to it", async () => {
    const full = spawn("sweeper", [
      "tool: exec",
      "file_read: /workspace/**",
      "file_read: /output/**",
      "file_read: /inputs/**",
      "file_read: /skills/**",
      "file_write: /workspace/**",
      "file_write: /output/**",
      "exec: python3 *",
      "exec: ps *",
      "exec: /workspace/bin/*",
    ]);
    // The first call's orphan (its own session, its parent gone) writes only once the second
    // call has ended and been swept (the test then drops go from the host); the first call
    // waits for that write.
    const ws = join(home.config.goalsDir, full.goalId, "workspace");
    const first = call(
      full.id,
      `python3 -c "${[
        "import os,time",
        "wait=lambda p: [time.sleep(0.02) for _ in range(1000) if not os.path.exists(p)]",
        "if os.fork() == 0:",
        "    if os.fork() == 0:",
        "        os.setsid(); open('/workspace/ready','w').close(); wait('/workspace/go')",
        "        open('/workspace/late','w').write('still here')",
        "    os._exit(0)",
        "wait('/workspace/late')",
      ].join("\n")}"`,
    );
    for (let i = 0; i < 500 && !existsSync(join(ws, "ready")); i++)
      await new Promise((r) => setTimeout(r, 20));
    const second = await call(
      full.id,
      `python3 -c "${["import os", "if os.fork() == 0:", "    os.setsid(); os.execvp('sleep', ['sleep', '107'])"].join("\n")}"`,
    );
    writeFileSync(join(ws, "go"), "");
    expect(second).not.toBeInstanceOf(AidoError);
    expect((await first) as unknown).not.toBeInstanceOf(AidoError);
    const after = await call(full.id, "python3 -c \"print(open('/workspace/late').read())\"; ps -eo args");
    expect((after as { output: string }).output).toContain("still here");
    expect((after as { output: string }).output).not.toContain("sleep 107");
  });
});
