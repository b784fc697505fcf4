// test/egress/fixture.ts — the egress proxy's bench on this host, no Docker: a real Runtime
// (real SQLite audit, approvals, tokens; the agent harness's container-less backend) whose
// EgressGate judges every connection, its proxy served on loopback TCP listeners (one per
// caller, as the relay gives each agent its own port), and stand-in upstream servers on
// 127.0.0.2: plain HTTP and HTTPS with a certificate made here by openssl for the test names.
// Tests point names at the upstreams through `egress.hosts` and, since loopback is an inward
// address, grant it literally (`network: 127.0.0.2:*`).

import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { EgressProxy } from "../../src/egress/types.js";
import type { Runtime } from "../../src/kernel/runtime.js";
import type { AuditEntry } from "../../src/security/audit-events.js";
import { openHarness } from "../agent/harness.js";
import type { TempHome } from "../support/home.js";
import type { ProviderServer } from "../support/provider-server.js";

export const UPSTREAM_ADDRESS = "127.0.0.2";

export interface Upstreams {
  http: http.Server;
  https: https.Server;
  httpPort: number;
  httpsPort: number;
  /** The certificate (PEM) clients trust: names granted.test, evil.test, other.test. */
  ca: string;
  caFile: string;
  /** Requests the upstreams served, "METHOD host path". */
  seen: string[];
  close(): Promise<void>;
}

/** HTTP and HTTPS servers on 127.0.0.2; GET /big?mb=N answers N MiB of zeros. */
export async function startUpstreams(): Promise<Upstreams> {
  const dir = mkdtempSync(join(tmpdir(), "aido-egress-cert-"));
  const key = join(dir, "key.pem");
  const cert = join(dir, "cert.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=granted.test",
      "-addext",
      "subjectAltName=DNS:granted.test,DNS:evil.test,DNS:other.test",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-keyout",
      key,
      "-out",
      cert,
    ],
    { stdio: "ignore" },
  );
  const ca = readFileSync(cert, "utf8");
  const seen: string[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    seen.push(`${req.method} ${req.headers.host} ${req.url}`);
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/big") {
      const total = Number(url.searchParams.get("mb") ?? "1") * 1024 * 1024;
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": total });
      const chunk = Buffer.alloc(64 * 1024);
      let sent = 0;
      const pump = () => {
        while (sent < total) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        res.end();
      };
      return pump();
    }
    const body = JSON.stringify({ path: req.url, host: req.headers.host, headers: req.headers });
    res.writeHead(200, { "content-type": "application/json", "x-upstream": "yes" });
    res.end(body);
  };
  const plain = http.createServer(handler);
  const secure = https.createServer({ key: readFileSync(key), cert: ca }, handler);
  const listen = (s: http.Server) =>
    new Promise<number>((resolve) =>
      s.listen(0, UPSTREAM_ADDRESS, () => resolve((s.address() as { port: number }).port)),
    );
  const httpPort = await listen(plain);
  const httpsPort = await listen(secure);
  return {
    http: plain,
    https: secure,
    httpPort,
    httpsPort,
    ca,
    caFile: cert,
    seen,
    async close() {
      plain.closeAllConnections();
      secure.closeAllConnections();
      await Promise.all([new Promise((r) => plain.close(r)), new Promise((r) => secure.close(r))]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface EgressBench {
  rt: Runtime;
  home: TempHome;
  proxy: EgressProxy;
  /** A standalone agent (its own pseudo-goal) holding `capabilities`. */
  agent(name: string, capabilities: string[]): { id: string; goalId: string };
  /** A loopback port whose connections the proxy serves as `caller` (the relay's per-agent port). */
  listen(caller: { goalId: string; agentId: string }): Promise<number>;
  /** The proxy URL with `agentId`'s credentials (its secret, or another's). */
  proxyUrl(port: number, agentId: string, as?: string): string;
  /** Audit entries of a kind for an agent, oldest first. */
  audit(kind: string, agentId?: string): AuditEntry[];
  close(): Promise<void>;
}

/** Secrets the bench's authenticate() accepts: user = agent id, password = its secret. */
const secretOf = (agentId: string) => `secret-${agentId}`;

export async function openEgressBench(
  server: ProviderServer,
  tune: (c: TempHome["config"]) => void,
  proxyOpts: { headerTimeoutMs?: number } = {},
): Promise<EgressBench> {
  const h = await openHarness(server, { config: tune });
  const rt = h.rt;
  const proxy = rt.egress.proxy(
    (caller, user, password) => user === caller.agentId && password === secretOf(caller.agentId),
    proxyOpts,
  );
  const listeners: Server[] = [];
  const sockets = new Set<Socket>();
  return {
    rt,
    home: h.home,
    proxy,
    agent(name, capabilities) {
      const s = rt.spawnAgent({
        name,
        system_prompt: `egress agent ${name}`,
        capabilities,
        budget: { max_tokens: 10_000 },
      });
      return { id: s.agent_id, goalId: s.goal_id };
    },
    async listen(caller) {
      const srv = createServer((socket) => {
        sockets.add(socket);
        socket.once("close", () => sockets.delete(socket));
        proxy.handle(socket, caller);
      });
      listeners.push(srv);
      return new Promise((resolve) =>
        srv.listen(0, "127.0.0.1", () => resolve((srv.address() as { port: number }).port)),
      );
    },
    proxyUrl(port, agentId, as = agentId) {
      return `http://${encodeURIComponent(as)}:${encodeURIComponent(secretOf(agentId))}@127.0.0.1:${port}`;
    },
    audit(kind, agentId) {
      return rt.audit
        .query({ kind: kind as never, ...(agentId ? { agent_id: agentId } : {}), limit: 1000 })
        .sort((a, b) => a.seq - b.seq);
    },
    async close() {
      await proxy.close();
      for (const s of sockets) s.destroy();
      await Promise.all(listeners.map((l) => new Promise((r) => l.close(r))));
      await h.close();
    },
  };
}

/** Run a program on this host; its exit code, stdout and stderr (never throws on a failure exit). */
export function run(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 15_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { env: { PATH: process.env.PATH ?? "", ...env }, timeout: timeoutMs },
      (err, stdout, stderr) => {
        resolve({
          code: err ? ((err as { code?: number }).code ?? 1) : 0,
          stdout: String(stdout),
          stderr: String(stderr),
        });
      },
    );
  });
}
