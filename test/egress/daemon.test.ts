// Egress through a real agentd, the way a human meets it: an agent spawned over the socket,
// its connection waiting on `policy.confirm: ["network: *"]` until a socket client answers
// `approval.respond`, the connection's events streamed by `events.subscribe` (what
// `aido watch` reads) and its audit entries read back with `audit.query`.

import { createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { AidoClient as Client } from "../../src/client/client.js";
import type { EgressProxy } from "../../src/egress/types.js";
import { type DaemonFixture, manifest, startFixture } from "../daemon/fixture.js";
import { type ProviderServer, startProviderServer } from "../support/provider-server.js";
import { run, startUpstreams, UPSTREAM_ADDRESS, type Upstreams } from "./fixture.js";

let server: ProviderServer;
let up: Upstreams;
let fx: DaemonFixture;
let proxy: EgressProxy;
let listener: Server | undefined;

beforeAll(async () => {
  server = await startProviderServer();
  up = await startUpstreams();
  fx = await startFixture(server, {
    config: (c) => {
      c.egress.hosts = { "granted.test": UPSTREAM_ADDRESS };
      c.policy.confirm = ["network: *"];
      c.grantCeilings = [[`network: ${UPSTREAM_ADDRESS}:*`]];
    },
  });
  proxy = fx.daemon.runtime.egress.proxy((caller, user, pw) => user === caller.agentId && pw === "pw");
}, 60_000);

afterAll(async () => {
  await proxy?.close();
  await new Promise((r) => (listener ? listener.close(r) : r(undefined)));
  await fx?.close();
  await up?.close();
  await server?.close();
});

async function waitPending(client: AidoClient): Promise<{ id: string; tool: string; summary: string }> {
  for (let i = 0; i < 200; i++) {
    const { approvals } = await client.call("approval.list", {});
    const pending = approvals.find((a) => a.status === "pending");
    if (pending) return pending;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("no approval request appeared");
}

describe("egress through agentd", () => {
  it("asks over the socket, streams the connection's events, and audits it", async () => {
    const client = await fx.client();
    const spawned = (await client.call("agent.spawn", {
      manifest: manifest("netter", { capabilities: [`network: ${UPSTREAM_ADDRESS}:*`] }),
    })) as { agent_id: string; goal_id: string };
    const caller = { goalId: spawned.goal_id, agentId: spawned.agent_id };
    listener = createServer((s) => proxy.handle(s, caller));
    await new Promise<void>((r) => listener?.listen(0, "127.0.0.1", () => r()));
    const port = (listener.address() as { port: number }).port;
    const events: { type: string; [k: string]: unknown }[] = [];
    // A standalone agent's pseudo-goal is no goal to subscribe to: every event, this goal's kept.
    const sub = await Client.subscribe(fx.home.config.socketPath, undefined, (e) => {
      if (e.goal_id === spawned.goal_id) events.push(e);
    });

    const fetching = run(
      "curl",
      ["-sS", "--max-time", "15", "--cacert", up.caFile, `https://granted.test:${up.httpsPort}/socket`],
      {
        HTTPS_PROXY: `http://${spawned.agent_id}:pw@127.0.0.1:${port}`,
      },
    );
    for (const _ of ["the name", "its address"]) {
      const pending = await waitPending(client);
      expect(pending.tool).toBe("egress");
      await client.call("approval.respond", { id: pending.id, decision: "allow_once" });
    }
    const r = await fetching;
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout).path).toBe("/socket");

    for (let i = 0; i < 200 && !events.some((e) => e.type === "egress.close"); i++)
      await new Promise((res) => setTimeout(res, 25));
    sub.close();
    const types = events.map((e) => e.type);
    expect(types).toEqual(
      expect.arrayContaining(["approval.requested", "approval.decided", "egress.open", "egress.close"]),
    );
    const close = events.find((e) => e.type === "egress.close");
    expect(close).toMatchObject({ agent_id: spawned.agent_id, host: "granted.test", port: up.httpsPort });
    expect(close?.bytes_down).toBeGreaterThan(0);

    const { entries } = await client.call("audit.query", { agent_id: spawned.agent_id, kind: "egress.open" });
    expect(entries[0]?.payload).toMatchObject({
      host: "granted.test",
      method: "CONNECT",
      address: UPSTREAM_ADDRESS,
    });
  });
});
