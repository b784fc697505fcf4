// `aido mcp serve` over stdio, driven by the SDK's own Client through the real CLI, in
// front of a real daemon and real containers: the tools and their schemas (the gate's zod
// definitions), allowed calls landing in the user's project folder, denials as isError
// results naming the stage (and audited), malformed input answered with the field named
// while the server lives on, approvals through elicitation and through the socket while
// the MCP call waits, a session that cannot approve its own call, and a session whose
// client leaves ending with no container.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { fileRead, fileWrite } from "../../src/tools/files.js";
import { requireDocker } from "../support/docker.js";
import { answering, CLI, textOf, until, useMcpSuite } from "./fixture.js";

beforeAll(() => requireDocker());
const suite = useMcpSuite();

/** The refusal on the daemon's record as the session's (the value never is), and nothing ran. */
async function refusedOnRecord(depth: string): Promise<void> {
  const c = await suite.fx.client();
  const refused = (await c.call("audit.query", { kind: "session.call_refused" })).entries;
  expect(refused).toHaveLength(1);
  expect(refused[0]).toMatchObject({ payload: { tool: "file_read" } });
  expect(JSON.stringify(refused[0])).toContain(`arguments nest deeper than 64 levels (${depth})`);
  expect(JSON.stringify(refused[0])).not.toContain('{"a":{"a"');
  expect((await c.call("audit.query", { kind: "tool.invoked" })).entries).toEqual([]);
}

const jsonSchemaOf = (t: { input: unknown }) => {
  const s = z.toJSONSchema(t.input as z.ZodType, { io: "input", unrepresentable: "any" }) as Record<
    string,
    unknown
  >;
  delete s.$schema;
  return s;
};

describe("tools/list", () => {
  it("lists the session's gated tools with the gate's schemas and honest annotations, no spawn tools", async () => {
    await suite.start();
    const client = await suite.connect();
    const { tools } = await client.listTools();
    const byName = new Map(tools.map((t) => [t.name, t]));
    for (const name of [
      "file_read",
      "file_write",
      "file_edit",
      "file_list",
      "grep",
      "exec",
      "snapshot_restore",
    ]) {
      expect(byName.has(name), name).toBe(true);
    }
    expect(byName.has("spawn_agent")).toBe(false);
    expect(byName.has("web_fetch")).toBe(false); // the session manifest holds no network grant
    expect(byName.get("file_read")?.inputSchema).toEqual(jsonSchemaOf(fileRead));
    expect(byName.get("file_write")?.inputSchema).toEqual(jsonSchemaOf(fileWrite));
    expect(byName.get("file_read")?.annotations).toMatchObject({
      readOnlyHint: true,
      destructiveHint: false,
    });
    expect(byName.get("grep")?.annotations).toMatchObject({ readOnlyHint: true });
    expect(byName.get("file_write")?.annotations).toMatchObject({
      readOnlyHint: false,
      destructiveHint: true,
    });
    expect(byName.get("exec")?.annotations).toMatchObject({ destructiveHint: true, openWorldHint: true });
    for (const name of [
      "aido_submit",
      "aido_status",
      "aido_wait",
      "aido_cancel",
      "aido_events",
      "aido_approvals",
      "aido_approve",
      "aido_list_agents",
      "aido_orchestrator_info",
    ]) {
      expect(byName.has(name), name).toBe(true);
    }
    expect(byName.get("aido_status")?.inputSchema).toMatchObject({
      type: "object",
      required: ["goal_id"],
      additionalProperties: false,
    });
  });
});

describe("tools/call through the gate", () => {
  it("writes into the user's project folder and reads it back", async () => {
    await suite.start();
    const client = await suite.connect();
    const w = await client.callTool({
      name: "file_write",
      arguments: { path: "/workspace/notes/plan.md", content: "step 1" },
    });
    expect(w.isError ?? false).toBe(false);
    expect(readFileSync(join(suite.project, "notes", "plan.md"), "utf8")).toBe("step 1");
    const r = await client.callTool({ name: "file_read", arguments: { path: "/workspace/README.md" } });
    expect(textOf(r)).toContain("the user's project");
  });

  it("answers a denied call with isError naming the stage and the reason, and audits it", async () => {
    const fx = await suite.start();
    const client = await suite.connect();
    const r = await client.callTool({
      name: "file_write",
      arguments: { path: "/etc/cron.d/x", content: "* * * * * root sh" },
    });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/denied at the capability stage \(capability_denied\)/);
    expect(textOf(r)).toContain("/etc/cron.d/x");
    const c = await fx.client();
    const denied = (await c.call("audit.query", { kind: "tool.denied" })).entries;
    expect(denied.some((e) => JSON.stringify(e.payload).includes("/etc/cron.d/x"))).toBe(true);
  });

  it("refuses arguments nested thousands deep with their depth, audited without the value", async () => {
    await suite.start();
    const client = await suite.connect();
    let deep: unknown = "x";
    for (let i = 0; i < 2000; i++) deep = { a: deep };
    const r = await client.callTool({
      name: "file_read",
      arguments: { path: "/workspace/README.md", x: deep },
    });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toContain("arguments nest deeper than 64 levels (they nest 2001)");
    await refusedOnRecord("they nest 2001");
  });

  it("refuses arguments 50,000 levels deep from a raw client before forwarding them, audited", async () => {
    await suite.start();
    // Built as text: no client library encodes such a value (JSON.stringify overflows).
    const n = 50_000;
    const args = `{"path":"/workspace/README.md","x":${'{"a":'.repeat(n)}1${"}".repeat(n)}}`;
    const child = spawn(
      process.execPath,
      ["--import", "tsx", CLI, "mcp", "serve", "--workspace", suite.project],
      { env: { ...process.env, ...suite.fx.home.env }, stdio: ["pipe", "pipe", "ignore"] },
    );
    try {
      const lines = createInterface({ input: child.stdout });
      const answers = new Map<number, Record<string, unknown>>();
      lines.on("line", (l) => {
        const m = JSON.parse(l) as { id?: number };
        if (typeof m.id === "number") answers.set(m.id, m);
      });
      const answer = async (id: number) => {
        await until(() => answers.has(id), 60_000);
        return answers.get(id) as { result: { isError?: boolean; content: { text: string }[] } };
      };
      const send = (m: string) => child.stdin.write(`${m}\n`);
      send(
        '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}',
      );
      await answer(1);
      send('{"jsonrpc":"2.0","method":"notifications/initialized"}');
      send(
        `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"file_read","arguments":${args}}}`,
      );
      const r = (await answer(2)).result;
      expect(r.isError).toBe(true);
      expect(r.content[0]?.text).toContain(`arguments nest deeper than 64 levels (they nest ${n + 1})`);
    } finally {
      child.kill("SIGTERM");
    }
    await refusedOnRecord(`they nest ${n + 1}`);
  });

  it("answers malformed input with an error naming the field, and lives on", async () => {
    await suite.start();
    const client = await suite.connect();
    const gated = await client.callTool({ name: "file_read", arguments: { path: 42 } });
    expect(gated.isError).toBe(true);
    expect(textOf(gated)).toMatch(/schema stage/);
    expect(textOf(gated)).toContain("path");
    const orch = await client.callTool({ name: "aido_status", arguments: { goal: "x" } });
    expect(orch.isError).toBe(true);
    expect(textOf(orch)).toContain("goal_id");
    expect(textOf(orch)).toContain('unknown key "goal"');
    const wait = await client.callTool({ name: "aido_wait", arguments: { goal_id: "g_x", timeout_ms: -5 } });
    expect(textOf(wait)).toContain("timeout_ms");
    const ok = await client.callTool({ name: "file_list", arguments: { path: "/workspace" } });
    expect(textOf(ok)).toContain("README.md");
  });
});

describe("approvals", () => {
  it("asks the client through elicitation, with what each answer covers, and runs the call on Allow Once", async () => {
    await suite.start();
    const asked: string[] = [];
    const client = await suite.connect({
      elicit: answering(asked, "allow_once"),
    });
    const progress: string[] = [];
    const r = await client.callTool(
      { name: "exec", arguments: { command: "python3 -c 'import time; time.sleep(2.5); print(\"done\")'" } },
      undefined,
      { onprogress: (p) => progress.push(p.message ?? ""), timeout: 60_000 },
    );
    expect(textOf(r)).toContain("done");
    expect(r.isError ?? false).toBe(false);
    expect(asked).toHaveLength(1);
    expect(asked[0]).toContain("Allow Once:");
    expect(asked[0]).toContain("Allow Always:");
    expect(asked[0]).toContain("python3");
    expect(progress.some((m) => /exec running for \d+ s/.test(m))).toBe(true);
  });

  it("shows the whole call in the form when the summary cuts it: what a model padded past the cut is named", async () => {
    await suite.start();
    const asked: string[] = [];
    const client = await suite.connect({
      elicit: answering(asked, "allow_once"),
    });
    // A harmless-looking head of 400 characters; the mkdir lies past the summary's 300.
    const command = `echo Build-report-${"0123456789abcdef".repeat(24)}; mkdir /workspace/past-the-cut`;
    const r = await client.callTool({ name: "exec", arguments: { command } }, undefined, {
      timeout: 120_000,
    });
    expect(r.isError ?? false, textOf(r)).toBe(false);
    expect(asked).toHaveLength(1);
    const [summary, whole] = asked[0]?.split("\n") ?? [];
    expect(summary).not.toContain("past-the-cut");
    expect(whole).toMatch(/^The whole call \(\d+ characters\): .*mkdir \/workspace\/past-the-cut/);
    expect(existsSync(join(suite.project, "past-the-cut"))).toBe(true);
  });

  it("asks no form about a call too long to show whole: it waits for `aido approvals`, saying why", async () => {
    // An exec command is at most 16 KiB: a file_write the operator wants confirmed can be longer.
    const fx = await suite.start({ config: (c) => c.policy.confirm.push("tool: file_write") });
    const asked: string[] = [];
    const client = await suite.connect({
      elicit: answering(asked, "allow_once"),
    });
    const progress: string[] = [];
    const content = `${"x".repeat(25_000)}\nthe part past what a form shows`;
    const call = client.callTool(
      { name: "file_write", arguments: { path: "/workspace/never-shown", content } },
      undefined,
      {
        onprogress: (p) => progress.push(p.message ?? ""),
        timeout: 60_000,
      },
    );
    const human = await fx.client();
    expect(await until(async () => (await human.call("approval.list", {})).approvals.length === 1)).toBe(
      true,
    );
    const [rec] = (await human.call("approval.list", {})).approvals;
    if (!rec) throw new Error("no approval");
    expect(
      await until(() => progress.some((m) => m.includes(rec.id) && m.includes("too long to show"))),
    ).toBe(true);
    await human.call("approval.respond", { id: rec.id, decision: "deny" });
    const r = await call;
    expect(r.isError).toBe(true);
    expect(asked).toEqual([]);
    expect(existsSync(join(suite.project, "never-shown"))).toBe(false);
  });

  it("a Deny through elicitation refuses the call at the approval stage", async () => {
    await suite.start();
    const client = await suite.connect({
      elicit: async () => ({ action: "accept", content: { decision: "deny" } }),
    });
    const r = await client.callTool({ name: "exec", arguments: { command: "ls /workspace" } });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/denied at the approval stage/);
  });

  it("tells the client's human, in the form, that the call carries the daemon's API key (never the key)", async () => {
    const fx = await suite.start();
    const apiKey = fx.home.config.providers.anthropic.apiKey as string;
    const asked: string[] = [];
    const client = await suite.connect({
      elicit: answering(asked, "deny"),
    });
    const r = await client.callTool({
      name: "exec",
      arguments: { command: `python3 -c "print('${apiKey}')"` },
    });
    expect(textOf(r)).toMatch(/denied at the approval stage/);
    expect(asked).toHaveLength(1);
    expect(asked[0]).toContain("print('***')");
    expect(asked[0]).toContain(
      "This call carries secrets (shown blanked): the API key of provider anthropic",
    );
    expect(asked[0]).not.toContain(apiKey);
  });

  it("without elicitation, says the call waits for `aido approvals`, which answers it over the socket", async () => {
    const fx = await suite.start();
    const client = await suite.connect();
    const progress: string[] = [];
    const call = client.callTool({ name: "exec", arguments: { command: "ls /workspace" } }, undefined, {
      onprogress: (p) => progress.push(p.message ?? ""),
      timeout: 60_000,
    });
    const human = await fx.client();
    const pending = await until(async () => (await human.call("approval.list", {})).approvals.length === 1);
    expect(pending).toBe(true);
    const [rec] = (await human.call("approval.list", {})).approvals;
    if (!rec) throw new Error("no approval");
    await until(() => progress.some((m) => m.includes(rec.id) && m.includes("aido approvals")));

    // The client's model tries to approve its own call: refused, it is the agent being checked.
    const self = await client.callTool({
      name: "aido_approve",
      arguments: { id: rec.id, decision: "allow_always" },
    });
    expect(self.isError).toBe(true);
    expect(textOf(self)).toContain("this session's own call");
    expect((await human.call("approval.list", {})).approvals).toHaveLength(1);

    await human.call("approval.respond", { id: rec.id, decision: "allow_once" });
    const r = await call;
    expect(r.isError ?? false).toBe(false);
    expect(textOf(r)).toContain("README.md");
  });
  it("denies the approval of a call the client cancelled while it waited", async () => {
    const fx = await suite.start();
    const client = await suite.connect();
    const abort = new AbortController();
    const call = client
      .callTool({ name: "exec", arguments: { command: "ls /workspace" } }, undefined, {
        signal: abort.signal,
      })
      .catch((e: Error) => e);
    const human = await fx.client();
    await until(async () => (await human.call("approval.list", {})).approvals.length === 1);
    abort.abort();
    expect(await call).toBeInstanceOf(Error);
    await until(async () => (await human.call("approval.list", {})).approvals.length === 0);
    // Closed, never allowed, whichever end of the cancel reaches the daemon first: the form's
    // cancel is a Deny; the call's own end expires the request (seen under load).
    const closed = [
      ...(await human.call("approval.list", { status: "decided" })).approvals,
      ...(await human.call("approval.list", { status: "expired" })).approvals,
    ];
    expect(closed.map((a) => a.decision ?? a.status)).toEqual([expect.stringMatching(/^(deny|expired)$/)]);
  });
});

describe("a call the client cancels while it runs", () => {
  it("is stopped: what it would have done after the cancel does not land in the project", async () => {
    await suite.start();
    const client = await suite.connect({
      elicit: async () => ({ action: "accept", content: { decision: "allow_once" } }),
    });
    const abort = new AbortController();
    const call = client
      .callTool(
        {
          name: "exec",
          arguments: {
            command: `python3 -c "import time; open('/workspace/started.txt', 'w').write('x'); time.sleep(4); open('/workspace/late.txt', 'w').write('x')"`,
          },
        },
        undefined,
        { signal: abort.signal },
      )
      .catch((e: Error) => e);
    // Until no process of the command is left in the goal's container: one the cancel missed
    // ends only after its write, so its absence then means the cancel stopped it (before, a
    // fixed 6 s wait).
    const running = () =>
      suite.containers().some((name) => {
        const top = spawnSync("docker", ["top", name, "-o", "pid,args"], { encoding: "utf8" });
        // A container that stopped runs nothing; any other failure would make this look vacuous.
        if (top.status !== 0 && !top.stderr.includes("is not running")) {
          throw new Error(`docker top ${name}: ${top.stderr}`);
        }
        return top.stdout.includes("late.txt");
      });
    // Cancelled once the command runs (it says so in the project), not after a fixed time: on a
    // loaded machine 1.5 s once ended the call before it ran (tool.denied), and no tool.failed.
    await until(() => existsSync(join(suite.project, "started.txt")), 30_000);
    expect(running(), "the command runs when it is cancelled").toBe(true);
    abort.abort();
    expect(await call).toBeInstanceOf(Error);
    await until(() => !running(), 30_000);
    expect(existsSync(join(suite.project, "late.txt")), "the cancelled command ran on").toBe(false);
    // Its end is on record once the gate has settled it, which may come after the client's error.
    const c = await suite.fx.client();
    const failed = async () => (await c.call("audit.query", { kind: "tool.failed" })).entries;
    await until(async () => (await failed()).length > 0, 30_000);
    expect((await failed()).map((e) => e.payload)).toEqual([
      expect.objectContaining({ tool: "exec", code: "cancelled" }),
    ]);
    // The session lives on.
    const r = await client.callTool({ name: "file_read", arguments: { path: "/workspace/README.md" } });
    expect(r.isError ?? false).toBe(false);
  }, 60_000);
});

describe("approvals of calls side by side", () => {
  it("denies the approval of the call the client cancelled, not one of a plan running beside it", async () => {
    const fx = await suite.start();
    const client = await suite.connect();
    const plan = JSON.parse(
      textOf(
        await client.callTool({
          name: "aido_plan",
          arguments: { title: "list", steps: [{ tool: "exec", input: { command: "ls /workspace" } }] },
        }),
      ),
    ) as { plan_id: string };
    const human = await fx.client();
    const pendingFor = async (command: string) =>
      (await human.call("approval.list", {})).approvals.find(
        (a) => (a.input as { command?: string }).command === command,
      );
    const running = client
      .callTool({ name: "aido_plan_execute", arguments: { plan_id: plan.plan_id } })
      .catch((e: Error) => e);
    await until(async () => (await pendingFor("ls /workspace")) !== undefined);
    const abort = new AbortController();
    const call = client
      .callTool({ name: "exec", arguments: { command: "echo cancelled" } }, undefined, {
        signal: abort.signal,
      })
      .catch((e: Error) => e);
    await until(async () => (await pendingFor("echo cancelled")) !== undefined);
    abort.abort();
    expect(await call).toBeInstanceOf(Error);
    // The cancelled call's own request is denied; the plan's step still waits for its human.
    await until(async () => (await pendingFor("echo cancelled")) === undefined);
    const decided = (await human.call("approval.list", { status: "decided" })).approvals;
    expect(decided.map((a) => [(a.input as { command: string }).command, a.decision])).toEqual([
      ["echo cancelled", "deny"],
    ]);
    const step = await pendingFor("ls /workspace");
    if (!step) throw new Error("the plan's approval was answered");
    await human.call("approval.respond", { id: step.id, decision: "allow_once" });
    const done = await running;
    expect(textOf(done)).toContain('"status": "succeeded"');
  });
});

describe("calls with the same input waiting side by side", () => {
  it("each gets its own request: cancelling some denies theirs, and the others run once their human answers", async () => {
    const fx = await suite.start();
    const client = await suite.connect();
    // Warm: the container exists, so the calls race only each other.
    await client.callTool({ name: "file_read", arguments: { path: "/workspace/README.md" } });
    const human = await fx.client();
    const pending = async () => (await human.call("approval.list", {})).approvals;
    const n = 8;
    const calls = Array.from({ length: n }, () => {
      const abort = new AbortController();
      let told: string | undefined;
      const result = client
        .callTool({ name: "exec", arguments: { command: "echo same" } }, undefined, {
          signal: abort.signal,
          onprogress: (p) => {
            told ??= /answer approval (apr_[0-9a-f-]+)/.exec(p.message ?? "")?.[1];
          },
        })
        .catch((e: Error) => e);
      return { abort, result, told: () => told };
    });
    await until(() => calls.every((c) => c.told() !== undefined), 30_000);
    expect((await pending()).length).toBe(n);
    expect(new Set(calls.map((c) => c.told())).size).toBe(n);
    const cancelled = calls.filter((_, i) => i % 2 === 0);
    const kept = calls.filter((_, i) => i % 2 === 1);
    for (const c of cancelled) c.abort.abort();
    for (const c of cancelled) expect(await c.result).toBeInstanceOf(Error);
    // Every cancelled call's daemon call ended; the kept calls' requests, as each was told, still wait.
    await until(async () => (await pending()).length <= kept.length, 10_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await pending()).map((a) => a.id).sort()).toEqual(kept.map((c) => c.told()).sort());
    for (const c of kept)
      await human.call("approval.respond", { id: String(c.told()), decision: "allow_once" });
    for (const c of kept) {
      const r = await c.result;
      expect(r).not.toBeInstanceOf(Error);
      expect(textOf(r), "a kept call").toContain("same");
      expect((r as { isError?: boolean }).isError ?? false).toBe(false);
    }
  }, 90_000);
});

describe("two plans with the same step waiting side by side", () => {
  it("each is told its own request, and cancelling one denies its request only: the other runs once answered", async () => {
    const fx = await suite.start();
    const client = await suite.connect();
    const human = await fx.client();
    const pending = async () => (await human.call("approval.list", {})).approvals;
    const record = async () =>
      (
        JSON.parse(
          textOf(
            await client.callTool({
              name: "aido_plan",
              arguments: { title: "same", steps: [{ tool: "exec", input: { command: "echo twin" } }] },
            }),
          ),
        ) as { plan_id: string }
      ).plan_id;
    const run = (planId: string) => {
      const abort = new AbortController();
      const told: string[] = [];
      const result = client
        .callTool({ name: "aido_plan_execute", arguments: { plan_id: planId } }, undefined, {
          signal: abort.signal,
          onprogress: (p) => {
            const id = /answer approval (apr_[0-9a-f-]+)/.exec(p.message ?? "")?.[1];
            if (id && !told.includes(id)) told.push(id);
          },
        })
        .catch((e: Error) => e);
      return { abort, result, told };
    };
    const first = run(await record());
    await until(() => first.told.length === 1, 30_000);
    const second = run(await record());
    // Both plans run the same step: its request is the second plan's, and it is told so.
    await until(async () => (await pending()).length === 2, 30_000);
    await until(() => second.told.length === 1, 10_000);
    expect(first.told).toHaveLength(1);
    expect(second.told[0]).not.toBe(first.told[0]);
    first.abort.abort();
    expect(await first.result).toBeInstanceOf(Error);
    await until(async () => (await pending()).length === 1, 10_000);
    expect((await pending()).map((a) => a.id)).toEqual(second.told);
    const decided = (await human.call("approval.list", { status: "decided" })).approvals;
    expect(decided.map((a) => [a.id, a.decision])).toEqual([[first.told[0], "deny"]]);
    await human.call("approval.respond", { id: String(second.told[0]), decision: "allow_once" });
    expect(textOf(await second.result)).toContain('"status": "succeeded"');
  }, 90_000);
});

describe("a request of the session's agent that no call of the server made", () => {
  it("is never taken by a plan running beside it: the plan's cancel leaves it to its own client", async () => {
    const fx = await suite.start();
    const client = await suite.connect();
    const human = await fx.client();
    const pending = async () => (await human.call("approval.list", {})).approvals;
    const plan = JSON.parse(
      textOf(
        await client.callTool({
          name: "aido_plan",
          arguments: { title: "one", steps: [{ tool: "exec", input: { command: "echo plan" } }] },
        }),
      ),
    ) as { plan_id: string };
    const abort = new AbortController();
    const told: string[] = [];
    const running = client
      .callTool({ name: "aido_plan_execute", arguments: { plan_id: plan.plan_id } }, undefined, {
        signal: abort.signal,
        onprogress: (p) => {
          const id = /answer approval (apr_[0-9a-f-]+)/.exec(p.message ?? "")?.[1];
          if (id && !told.includes(id)) told.push(id);
        },
      })
      .catch((e: Error) => e);
    await until(() => told.length === 1, 30_000);
    // Another socket client acts as the session's agent (same agent, same tool).
    const info = JSON.parse(
      textOf(await client.callTool({ name: "aido_orchestrator_info", arguments: {} })),
    ) as {
      session: { agent_id: string };
    };
    const other = await fx.client();
    const foreign = other
      .call("tool.invoke", { agent_id: info.session.agent_id, tool: "exec", input: { command: "echo plan" } })
      .catch((e: Error) => e);
    await until(async () => (await pending()).length === 2);
    const foreignId = (await pending()).map((a) => a.id).find((id) => id !== told[0]);
    await new Promise((r) => setTimeout(r, 500));
    expect(told).toHaveLength(1);
    abort.abort();
    expect(await running).toBeInstanceOf(Error);
    await until(async () => (await pending()).length === 1, 10_000);
    // The foreign request still waits for its own human; the plan's was denied.
    expect((await pending()).map((a) => a.id)).toEqual([foreignId]);
    await human.call("approval.respond", { id: String(foreignId), decision: "allow_once" });
    expect(await foreign).toMatchObject({ is_error: false });
  }, 90_000);
});

describe("arguments larger than a daemon request line", () => {
  it("are refused with the limit named and audited, not left waiting for an answer that never comes", async () => {
    const fx = await suite.start();
    const client = await suite.connect();
    const big = "x".repeat(fx.home.config.daemon.maxLineBytes + 1);
    const r = await Promise.race([
      client.callTool({ name: "file_write", arguments: { path: "/workspace/big.txt", content: big } }),
      new Promise<"hung">((resolve) => setTimeout(() => resolve("hung"), 20_000)),
    ]);
    if (r === "hung") throw new Error("the call got no answer in 20 s");
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(
      /arguments of \d+ bytes: a request to the daemon takes at most \d+ \(daemon\.max_line_bytes \d+/,
    );
    const c = await fx.client();
    const refused = (await c.call("audit.query", { kind: "session.call_refused" })).entries;
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ payload: { tool: "file_write" } });
    // The session lives on.
    const ok = await client.callTool({ name: "file_read", arguments: { path: "/workspace/README.md" } });
    expect(ok.isError ?? false).toBe(false);
  }, 60_000);
});

describe("a daemon that reads shorter lines than the server's configuration says", () => {
  it("tells its limit at session.open: a longer request is refused by the server naming it, and calls beside it live on", async () => {
    // The daemon's own configuration only: the server reads the default 1 MiB from AIDO_HOME.
    const limit = 64 * 1024;
    const fx = await suite.start({ config: (c) => (c.daemon.maxLineBytes = limit) });
    const client = await suite.connect();
    // For the session's shared connection: refused before it is sent, the limit named.
    const [big, beside] = await Promise.all([
      client.callTool({ name: "aido_submit", arguments: { goal: "g".repeat(90_000) } }),
      client.callTool({ name: "aido_orchestrator_info", arguments: {} }),
    ]);
    expect(big.isError).toBe(true);
    expect(textOf(big)).toContain(`daemon.max_line_bytes ${limit}`);
    expect(beside.isError ?? false).toBe(false);
    // A typed action's arguments are measured against the daemon's limit too, and the refusal audited.
    const write = await client.callTool({
      name: "file_write",
      arguments: { path: "/workspace/big.txt", content: "x".repeat(90_000) },
    });
    expect(write.isError).toBe(true);
    expect(textOf(write)).toContain(`daemon.max_line_bytes ${limit}`);
    const c = await fx.client();
    const refused = (await c.call("audit.query", { kind: "session.call_refused" })).entries;
    expect(refused.map((e) => (e.payload as { tool: string }).tool).sort()).toEqual([
      "aido_submit",
      "file_write",
    ]);
  }, 60_000);
});

describe("session end", () => {
  it("a message larger than the stdio transport reads ends the session saying why, to the client, on stderr and in the audit", async () => {
    const fx = await suite.start();
    const client = await suite.connect();
    const told: string[] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      told.push(String(n.params.data));
    });
    await client.callTool({ name: "aido_orchestrator_info", arguments: {} });
    const closed = new Promise<void>((resolve) => {
      client.onclose = () => resolve();
    });
    const huge = client
      .callTool({
        name: "file_write",
        arguments: { path: "/workspace/huge.txt", content: "x".repeat(11 * 1024 * 1024) },
      })
      .catch((e: Error) => e);
    const limit = /larger than 10485760 bytes/;
    await until(() => told.some((m) => limit.test(m)), 30_000);
    await until(() => limit.test(suite.stderr()), 30_000);
    const c = await fx.client();
    await until(
      async () => (await c.call("audit.query", { kind: "session.call_refused" })).entries.length === 1,
      30_000,
    );
    const [refused] = (await c.call("audit.query", { kind: "session.call_refused" })).entries;
    expect(JSON.stringify(refused?.payload)).toMatch(limit);
    await client.close();
    await closed;
    expect(await huge).toBeInstanceOf(Error);
  }, 90_000);

  it("leaves no container when the client closes, and the project keeps what the session wrote", async () => {
    const fx = await suite.start();
    const client = await suite.connect();
    await client.callTool({
      name: "file_write",
      arguments: { path: "/workspace/kept.txt", content: "kept" },
    });
    expect(suite.containers()).toHaveLength(1);
    await client.close();
    await until(() => suite.containers().length === 0);
    expect(readFileSync(join(suite.project, "kept.txt"), "utf8")).toBe("kept");
    const c = await fx.client();
    await until(async () => (await c.call("audit.query", { kind: "session.closed" })).entries.length === 1);
  });
});
