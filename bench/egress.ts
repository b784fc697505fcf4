// bench/egress.ts — what the egress proxy costs. One HTTPS request on a new connection
// (TCP, TLS handshake, GET, the whole response) through the proxy (CONNECT with proxy
// credentials, the daemon's decision and its audited open and close, the SNI check, the
// relay) and directly to the same loopback upstream, interleaved in blocks so drift hits
// both; and a 64 MiB download through a CONNECT tunnel next to the same download directly.
// The proxy runs in process on a real runtime (SQLite audit log, tokens, policy), served on
// a loopback TCP listener as the relay would hand it streams. Reports p50/p95 and ratios.

import { connect as netConnect, type Socket } from "node:net";
import { type TLSSocket, connect as tlsConnect } from "node:tls";
import {
  type EgressBench,
  openEgressBench,
  startUpstreams,
  UPSTREAM_ADDRESS,
  type Upstreams,
} from "../test/egress/fixture.js";
import { startProviderServer } from "../test/support/provider-server.js";
import type { BenchSection } from "./report.js";
import { percentile, round } from "./report.js";

const REQUESTS = 200;
const BLOCK = 20;
const DOWNLOAD_MB = 64;
const DOWNLOAD_RUNS = 3;

/** CONNECT through the proxy as `agentId`; the socket once the proxy said 200. */
function connectThrough(proxyPort: number, agentId: string, target: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect(proxyPort, "127.0.0.1");
    s.once("error", reject);
    const auth = Buffer.from(`${agentId}:secret-${agentId}`).toString("base64");
    s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\nProxy-Authorization: Basic ${auth}\r\n\r\n`);
    let head = "";
    const onData = (c: Buffer) => {
      head += c.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      s.off("data", onData);
      if (!head.startsWith("HTTP/1.1 200")) return reject(new Error(`proxy said: ${head.split("\r\n")[0]}`));
      resolve(s);
    };
    s.on("data", onData);
  });
}

/** GET `path` over a new TLS connection (on `socket`, or straight to the upstream); bytes of the body. */
function get(up: Upstreams, path: string, socket?: Socket): Promise<number> {
  return new Promise((resolve, reject) => {
    const opts = { servername: "granted.test", ca: up.ca };
    const tls: TLSSocket = socket
      ? tlsConnect({ socket, ...opts })
      : tlsConnect({ host: UPSTREAM_ADDRESS, port: up.httpsPort, ...opts });
    let bytes = 0;
    let head = true;
    tls.once("error", reject);
    tls.once("secureConnect", () => {
      tls.write(`GET ${path} HTTP/1.1\r\nHost: granted.test\r\nConnection: close\r\n\r\n`);
    });
    tls.on("data", (c: Buffer) => {
      if (head) {
        const end = c.indexOf("\r\n\r\n");
        if (end < 0) return;
        head = false;
        bytes += c.length - end - 4;
      } else bytes += c.length;
    });
    tls.once("end", () => {
      tls.destroy();
      resolve(bytes);
    });
  });
}

export async function benchEgress(): Promise<BenchSection> {
  const server = await startProviderServer();
  const up = await startUpstreams();
  let bench: EgressBench | undefined;
  try {
    bench = await openEgressBench(server, (c) => {
      c.egress.hosts = { "granted.test": UPSTREAM_ADDRESS };
    });
    const agent = bench.agent("bench", ["network: granted.test:*", `network: ${UPSTREAM_ADDRESS}:*`]);
    const port = await bench.listen({ goalId: agent.goalId, agentId: agent.id });
    const target = `granted.test:${up.httpsPort}`;
    const viaProxy = async () => get(up, "/hello", await connectThrough(port, agent.id, target));
    const direct = () => get(up, "/hello");
    for (let i = 0; i < 10; i++) {
      await viaProxy();
      await direct();
    }
    const proxied: number[] = [];
    const straight: number[] = [];
    for (let done = 0; done < REQUESTS; done += BLOCK) {
      for (let i = 0; i < BLOCK; i++) {
        let t = performance.now();
        await viaProxy();
        proxied.push(performance.now() - t);
        t = performance.now();
        await direct();
        straight.push(performance.now() - t);
      }
    }
    const rate = async (fn: () => Promise<number>): Promise<number> => {
      const rates: number[] = [];
      for (let i = 0; i < DOWNLOAD_RUNS; i++) {
        const t = performance.now();
        const bytes = await fn();
        if (bytes !== DOWNLOAD_MB * 1024 * 1024) throw new Error(`downloaded ${bytes} bytes`);
        rates.push(bytes / 2 ** 20 / ((performance.now() - t) / 1000));
      }
      return percentile(rates, 50);
    };
    const big = `/big?mb=${DOWNLOAD_MB}`;
    const directRate = await rate(() => get(up, big));
    const proxyRate = await rate(async () => get(up, big, await connectThrough(port, agent.id, target)));
    const p50 = percentile(proxied, 50);
    const d50 = percentile(straight, 50);
    const audited = bench.audit("egress.close", agent.id).length;
    return {
      name: "egress",
      metrics: [
        { name: "HTTPS request, new connection, direct p50", value: round(d50, 2), unit: "ms" },
        {
          name: "HTTPS request, new connection, direct p95",
          value: round(percentile(straight, 95), 2),
          unit: "ms",
        },
        {
          name: "HTTPS request, new connection, through the proxy p50",
          value: round(p50, 2),
          unit: "ms",
          baseline: { name: "direct p50", value: round(d50, 2) },
        },
        {
          name: "HTTPS request, new connection, through the proxy p95",
          value: round(percentile(proxied, 95), 2),
          unit: "ms",
          baseline: { name: "direct p95", value: round(percentile(straight, 95), 2) },
        },
        { name: "proxy's added latency at p50", value: round(p50 - d50, 2), unit: "ms" },
        { name: `${DOWNLOAD_MB} MiB download, direct`, value: round(directRate, 1), unit: "MiB/s" },
        {
          name: `${DOWNLOAD_MB} MiB download, through CONNECT`,
          value: round(proxyRate, 1),
          unit: "MiB/s",
          baseline: { name: "direct", value: round(directRate, 1) },
        },
      ],
      notes: [
        `${REQUESTS} requests each way, interleaved in blocks of ${BLOCK}; each is a new TCP + TLS connection and one GET of a ~1 KB JSON body from an HTTPS server on ${UPSTREAM_ADDRESS}`,
        "through the proxy: CONNECT with Basic credentials over loopback TCP, the daemon's decision (token, grants, policy), the name resolved from egress.hosts and its inward address judged (literal grant), the SNI checked, egress.open and egress.close written to the SQLite audit log",
        `${audited} connections audited as egress.close during the run`,
        `downloads: median of ${DOWNLOAD_RUNS} runs each; client, proxy and upstream share one process (and its core), so the ratio, not the absolute rate, is the measure`,
      ],
    };
  } finally {
    await bench?.close();
    await up.close();
    await server.close();
  }
}
