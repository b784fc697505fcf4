// bench/egress-container.ts — the whole way out of a goal container: one HTTPS request on a
// new connection (python's urllib: TCP, TLS, GET, the response) from an agent's exec in a
// goal container on its egress network, through the relay container, the daemon's Unix
// socket listener and the proxy (credentials, decision, audited open and close, SNI), next
// to the same request from a container sitting on the upstream's network directly. Both
// clients are the same python script timing each request inside its container, run in
// alternating blocks so drift hits both; the upstream is a container on a Docker network
// (test/egress/docker-upstream.ts). Reports p50/p95 and the added latency.

import { execFileSync } from "node:child_process";
import { openHarness } from "../test/agent/harness.js";
import { type DockerUpstream, startDockerUpstream, UPSTREAM_NETS } from "../test/egress/docker-upstream.js";
import { startProviderServer } from "../test/support/provider-server.js";
import type { BenchSection } from "./report.js";
import { percentile, round } from "./report.js";

const BLOCKS = 5;
const PER_BLOCK = 20;
const UPSTREAM_IP = UPSTREAM_NETS.bench.ip;

/** N requests, each on a new connection; prints one JSON list of milliseconds. */
const CLIENT = `
import json, ssl, sys, time, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[2])
times = []
for i in range(int(sys.argv[1])):
    t = time.perf_counter()
    body = urllib.request.urlopen('https://secure.test:8443/b', context=ctx, timeout=10).read()
    times.append((time.perf_counter() - t) * 1000)
    assert body == b'secure-ok /b', body
print(json.dumps(times))
`;

export async function benchEgressContainer(): Promise<BenchSection> {
  const server = await startProviderServer();
  let upstream: DockerUpstream | undefined;
  const h = await openHarness(server, {
    backend: undefined,
    config: (c) => {
      c.egress = { ...c.egress, hosts: { "secure.test": UPSTREAM_IP } };
    },
  });
  try {
    const image = h.home.config.sandbox.image;
    upstream = await startDockerUpstream(UPSTREAM_NETS.bench, image);
    const agent = h.rt.spawnAgent({
      name: "egress-bench",
      system_prompt: "bench",
      capabilities: [
        "tool: exec",
        "tool: file_write",
        "exec: python3 *",
        "file_read: /workspace/**",
        "file_write: /workspace/**",
        "network: secure.test:8443",
      ],
      budget: { max_tokens: 1000 },
    });
    const id = agent.agent_id;
    await h.rt.invokeTool(id, "file_write", { path: "/workspace/ca.pem", content: upstream.ca });
    await h.rt.invokeTool(id, "file_write", { path: "/workspace/client.py", content: CLIENT });
    const inGoal = async (n: number): Promise<number[]> => {
      const r = await h.rt.invokeTool(id, "exec", {
        command: `python3 /workspace/client.py ${n} /workspace/ca.pem`,
      });
      const out = /--- stdout ---\n(.*)\n/.exec(r.output)?.[1];
      if (r.isError || !out) throw new Error(`the goal's client failed: ${r.output}`);
      return JSON.parse(out) as number[];
    };
    const onUpstreamNet = (n: number): number[] =>
      JSON.parse(
        execFileSync(
          "docker",
          [
            "run",
            "--rm",
            "--label",
            "aido.test=egress",
            "--network",
            upstream?.network as string,
            "--add-host",
            `secure.test:${UPSTREAM_IP}`,
            "-v",
            `${upstream?.certDir}:/certs:ro`,
            image,
            "python3",
            "-c",
            CLIENT,
            String(n),
            "/certs/cert.pem",
          ],
          { encoding: "utf8" },
        ),
      ) as number[];
    await inGoal(5);
    onUpstreamNet(5);
    const proxied: number[] = [];
    const direct: number[] = [];
    for (let b = 0; b < BLOCKS; b++) {
      proxied.push(...(await inGoal(PER_BLOCK)));
      direct.push(...onUpstreamNet(PER_BLOCK));
    }
    const p50 = percentile(proxied, 50);
    const d50 = percentile(direct, 50);
    return {
      name: "egress-container",
      metrics: [
        {
          name: "HTTPS request from a container on the upstream's network p50",
          value: round(d50, 2),
          unit: "ms",
        },
        {
          name: "HTTPS request from a goal container through relay + proxy p50",
          value: round(p50, 2),
          unit: "ms",
          baseline: { name: "direct p50", value: round(d50, 2) },
        },
        {
          name: "HTTPS request from a goal container through relay + proxy p95",
          value: round(percentile(proxied, 95), 2),
          unit: "ms",
          baseline: { name: "direct p95", value: round(percentile(direct, 95), 2) },
        },
        { name: "relay + proxy's added latency at p50", value: round(p50 - d50, 2), unit: "ms" },
      ],
      notes: [
        `${BLOCKS * PER_BLOCK} requests each way in alternating blocks of ${PER_BLOCK}, each a new TCP + TLS connection and one GET, timed inside the container by python's urllib (the goal's through HTTPS_PROXY with the agent's credentials: CONNECT to the relay, the daemon's listener, the proxy's decision, audited open and close, SNI check)`,
        "the upstream is a node HTTPS server in a container on a Docker network at 203.0.113.16/28; the direct client runs in a container on that network",
      ],
    };
  } finally {
    await h.close();
    upstream?.close();
    await server.close();
  }
}
