// The proxy's contract with its host on the audit: record("open") comes before the first
// byte upstream, and when it throws (the audit log cannot take it) the connection carries
// nothing — a plain request is answered 503, a tunnel is closed after its ClientHello.
// The host here is a policy that allows everything and whose log refuses every "open".

import { createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEgressProxy } from "../../src/egress/proxy.js";
import type { EgressProxy, EgressRecord } from "../../src/egress/types.js";
import { run, startUpstreams, UPSTREAM_ADDRESS, type Upstreams } from "./fixture.js";

let up: Upstreams;
let proxy: EgressProxy;
let listener: Server;
let port = 0;
const records: EgressRecord[] = [];

beforeAll(async () => {
  up = await startUpstreams();
  proxy = createEgressProxy(
    {
      authenticate: () => true,
      decide: async () => ({ allow: true }),
      record: (e) => {
        if (e.phase === "open") throw new Error("disk full");
        records.push(e);
      },
    },
    {
      hosts: { "granted.test": UPSTREAM_ADDRESS },
      connectTimeoutMs: 2000,
      idleTimeoutMs: 5000,
      maxConnections: 8,
      maxConnectionsPerCaller: 8,
    },
  );
  listener = createServer((s) => proxy.handle(s, { goalId: "g_test", agentId: "a_test" }));
  await new Promise<void>((r) => listener.listen(0, "127.0.0.1", () => r()));
  port = (listener.address() as { port: number }).port;
});

afterAll(async () => {
  await proxy?.close();
  await new Promise((r) => listener?.close(r));
  await up?.close();
});

describe("an open that cannot be recorded carries nothing", () => {
  it("a plain request: 503 naming why, and the upstream never asked", async () => {
    const served = up.seen.length;
    const r = await run("curl", ["-sS", "-i", "--max-time", "5", `http://granted.test:${up.httpPort}/x`], {
      http_proxy: `http://u:p@127.0.0.1:${port}`,
    });
    expect(r.stdout).toMatch(/^HTTP\/1.1 503[\s\S]*could not be recorded: disk full/);
    expect(up.seen.length).toBe(served);
    expect(records.at(-1)).toMatchObject({ phase: "denied", stage: "audit" });
  });

  it("a tunnel: closed after the ClientHello, no TLS session upstream", async () => {
    let secure = 0;
    const onSecure = () => secure++;
    up.https.on("secureConnection", onSecure);
    const r = await run(
      "curl",
      ["-sS", "--max-time", "5", "--cacert", up.caFile, `https://granted.test:${up.httpsPort}/`],
      { https_proxy: `http://u:p@127.0.0.1:${port}` },
    );
    up.https.off("secureConnection", onSecure);
    expect(r.code).not.toBe(0);
    expect(secure).toBe(0);
    expect(records.at(-1)).toMatchObject({ phase: "denied", stage: "audit", method: "CONNECT" });
  });
});
