// test/egress/docker-upstream.ts — the "internet" for tests and the bench that run goal
// containers on egress networks: a Docker network the caller names on a TEST-NET subnet
// (not an inward address, so the proxy treats it as the outside; the daemon on the host
// reaches it through the engine's routes) holding one upstream container of the sandbox
// image: plain HTTP on 8080 ("plain-ok <path>") and HTTPS on 8443 ("secure-ok <path>") with
// a self-signed certificate made here by openssl for secure.test and other.test, which
// clients trust as their CA. Everything carries the label aido.test=egress.

import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const SERVE = [
  "const http = require('http'), https = require('https'), fs = require('fs');",
  "http.createServer((q, s) => s.end('plain-ok ' + q.url)).listen(8080);",
  "https.createServer({ key: fs.readFileSync('/certs/key.pem'), cert: fs.readFileSync('/certs/cert.pem') },",
  "  (q, s) => s.end('secure-ok ' + q.url)).listen(8443);",
].join("\n");

export interface DockerUpstream {
  network: string;
  ip: string;
  /** Host folder with cert.pem (the CA clients trust) and key.pem, readable by the image's user. */
  certDir: string;
  ca: string;
  close(): void;
}

function docker(...args: string[]): string {
  return execFileSync("docker", args, { encoding: "utf8" }).trim();
}

function removeQuietly(container: string, network: string): void {
  execFileSync("sh", [
    "-c",
    `docker rm -f ${container} >/dev/null 2>&1; docker network rm ${network} >/dev/null 2>&1; true`,
  ]);
}

/** An upstream's network: its name, its subnet, the server's address in it. */
export interface UpstreamNet {
  name: string;
  subnet: string;
  ip: string;
}

/**
 * Every user's upstream network, each on a /28 of TEST-NET-3 of its own. Small: the engine
 * routes all of it into the network while it exists, so a wider subnet could shadow real
 * hosts of the range. Of its own: test files run in parallel, and the engine refuses a
 * network whose subnet overlaps one that exists ("Pool overlaps with other one on this
 * address space"); the human sandbox's and the MCP servers' egress tests once shared
 * 203.0.113.48/28 and failed when they ran at once.
 */
export const UPSTREAM_NETS = {
  goalEgress: { name: "egressnet-goal", subnet: "203.0.113.0/28", ip: "203.0.113.10" },
  bench: { name: "egressnet-bench", subnet: "203.0.113.16/28", ip: "203.0.113.26" },
  humanSandbox: { name: "hsnet-up", subnet: "203.0.113.48/28", ip: "203.0.113.58" },
  mcpServerEgress: { name: "mcpnet-up", subnet: "203.0.113.64/28", ip: "203.0.113.66" },
  mcpEgress: { name: "mcpeg-up", subnet: "203.0.113.80/28", ip: "203.0.113.90" },
  mcpLandlockOff: { name: "mcpeg-off", subnet: "203.0.113.96/28", ip: "203.0.113.100" },
  mcpSpellings: { name: "mcpsp-up", subnet: "203.0.113.112/28", ip: "203.0.113.122" },
  mcpSubmitReach: { name: "mcpreach-up", subnet: "203.0.113.128/28", ip: "203.0.113.138" },
  plumbing: { name: "egressnet-plumbing", subnet: "198.51.100.0/28", ip: "198.51.100.10" },
} as const satisfies Record<string, UpstreamNet>;
const subnets = Object.values(UPSTREAM_NETS).map((n) => n.subnet);
if (new Set(subnets).size !== subnets.length)
  throw new Error(`UPSTREAM_NETS shares a subnet: ${subnets.join(", ")}`);

/** `name`-upstream on network `name` (one of UPSTREAM_NETS), the server at `ip`. */
export async function startDockerUpstream(net: UpstreamNet, image: string): Promise<DockerUpstream> {
  const { name, subnet, ip } = net;
  const certDir = mkdtempSync(join(tmpdir(), `${name}-cert-`));
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
      "/CN=secure.test",
      "-addext",
      "subjectAltName=DNS:secure.test,DNS:other.test",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-keyout",
      join(certDir, "key.pem"),
      "-out",
      join(certDir, "cert.pem"),
    ],
    { stdio: "ignore" },
  );
  chmodSync(certDir, 0o755);
  chmodSync(join(certDir, "key.pem"), 0o644);
  const container = `${name}-upstream`;
  removeQuietly(container, name);
  docker("network", "create", "--subnet", subnet, "--label", "aido.test=egress", name);
  const args = ["--name", container, "--label", "aido.test=egress", "--network", name, "--ip", ip];
  docker("run", "-d", ...args, "-v", `${certDir}:/certs:ro`, image, "node", "-e", SERVE);
  // Both servers listen before the caller's first request; an upstream that never listens
  // fails the set-up (a test that expects it unreachable would pass against nothing).
  for (let i = 0; ; i++) {
    if (i === 100) {
      removeQuietly(container, name);
      throw new Error(`${container} did not listen on 8080 and 8443 after 100 tries`);
    }
    const ready = execFileSync("sh", [
      "-c",
      `docker exec ${container} python3 -c "import socket; [socket.create_connection(('127.0.0.1', p), 1) for p in (8080, 8443)]" >/dev/null 2>&1 && echo yes || true`,
    ])
      .toString()
      .trim();
    if (ready === "yes") break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    network: name,
    ip,
    certDir,
    ca: readFileSync(join(certDir, "cert.pem"), "utf8"),
    close() {
      removeQuietly(container, name);
      rmSync(certDir, { recursive: true, force: true });
    },
  };
}
