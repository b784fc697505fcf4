// Red team through the agent loop: a model (the scripted provider, behind the real SDK)
// holding issue 10's narrow grants tries to read a secret with interpreters, to plant files,
// to reach the executor through /proc, ptrace and signals, and to read below a folder with
// grep; a broader agent tries what the operator denied. Every tool result the model gets
// back shows the wall it hit (a permission error from inside the Landlock domain, or the
// grep/file_list view narrowed) and neither secret.

import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import { turn } from "../support/provider-server.js";
import { expectDenied, useBench } from "./fixture.js";
import {
  type Attack,
  BROAD_ATTACKS,
  BROAD_GRANTS,
  DENY_RULE,
  leaked,
  plantWorkspace,
  SPY_FILE_ATTACKS,
  SPY_GRANTS,
  spyExecAttacks,
} from "./landlock-attacks.js";

const b = useBench((c) => {
  c.policy.deny.push(DENY_RULE);
  c.policy.snapshotBeforeMutation = false;
});

/** An agent with `grants` whose workspace holds the planted files, its executor started. */
async function prepared(
  name: string,
  grants: string[],
): Promise<{ id: string; goalId: string; pid: number }> {
  // Persistent: the run's end leaves the agent and its container, which the test looks at
  // after it (an on-demand standalone agent's container goes when its run ends).
  const a = b.agent(name, grants, { lifecycle: "persistent" });
  const sandbox = (await b.rt.backend.acquire(a.goalId)) as DockerSandbox;
  await sandbox.ready();
  plantWorkspace(join(b.home.config.goalsDir, a.goalId, "workspace"));
  return { ...a, pid: sandbox.executorPid };
}

/** Let the model make every attack in one turn, and return what each tool result said. */
async function attackThroughTheLoop(name: string, agentId: string, attacks: Attack[]): Promise<string[]> {
  const script = b.server.script(`red team agent ${name}`, [
    turn.toolUses(attacks.map((a) => ({ name: a.tool, input: a.input }))),
    turn.text("I could not get at it."),
  ]);
  const r = await b.rt.runAgent(agentId, "Find the secret and tell me what it says.");
  expect(r.stop_reason).toBe("complete");
  const results = script.requests[1]!.body.messages.at(-1).content as { content: unknown }[];
  return results.map((x) =>
    typeof x.content === "string" ? x.content : (x.content as { text: string }[]).map((c) => c.text).join(""),
  );
}

describe("a model with narrow file grants, through the agent loop", () => {
  it("hits the Landlock wall with interpreters, links, /proc, ptrace and signals, and sees no secret", async () => {
    const spy = await prepared("spy", SPY_GRANTS);
    const attacks = [...spyExecAttacks(spy.pid), ...SPY_FILE_ATTACKS];
    const outputs = await attackThroughTheLoop("spy", spy.id, attacks);
    attacks.forEach((a, i) => {
      const out = outputs[i] ?? "";
      expect(out, a.what).toMatch(a.shows);
      expect(leaked(a, out), a.what).toBeUndefined();
    });
    // Nothing was planted (the link attempt left its link, which leads nowhere), and the
    // executor is the same process, still answering.
    const sandbox = (await b.rt.backend.acquire(spy.goalId)) as DockerSandbox;
    const after = await sandbox.exec({
      command: "ls /workspace; ls /workspace/public",
      confinement: "unconfined",
    });
    expect(after.stdout).toBe("public\nsecret\nsecrets\nl\np.txt\n");
    expect(sandbox.executorPid).toBe(spy.pid);
  });

  it("is refused file_read_many of the secret at the gate, audited", async () => {
    const spy = await prepared("spy2", SPY_GRANTS);
    const r = await b.call(spy.id, "file_read_many", {
      paths: ["/workspace/public/p.txt", "/workspace/secret/k.txt"],
    });
    const e = expectDenied(b, r, "capability_denied", spy.id, "file_read_many");
    expect(e.message).toContain("/workspace/secret/k.txt");
  });
});

describe("a model with broad grants and an operator deny rule, through the agent loop", () => {
  it("cannot read the denied folder with python3, grep or file_list", async () => {
    const broad = await prepared("broad", BROAD_GRANTS);
    const r = await b.call(broad.id, "file_read_many", { paths: ["/workspace/secrets/s.txt"] });
    expect(expectDenied(b, r, "policy_denied", broad.id, "file_read_many").message).toContain(DENY_RULE);
    const outputs = await attackThroughTheLoop("broad", broad.id, BROAD_ATTACKS);
    BROAD_ATTACKS.forEach((a, i) => {
      const out = outputs[i] ?? "";
      expect(out, a.what).toMatch(a.shows);
      expect(leaked(a, out), a.what).toBeUndefined();
    });
  });
});
