// Proxy credentials attacked as a model would, through the daemon, the real tools and a goal's
// container (gate/invoke.ts, egress/plumbing.ts goalSecretsIn): the model never sees its proxy
// password, but a command of its can name a path after it (a symbolic link to
// `/workspace/$HTTP_PROXY`). The gate resolves a path tool's path in the container and a
// refusal (outside the grants) or an error (no such file) quotes the resolved path: each
// reached the model, the audit and the events with the password whole, and file_write and
// file_edit through such a link said the path they wrote (the model, a socket client's data).

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { MIN_SECRET_LENGTH } from "../../src/security/blank-secrets.js";
import { type DaemonFixture, manifest, rpcError } from "../daemon/fixture.js";
import { requireDocker } from "../support/docker.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import { piecesOf, resultBefore, startGoalDaemon } from "./goal-daemon.js";

let server: ProviderServer;
let fx: DaemonFixture;
let c: AidoClient;

beforeAll(async () => {
  requireDocker();
  server = await startProviderServer();
  fx = await startGoalDaemon(server);
  c = await fx.client();
}, 120_000);

afterAll(async () => {
  await fx?.close();
  await server?.close();
});

describe("a model making the container name its proxy password in a path", () => {
  it("reads no piece of it in a file tool's refusal or error, nor does the audit hold it", async () => {
    const script = server.script('manifest "link-name"', [
      turn.toolUse("exec", {
        command: [
          `printf '%s\\n' "$HTTP_PROXY" > /workspace/p-proxy`,
          // Outside the read grant: refused, the resolved path named.
          `ln -s "/x$HTTP_PROXY" /workspace/out`,
          // Inside it, missing: an error naming the path (a refusal for exec: a script it cannot read).
          `ln -s "/workspace/$HTTP_PROXY" /workspace/in`,
        ].join("; "),
      }),
      turn.toolUse("file_read", { path: "/workspace/out" }),
      turn.toolUse("file_read", { path: "/workspace/in" }),
      turn.toolUse("file_list", { path: "/workspace/in" }),
      turn.toolUse("exec", { command: "sh /workspace/in" }),
      turn.toolUse("exec", { command: "sh /workspace/out" }),
      turn.text("done"),
    ]);
    const { goal_id } = await c.call("goal.submit", {
      goal: "name my password in a path",
      manifest: manifest("link-name", {
        capabilities: [
          "tool: exec",
          "tool: file_read",
          "tool: file_list",
          "file_read: /workspace/**",
          "file_write: /workspace/**",
          "exec: *",
          "network: plain.test:8080",
        ],
      }),
    });
    const end = await c.call("goal.wait", { goal_id, timeout_ms: 150_000 });
    expect(end.state).toBe("succeeded");
    const url = readFileSync(join(fx.home.config.goalsDir, goal_id, "workspace", "p-proxy"), "utf8").trim();
    const { password } = new URL(url);
    const shown = {
      out: resultBefore(script.requests, 2),
      in: resultBefore(script.requests, 3),
      list: resultBefore(script.requests, 4),
      shIn: resultBefore(script.requests, 5),
      shOut: resultBefore(script.requests, 6),
    };
    // Each names the path, the password in it blanked.
    const path = /http:\/a_\w+:\[hidden\]@[\d.]+:\d+/;
    expect.soft(shown.out).toMatch(new RegExp(`no capability grants file_read on /x${path.source}`));
    expect.soft(shown.in).toMatch(new RegExp(`/workspace/${path.source}: no such file or directory`));
    expect.soft(shown.list).toMatch(new RegExp(`/workspace/${path.source}: no such file or directory`));
    // exec judges the script a command runs where the container resolves it: named the same way.
    expect.soft(shown.shIn).toMatch(new RegExp(`cannot read the script /workspace/${path.source} `));
    expect.soft(shown.shOut).toMatch(new RegExp(`runs the script /x${path.source}, which it may not read`));
    const audit = (await c.call("audit.query", { goal_id, limit: 1000 })).entries;
    expect.soft(audit.map((e) => e.kind)).toEqual(expect.arrayContaining(["tool.denied", "tool.failed"]));
    // Nothing of it anywhere: the model's results, the audit, the event log.
    const all = JSON.stringify([shown, audit, fx.eventLog]);
    for (const piece of piecesOf(password)) expect(all).not.toContain(piece);
  }, 200_000);

  it("reads no piece of it where file_write, file_edit and file_read name the path they acted on", async () => {
    const script = server.script('manifest "link-write"', [
      turn.toolUse("exec", {
        command: `printf '%s\\n' "$HTTP_PROXY" > /workspace/p-proxy; ln -s "/workspace/$HTTP_PROXY" /workspace/w`,
      }),
      turn.toolUse("file_write", { path: "/workspace/w", content: "one\n" }),
      turn.toolUse("file_edit", { path: "/workspace/w", old_string: "one", new_string: "two" }),
      turn.toolUse("file_read", { path: "/workspace/w" }),
      turn.text("done"),
    ]);
    const { goal_id } = await c.call("goal.submit", {
      goal: "write through a link named after my password",
      manifest: manifest("link-write", {
        capabilities: [
          "tool: exec",
          "tool: file_read",
          "tool: file_write",
          "tool: file_edit",
          "file_read: /workspace/**",
          "file_write: /workspace/**",
          "exec: *",
          "network: plain.test:8080",
        ],
      }),
    });
    const end = await c.call("goal.wait", { goal_id, timeout_ms: 150_000 });
    expect(end.state).toBe("succeeded");
    const url = readFileSync(join(fx.home.config.goalsDir, goal_id, "workspace", "p-proxy"), "utf8").trim();
    const { password } = new URL(url);
    const shown = {
      write: resultBefore(script.requests, 2),
      edit: resultBefore(script.requests, 3),
      read: resultBefore(script.requests, 4),
    };
    console.log(shown);
    const path = /\/workspace\/http:\/a_\w+:\[hidden\]@[\d.]+:\d+/;
    expect.soft(shown.write).toMatch(new RegExp(`wrote 4 bytes to ${path.source}`));
    expect.soft(shown.edit).toMatch(new RegExp(`replaced 1 occurrence\\(s\\) in ${path.source}`));
    expect.soft(shown.read).toContain("two");
    const audit = (await c.call("audit.query", { goal_id, limit: 1000 })).entries;
    const all = JSON.stringify([shown, audit, fx.eventLog]);
    for (const piece of piecesOf(password)) expect(all).not.toContain(piece);
  }, 200_000);

  it("asks no human about a path named after it (approval_required)", async () => {
    const script = server.script('manifest "link-ask"', [
      turn.toolUse("exec", {
        command: `printf '%s\\n' "$HTTP_PROXY" > /workspace/p-proxy; ln -s "/workspace/$HTTP_PROXY" /workspace/w`,
      }),
      turn.toolUse("file_write", { path: "/workspace/w", content: "one\n" }),
      turn.text("done"),
    ]);
    const { goal_id } = await c.call("goal.submit", {
      goal: "ask about a link named after my password",
      manifest: manifest("link-ask", {
        capabilities: [
          "tool: exec",
          "tool: file_write",
          "file_read: /workspace/**",
          "file_write: /workspace/**",
          "exec: *",
          "network: plain.test:8080",
        ],
        approval_required: ["file_write"],
      }),
    });
    // Nobody is asked: the call is refused, its reason blanked.
    const end = await c.call("goal.wait", { goal_id, timeout_ms: 150_000 });
    expect(end.state).toBe("succeeded");
    expect((await c.call("approval.list", { status: "all" })).approvals).toEqual([]);
    const url = readFileSync(join(fx.home.config.goalsDir, goal_id, "workspace", "p-proxy"), "utf8").trim();
    const { password } = new URL(url);
    const shown = resultBefore(script.requests, 2);
    expect(shown).toMatch(
      /approval this call needs would name a proxy credential of this goal or a secret of the config \(.*http:\/a_\w+:\[hidden\]@/,
    );
    const audit = (await c.call("audit.query", { goal_id, limit: 1000 })).entries;
    const all = JSON.stringify([shown, audit, fx.eventLog]);
    for (const piece of piecesOf(password)) expect(all).not.toContain(piece);
  }, 200_000);

  it("reads no piece of a call's credentials in the refusal a socket client gets, details included", async () => {
    const a = await c.call("agent.spawn", {
      manifest: manifest("link-call", {
        lifecycle: "persistent",
        capabilities: [
          "tool: exec",
          "tool: file_read",
          "tool: file_write",
          "exec: *",
          "file_read: /workspace/**",
          "file_write: /workspace/**",
          "network: plain.test:8080",
        ],
      }),
    });
    // A socket client's exec runs with the call's own credentials (`<key>.<secret>`).
    await c.call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "exec",
      input: {
        command: `printf '%s\\n' "$HTTP_PROXY" > /workspace/c-proxy; ln -s "/x$HTTP_PROXY" /workspace/c-out; ln -s "/workspace/$HTTP_PROXY" /workspace/c-w`,
      },
    });
    const url = readFileSync(
      join(fx.home.config.goalsDir, a.goal_id as string, "workspace", "c-proxy"),
      "utf8",
    ).trim();
    const { password } = new URL(url);
    expect(password).toContain(".");
    const e = await rpcError(
      c.call("tool.invoke", { agent_id: a.agent_id, tool: "file_read", input: { path: "/workspace/c-out" } }),
    );
    expect.soft(e.message).toMatch(/no capability grants file_read on \/xhttp:\/a_\w+:\[hidden\]@/);
    expect.soft(JSON.stringify(e.details)).toContain("[hidden]");
    // A write through a link named after them: its result, text and data, names the path.
    const wrote = await c.call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "file_write",
      input: { path: "/workspace/c-w", content: "x" },
    });
    expect.soft(String(wrote.output)).toMatch(/wrote 1 bytes to \/workspace\/http:\/a_\w+:\[hidden\]@/);
    expect.soft(JSON.stringify(wrote.data)).toContain("[hidden]");
    const read = await c.call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "file_read",
      input: { path: "/workspace/c-w" },
    });
    expect.soft(JSON.stringify(read.data)).toContain("[hidden]");
    const audit = (await c.call("audit.query", { goal_id: a.goal_id, limit: 1000 })).entries;
    const all = JSON.stringify([e.message, e.details, wrote, read, audit, fx.eventLog]);
    for (const piece of piecesOf(password)) expect(all).not.toContain(piece);
    await c.call("agent.stop", { agent_id: a.agent_id });
  }, 200_000);

  it("reads no piece of a call's credentials where file_list names the folder it listed (its data)", async () => {
    const a = await c.call("agent.spawn", {
      manifest: manifest("link-list", {
        lifecycle: "persistent",
        capabilities: [
          "tool: exec",
          "tool: file_list",
          "tool: grep",
          "exec: *",
          "file_read: /workspace/**",
          "file_write: /workspace/**",
          "network: plain.test:8080",
        ],
      }),
    });
    // A folder named after the call's proxy URL, and a link to it.
    await c.call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "exec",
      input: {
        command: [
          `printf '%s\\n' "$HTTP_PROXY" > /workspace/l-proxy`,
          `mkdir -p "/workspace/$HTTP_PROXY-d"`,
          `echo hit > "/workspace/$HTTP_PROXY-d/f"`,
          `ln -s "/workspace/$HTTP_PROXY-d" /workspace/l-d`,
        ].join("; "),
      },
    });
    const url = readFileSync(
      join(fx.home.config.goalsDir, a.goal_id as string, "workspace", "l-proxy"),
      "utf8",
    ).trim();
    const { password } = new URL(url);
    const listed = await c.call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "file_list",
      input: { path: "/workspace/l-d" },
    });
    expect.soft(String(listed.output)).toMatch(/file\s+4\s+f/);
    expect
      .soft((listed.data as { path?: string }).path)
      .toMatch(/^\/workspace\/http:\/a_\w+:\[hidden\]@[\d.]+:\d+-d$/);
    // grep names each match's file below the folder as resolved: blanked in its output.
    const grepped = await c.call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "grep",
      input: { pattern: "hit", path: "/workspace/l-d" },
    });
    expect
      .soft(String(grepped.output))
      .toMatch(/\/workspace\/http:\/a_\w+:\[hidden\]@[\d.]+:\d+-d\/f:1: hit/);
    const audit = (await c.call("audit.query", { goal_id: a.goal_id, limit: 1000 })).entries;
    const all = JSON.stringify([listed, grepped, audit, fx.eventLog]);
    for (const piece of piecesOf(password)) expect(all).not.toContain(piece);
    await c.call("agent.stop", { agent_id: a.agent_id });
  }, 200_000);

  it("reads no piece of it in a stage failure (tool.errored: its entry, its event, the model's text)", async () => {
    // A name longer than the kernel takes, in a folder reached through the link: the exec's
    // judging stats its folder, which fails (ENAMETOOLONG) naming the folder as resolved.
    const long = "n".repeat(300);
    const script = server.script('manifest "link-errored"', [
      turn.toolUse("exec", {
        command: [
          `printf '%s\\n' "$HTTP_PROXY" > /workspace/p-proxy`,
          `mkdir -p "/workspace/$HTTP_PROXY"`,
          `ln -s "/workspace/$HTTP_PROXY" /workspace/d`,
        ].join("; "),
      }),
      turn.toolUse("exec", { command: `cd /workspace/d && cat ${long}/x` }),
      turn.text("done"),
    ]);
    const { goal_id } = await c.call("goal.submit", {
      goal: "fail a stage naming my password",
      manifest: manifest("link-errored", {
        capabilities: [
          "tool: exec",
          "file_read: /workspace/**",
          "file_write: /workspace/**",
          "exec: *",
          "network: plain.test:8080",
        ],
      }),
    });
    const end = await c.call("goal.wait", { goal_id, timeout_ms: 150_000 });
    expect(end.state).toBe("succeeded");
    const url = readFileSync(join(fx.home.config.goalsDir, goal_id, "workspace", "p-proxy"), "utf8").trim();
    const { password } = new URL(url);
    const shown = resultBefore(script.requests, 2);
    const audit = (await c.call("audit.query", { goal_id, limit: 1000 })).entries;
    const errored = audit.filter((e) => e.kind === "tool.errored");
    expect(errored).toHaveLength(1);
    const path = /\/workspace\/http:\/a_\w+:\[hidden\]@[\d.]+:\d+\/n{300}/;
    expect.soft((errored[0]?.payload as { error?: string } | undefined)?.error).toMatch(path);
    expect.soft(shown).toMatch(path);
    const events = fx.eventLog.filter((l) => l.includes("tool.errored"));
    expect.soft(events).toHaveLength(1);
    expect.soft(events[0]).toMatch(path);
    const all = JSON.stringify([shown, audit, fx.eventLog]);
    for (const piece of piecesOf(password)) expect(all).not.toContain(piece);
  }, 200_000);

  it("finds neither the config's API key nor its proxy password in a call's recorded input", async () => {
    const apiKey = fx.home.config.providers.anthropic.apiKey as string;
    expect(apiKey.length).toBeGreaterThanOrEqual(MIN_SECRET_LENGTH);
    let goal = "";
    // What the model learnt (a test knows it; a model could be told): the password its exec wrote.
    const passwordOf = () =>
      new URL(readFileSync(join(fx.home.config.goalsDir, goal, "workspace", "p-proxy"), "utf8").trim())
        .password;
    const kid = (password: string) => ({
      name: "kid",
      system_prompt: `Use the key ${apiKey} and the password ${password}.`,
      capabilities: ["tool: file_read", `file_read: /${apiKey}/**`],
    });
    server.script('manifest "input-secrets"', [
      turn.toolUse("exec", { command: `printf '%s\\n' "$HTTP_PROXY" > /workspace/p-proxy` }),
      // Children the parent may not start (a read it does not hold): each call fails in its run.
      () => turn.toolUse("spawn_agent", { manifest: kid(passwordOf()), message: `key ${apiKey}` }),
      () =>
        turn.toolUse("spawn_agents", {
          children: [{ manifest: kid(passwordOf()), message: `password ${passwordOf()}` }],
        }),
      () => turn.toolUse("file_write", { path: "/workspace/note", content: `${apiKey} ${passwordOf()}` }),
      turn.text("done"),
    ]);
    const submitted = await c.call("goal.submit", {
      goal: "write secrets into my calls",
      manifest: manifest("input-secrets", {
        capabilities: [
          "tool: exec",
          "tool: spawn_agent",
          "tool: spawn_agents",
          "tool: file_write",
          "spawn_child: [kid]",
          "file_read: /workspace/**",
          "file_write: /workspace/**",
          "exec: *",
          "network: plain.test:8080",
        ],
      }),
    });
    goal = submitted.goal_id;
    const end = await c.call("goal.wait", { goal_id: goal, timeout_ms: 150_000 });
    expect(end.state).toBe("succeeded");
    const password = passwordOf();
    const audit = (await c.call("audit.query", { goal_id: goal, limit: 1000 })).entries;
    const inputOf = (tool: string) =>
      audit.find((e) => e.kind === "tool.invoked" && (e.payload as { tool: string }).tool === tool)
        ?.payload as { input: Record<string, unknown> } | undefined;
    // Each entry keeps its shape: the texts in it blanked, nothing else changed.
    expect.soft(inputOf("spawn_agent")?.input).toEqual({
      manifest: {
        name: "kid",
        system_prompt: "Use the key *** and the password [hidden].",
        capabilities: ["tool: file_read", "file_read: /***/**"],
      },
      message: "key ***",
    });
    expect.soft(inputOf("spawn_agents")?.input).toEqual({
      children: [
        {
          manifest: {
            name: "kid",
            system_prompt: "Use the key *** and the password [hidden].",
            capabilities: ["tool: file_read", "file_read: /***/**"],
          },
          message: "password [hidden]",
        },
      ],
    });
    expect.soft(inputOf("file_write")?.input).toEqual({ path: "/workspace/note", content: "*** [hidden]" });
    const failed = audit.filter((e) => e.kind === "tool.failed");
    // spawn_agent fails in its run; spawn_agents answers each child's refusal in its result.
    expect.soft(failed.length).toBeGreaterThanOrEqual(1);
    for (const f of failed) expect.soft((f.payload as { error: string }).error).toContain("/***/**");
    const all = JSON.stringify([audit, fx.eventLog]);
    expect(all).not.toContain(apiKey);
    for (const piece of piecesOf(password)) expect(all).not.toContain(piece);
  }, 200_000);
});
