// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are shell text, not templates
// Issue 10's exec attacks through `tool.invoke` on the daemon socket, in a real container:
// a socket client acting for an agent is refused before anything runs (-32001 capability,
// -32004 policy), the refusal names what is wrong, and `audit.query` over the same socket
// shows the tool.denied entry with its stage. The agent-loop side is in
// test/redteam/exec-boundary.test.ts.

import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { daemonBuiltinTools } from "../../src/daemon/tools.js";
import { requireDocker } from "../support/docker.js";
import { type ProviderServer, startProviderServer } from "../support/provider-server.js";
import { type DaemonFixture, manifest, rpcError, startFixture } from "./fixture.js";

let server: ProviderServer;
let fx: DaemonFixture;
let client: AidoClient;
let reader: { agent_id: string; goal_id: string };
let root: { agent_id: string; goal_id: string };

beforeAll(async () => {
  requireDocker();
  server = await startProviderServer();
  fx = await startFixture(server, {
    runtime: { backend: undefined, builtinTools: daemonBuiltinTools },
    config: (c) => {
      c.policy.deny.push("path: /workspace/vault/**");
      c.policy.snapshotBeforeMutation = false;
      // The operator lets socket clients hold every exec grant: only the analysis and the rules stand.
      c.grantCeilings = [["tool: *", "file_read: /**", "file_write: /workspace/**", "exec: *"]];
    },
  });
  client = await fx.client();
  reader = await client.call("agent.spawn", {
    manifest: manifest("reader", {
      capabilities: [
        "tool: exec",
        "file_read: /workspace",
        "file_read: /workspace/public/**",
        "exec: cat *",
        "exec: echo *",
        "exec: sort *",
      ],
    }),
  });
  root = await client.call("agent.spawn", {
    manifest: manifest("root", {
      capabilities: ["tool: exec", "file_read: /workspace/**", "file_write: /workspace/**", "exec: *"],
    }),
  });
  for (const a of [reader, root]) {
    const r = await client.call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "exec",
      input: { command: "echo up" },
    });
    expect(r.is_error).toBe(false);
  }
  const ws = join(fx.home.config.goalsDir, reader.goal_id, "workspace");
  mkdirSync(join(ws, "secret"));
  writeFileSync(join(ws, "secret", "k.txt"), "TOPSECRET\n");
  mkdirSync(join(fx.home.config.goalsDir, root.goal_id, "workspace", "vault"));
}, 180_000);
afterAll(async () => {
  for (const a of [reader, root]) if (a) await fx?.daemon.runtime.backend.remove(a.goal_id).catch(() => {});
  await fx?.close();
  await server?.close();
});

async function refusedOverTheSocket(
  agent: { agent_id: string },
  command: string,
  rpcCode: number,
  why: RegExp,
) {
  const e = await rpcError(
    client.call("tool.invoke", { agent_id: agent.agent_id, tool: "exec", input: { command } }),
  );
  expect(e.rpcCode, command).toBe(rpcCode);
  expect(e.message, command).toMatch(why);
  const { entries } = await client.call("audit.query", {
    agent_id: agent.agent_id,
    kind: "tool.denied",
    limit: 1,
  });
  const stage = rpcCode === -32001 ? "capability" : "policy";
  expect(entries[0]!.payload, command).toMatchObject({ tool: "exec", stage });
  expect((entries[0]!.payload as { reason: string }).reason).toMatch(why);
}

describe("issue 10's exec attacks through tool.invoke", () => {
  it("refuses the ((${X:-...})) and $'...' tricks before anything runs", async () => {
    await refusedOverTheSocket(
      reader,
      '((${X:-sh -c "id; echo x > /workspace/f"}))',
      -32001,
      /exec of "\$\{X/,
    );
    await refusedOverTheSocket(
      root,
      '((${X:-sh -c "id; echo x > /workspace/f"}))',
      -32004,
      /dynamic-command/,
    );
    await refusedOverTheSocket(reader, "echo $'x\\' ; id ; echo ' #'", -32004, /\$'\.\.\.'/);
    await refusedOverTheSocket(root, "((${X:-git push origin main}))", -32004, /dynamic-command/);
    for (const a of [reader, root]) {
      expect(existsSync(join(fx.home.config.goalsDir, a.goal_id, "workspace", "f"))).toBe(false);
    }
  });

  it("refuses reads outside the file grants, naming the argument, its canonical path and the missing grant", async () => {
    await refusedOverTheSocket(
      reader,
      "cat /workspace/public/../secret/k.txt",
      -32001,
      /no capability grants file_read or file_write on \/workspace\/secret\/k\.txt \(argument 1 of cat: "\/workspace\/public\/\.\.\/secret\/k\.txt"\)/,
    );
    await refusedOverTheSocket(reader, "cat /workspace/secret/k.txt", -32001, /\/workspace\/secret\/k\.txt/);
    await refusedOverTheSocket(
      reader,
      "cd /workspace/secret && cat k.txt",
      -32001,
      /file_read on \/workspace\/secret \(the cd target/,
    );
  });

  it("refuses options that run other programs, and the operator's path rule on arguments", async () => {
    await refusedOverTheSocket(
      reader,
      "sort --compress-program=sh /workspace/public/x",
      -32001,
      /exec of "sh"/,
    );
    await refusedOverTheSocket(
      root,
      "cat /workspace/vault/x",
      -32004,
      /policy rule "path: \/workspace\/vault\/\*\*"/,
    );
    await refusedOverTheSocket(root, "bash -c id", -32004, /runs bash/);
  });
});
