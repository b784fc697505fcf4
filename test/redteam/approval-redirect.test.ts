// Red team: a web_fetch approval stretched to another host by a redirect. The human
// approves "web_fetch of any URL on host A" (once, for the session or always); the server
// at A (or an open redirect on it) answers 302 to host B, and web_fetch followed the hop to
// B after checking only the network grants. With `network: *` and approval_required:
// [web_fetch] ("any site, but ask me"), one approved host with an open redirect was a pass
// to every host, its query string included. A hop to a host the human did not approve must
// not be fetched in the same call: the model can fetch that URL itself, and be asked.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { AidoError } from "../../src/errors.js";
import { type Harness, openHarness } from "../agent/harness.js";
import { type ProviderServer, startProviderServer } from "../support/provider-server.js";
import { answerNext } from "./fixture.js";

let server: ProviderServer;
let h: Harness;
const sites: Server[] = [];
let port = 0;
const hits: string[] = [];

function site(req: IncomingMessage, res: ServerResponse): void {
  const u = new URL(req.url ?? "/", "http://x");
  hits.push(`${req.headers.host}${u.pathname}${u.search}`);
  const to = u.searchParams.get("to");
  if (u.pathname === "/redirect" && to) res.writeHead(302, { location: to }).end();
  else res.writeHead(200, { "content-type": "text/plain" }).end(`page ${u.pathname}`);
}

beforeAll(async () => {
  server = await startProviderServer();
  h = await openHarness(server, {
    config: (c) => {
      c.approvals.timeoutMs = 5_000;
    },
  });
  const a = createServer(site);
  await new Promise<void>((r) => a.listen(0, "127.0.0.1", r));
  port = (a.address() as AddressInfo).port;
  const b = createServer(site);
  await new Promise<void>((r) => b.listen(port, "127.0.0.2", r));
  sites.push(a, b);
});
afterAll(async () => {
  for (const s of sites) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  await h?.close();
  await server?.close();
});

it("an approval of web_fetch on one host does not carry a redirect to another host", async () => {
  // Loopback needs grants naming the addresses: A = 127.0.0.1, B = 127.0.0.2.
  const s = h.rt.spawnAgent({
    name: "fetcher",
    system_prompt: "fetch",
    capabilities: ["tool: web_fetch", "network: 127.0.0.1:*", "network: 127.0.0.2:*"],
    approval_required: ["web_fetch"],
    budget: { max_tokens: 10_000 },
  });
  const call = (url: string) =>
    h.rt.invokeTool(s.agent_id, "web_fetch", { url }).catch((e: unknown) => e as AidoError);

  const first = call(`http://127.0.0.1:${port}/page`);
  expect((await answerNext(h.rt, "allow_session", 2_000))?.target).toBe(
    `web_fetch of any URL on host 127.0.0.1:${port}`,
  );
  expect(await first).not.toBeInstanceOf(AidoError);

  const to = encodeURIComponent(`http://127.0.0.2:${port}/leak?data=secret`);
  const hop = call(`http://127.0.0.1:${port}/redirect?to=${to}`);
  const asked = await answerNext(h.rt, "deny", 2_000);
  const r = await hop;
  expect(
    hits.filter((x) => x.startsWith("127.0.0.2")),
    `reached B unasked (asked: ${asked?.target}; result: ${r instanceof AidoError ? r.message : "ok"})`,
  ).toEqual([]);
  expect(r).toBeInstanceOf(AidoError);
  expect((r as AidoError).message).toContain("127.0.0.2");
});
