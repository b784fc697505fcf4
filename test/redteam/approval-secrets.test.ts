// Red team: what a human is asked to approve, attacked as a model would through the daemon, the
// real tools and a goal's container. A model writes the config's API key (read from somewhere,
// or in the goal text) or its goal's proxy password into a call that needs approval: a file's
// content, a command, a child manifest. Before, the request was built from the call as written,
// and approval.list (what the dashboard, `aido approvals` and MCP read), the approval.requested
// event and its audit entry showed the secret whole. Now each shows it blanked in place (`***`,
// `[hidden]`, gate/call-secrets.ts), the call that runs after an allow runs with its own input,
// and a standing answer still matches on the call itself: two calls that show the same (each
// with another secret blanked as `***`) are two requests.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AidoClient } from "../../src/client/client.js";
import type { RuntimeEventParams } from "../../src/client/types.js";
import { PROXY_CREDENTIAL_KIND } from "../../src/gate/call-secrets.js";
import { MIN_SECRET_LENGTH } from "../../src/security/blank-secrets.js";
import { type DaemonFixture, manifest, rpcError } from "../daemon/fixture.js";
import { piecesOf, startGoalDaemon } from "../egress/goal-daemon.js";
import { requireDocker } from "../support/docker.js";
import { type ProviderServer, startProviderServer } from "../support/provider-server.js";

let server: ProviderServer;
let fx: DaemonFixture;
let c: AidoClient;
const events: RuntimeEventParams[] = [];
let sub: { close(): void } | undefined;

interface Asked {
  id: string;
  tool: string;
  input: unknown;
  summary: string;
  target: string;
  scope_key: string;
  carries_secrets: string[];
}

/** The pending request that is not one of `seen`, once it appears; the call's error should it end first. */
async function nextRequest(seen: Set<string>, call: Promise<unknown>): Promise<Asked> {
  let ended: { error: unknown } | undefined;
  call.then(
    () => {
      ended = { error: new Error("the call ended without asking") };
    },
    (error: unknown) => {
      ended = { error };
    },
  );
  for (let i = 0; i < 600; i++) {
    if (ended) throw ended.error;
    const { approvals } = (await c.call("approval.list", {})) as { approvals: Asked[] };
    const fresh = approvals.find((a) => !seen.has(a.id));
    if (fresh) {
      seen.add(fresh.id);
      return fresh;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("no approval request appeared");
}

beforeAll(async () => {
  requireDocker();
  server = await startProviderServer();
  fx = await startGoalDaemon(server, (cfg) => {
    cfg.approvals.timeoutMs = 120_000;
  });
  c = await fx.client();
  sub = await AidoClient.subscribe(fx.home.config.socketPath, undefined, (ev) => events.push(ev));
}, 120_000);

afterAll(async () => {
  sub?.close();
  await fx?.close();
  await server?.close();
});

describe("a model writing a secret into a call that needs approval", () => {
  it("shows the human the call with the config's API key and the proxy password blanked, and runs it as written", async () => {
    const apiKey = fx.home.config.providers.anthropic.apiKey as string;
    expect(apiKey.length).toBeGreaterThanOrEqual(MIN_SECRET_LENGTH);
    const a = await c.call("agent.spawn", {
      manifest: manifest("asks", {
        lifecycle: "persistent",
        capabilities: [
          "tool: exec",
          "tool: file_write",
          "tool: spawn_agent",
          "spawn_child: [kid]",
          "exec: *",
          "file_read: /workspace/**",
          "file_write: /workspace/**",
          "network: plain.test:8080",
        ],
        approval_required: ["exec", "file_write", "spawn_agent"],
      }),
    });
    const agent_id = a.agent_id as string;
    const goalId = a.goal_id as string;
    const ws = (file: string) => join(fx.home.config.goalsDir, goalId, "workspace", file);
    const seen = new Set<string>();
    /** The call, the request it makes (answered `decision`), and how the call ended. */
    const ask = async (tool: string, input: unknown, decision: string) => {
      const call = c.call("tool.invoke", { agent_id, tool, input });
      call.catch(() => {});
      const req = await nextRequest(seen, call);
      await c.call("approval.respond", { id: req.id, decision });
      return {
        req,
        ended: await call.then(
          (r) => r,
          (e: Error) => e,
        ),
      };
    };

    // The password the model learnt (a test reads it; a model could be told it).
    await ask("exec", { command: `printf '%s\\n' "$HTTP_PROXY" > /workspace/p-proxy` }, "allow_once");
    const url = readFileSync(ws("p-proxy"), "utf8").trim();
    const carriesBoth = [PROXY_CREDENTIAL_KIND, "the API key of provider anthropic"];
    const { password } = new URL(url);
    const shownUrl = url.replace(password, "[hidden]");
    expect(shownUrl).not.toBe(url);

    // A file's content: shown blanked, written whole.
    const write = await ask(
      "file_write",
      { path: "/workspace/note", content: `key ${apiKey} proxy ${url}` },
      "allow_once",
    );
    expect.soft(write.req.input).toEqual({ path: "/workspace/note", content: `key *** proxy ${shownUrl}` });
    expect.soft(write.req.summary).toContain(`key *** proxy ${shownUrl}`);
    expect.soft(write.req.target).toBe("file_write on /workspace/note");
    // What the blanks stand for, by kind: the one fact that decides the answer.
    expect.soft(write.req.carries_secrets).toEqual(carriesBoth);
    expect(readFileSync(ws("note"), "utf8")).toBe(`key ${apiKey} proxy ${url}`);

    // A command line: its target (what a standing answer would cover) too.
    const command = `printf '%s %s' '${apiKey}' '${url}' > /workspace/cmd`;
    const exec = await ask("exec", { command }, "allow_once");
    const shownCommand = `printf '%s %s' '***' '${shownUrl}' > /workspace/cmd`;
    expect.soft(exec.req.input).toEqual({ command: shownCommand });
    expect.soft(exec.req.summary).toContain("***");
    // (the command as normalized: quotes gone)
    expect.soft(exec.req.target).toContain(`printf '%s %s' *** ${shownUrl} >/workspace/cmd`);
    expect.soft(exec.req.carries_secrets).toEqual(carriesBoth);
    expect(readFileSync(ws("cmd"), "utf8")).toBe(`${apiKey} ${url}`);

    // A child manifest: shown with its shape, the human denies it.
    const spawn = await ask(
      "spawn_agent",
      {
        manifest: {
          name: "kid",
          system_prompt: `Use ${apiKey} via ${url}.`,
          capabilities: ["tool: file_read"],
        },
        message: `key ${apiKey}`,
      },
      "deny",
    );
    expect.soft(spawn.req.input).toEqual({
      manifest: { name: "kid", system_prompt: `Use *** via ${shownUrl}.`, capabilities: ["tool: file_read"] },
      message: "key ***",
    });
    expect.soft(spawn.req.carries_secrets).toEqual(carriesBoth);
    expect.soft(spawn.ended).toBeInstanceOf(Error);

    // Nothing the human, the event stream or the audit log saw holds either secret.
    const listed = (await c.call("approval.list", { status: "all" })).approvals;
    const requested = events.filter((e) => e.type === "approval.requested");
    expect(requested.length).toBeGreaterThanOrEqual(4);
    // The event and the audit entry say it too; the first call ($HTTP_PROXY, not the password) carries none.
    const carried = (id: string) => requested.find((e) => e.approval_id === id)?.carries_secrets;
    const asked = [write, exec, spawn].map((x) => x.req.id);
    expect.soft(asked.map(carried)).toEqual([carriesBoth, carriesBoth, carriesBoth]);
    expect.soft(requested.map((e) => e.carries_secrets)).toContainEqual([]);
    const audit = (await c.call("audit.query", { goal_id: goalId, limit: 1000 })).entries;
    const entries = audit.filter((e) => String(e.kind).startsWith("approval."));
    expect(entries.length).toBeGreaterThanOrEqual(8);
    const audited = (id: string) =>
      (entries.find(
        (e) => e.kind === "approval.requested" && (e.payload as { approval_id: string }).approval_id === id,
      )?.payload ?? {}) as { carries_secrets?: string[] };
    expect
      .soft(asked.map((id) => audited(id).carries_secrets))
      .toEqual([carriesBoth, carriesBoth, carriesBoth]);
    const all = JSON.stringify([listed, requested, audit, fx.eventLog]);
    expect(all).not.toContain(apiKey);
    for (const piece of piecesOf(password)) expect(all).not.toContain(piece);
    await c.call("agent.stop", { agent_id });
  }, 300_000);

  it("asks again for a call that shows the same as an allowed one but holds another secret", async () => {
    const anthropic = fx.home.config.providers.anthropic.apiKey as string;
    const openai = fx.home.config.providers.openai.apiKey as string;
    expect(anthropic).not.toBe(openai);
    const a = await c.call("agent.spawn", {
      manifest: manifest("twice", {
        lifecycle: "persistent",
        capabilities: ["tool: exec", "exec: *", "file_read: /workspace/**", "file_write: /workspace/**"],
        approval_required: ["exec"],
      }),
    });
    const agent_id = a.agent_id as string;
    const seen = new Set<string>();
    const first = c.call("tool.invoke", {
      agent_id,
      tool: "exec",
      input: { command: `printf '%s' '${anthropic}' > /workspace/k` },
    });
    const req1 = await nextRequest(seen, first);
    await c.call("approval.respond", { id: req1.id, decision: "allow_session" });
    await first;
    // The same command with the other key: the human would read the same words (`***`), but
    // the answer was about the first key: asked afresh, and denied.
    const second = c.call("tool.invoke", {
      agent_id,
      tool: "exec",
      input: { command: `printf '%s' '${openai}' > /workspace/k` },
    });
    second.catch(() => {});
    const req2 = await nextRequest(seen, second);
    expect(req2.target).toBe(req1.target);
    expect(req2.target).toContain("printf %s *** >/workspace/k");
    expect(req2.scope_key).not.toBe(req1.scope_key);
    await c.call("approval.respond", { id: req2.id, decision: "deny" });
    const e = await rpcError(second);
    expect(e.message).toMatch(/a human denied the call/);
    const ws = join(fx.home.config.goalsDir, a.goal_id as string, "workspace", "k");
    expect(readFileSync(ws, "utf8")).toBe(anthropic);
    await c.call("agent.stop", { agent_id });
  }, 300_000);

  it("asks no human about a path that names the config's API key (the request's identity), and says so blanked", async () => {
    const apiKey = fx.home.config.providers.anthropic.apiKey as string;
    const a = await c.call("agent.spawn", {
      manifest: manifest("named", {
        lifecycle: "persistent",
        capabilities: ["tool: file_write", "file_read: /workspace/**", "file_write: /workspace/**"],
        approval_required: ["file_write"],
      }),
    });
    const before = (await c.call("approval.list", { status: "all" })).approvals.length;
    const e = await rpcError(
      c.call("tool.invoke", {
        agent_id: a.agent_id,
        tool: "file_write",
        input: { path: `/workspace/${apiKey}`, content: "x" },
      }),
    );
    expect(e.message).toMatch(
      /would name a proxy credential of this goal or a secret of the config \(.*file_write on \/workspace\/\*\*\*/,
    );
    expect((await c.call("approval.list", { status: "all" })).approvals).toHaveLength(before);
    const audit = (await c.call("audit.query", { goal_id: a.goal_id, limit: 1000 })).entries;
    expect(JSON.stringify([e.message, e.details, audit])).not.toContain(apiKey);
    await c.call("agent.stop", { agent_id: a.agent_id });
  }, 300_000);
});
