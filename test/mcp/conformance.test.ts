// The official MCP conformance suite (@modelcontextprotocol/conformance, run with the
// Node 22 scripts/ensure-node22.ts fetches: it needs fs.globSync) against `aido mcp serve --http`, for
// the server scenarios that apply to Aido (docs/mcp.md lists the others and why not).
// The suite cannot send a bearer token, so it talks through a forwarder that adds one
// and passes every other header, Host and Origin included, to the server's own checks.
// It needs no network beyond loopback.

import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ensureNode22 } from "../../scripts/ensure-node22.js";
import { requireDocker } from "../support/docker.js";
import { bearerForwarder, useMcpSuite } from "./fixture.js";

const ROOT = join(import.meta.dirname, "..", "..");
const SUITE = join(ROOT, "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js");

/** The server scenarios that apply: protocol, tools listing, logging, transport and its security. */
const APPLICABLE = [
  "server-initialize",
  "ping",
  "logging-set-level",
  "tools-list",
  "server-sse-multiple-streams",
  "dns-rebinding-protection",
];

let node22: string;
beforeAll(() => {
  requireDocker();
  node22 = ensureNode22(); // fetched once into node_modules/.cache
}, 180_000);
const suite = useMcpSuite();

describe("MCP conformance", () => {
  it("passes every applicable server scenario", async () => {
    await suite.start();
    const { url } = await suite.serveHttp();
    const token = readFileSync(join(suite.fx.home.config.home, "mcp-token"), "utf8").trim();
    const fwd = await bearerForwarder(url, token);
    try {
      for (const scenario of APPLICABLE) {
        // Asynchronous: the forwarder runs in this process and must keep serving meanwhile.
        const r = await new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
          execFile(
            node22,
            [SUITE, "server", "--url", fwd.url, "--scenario", scenario],
            { encoding: "utf8", timeout: 120_000, env: { PATH: process.env.PATH ?? "", NO_COLOR: "1" } },
            (e, stdout, stderr) => resolve({ status: e ? Number(e.code ?? 1) : 0, stdout, stderr }),
          );
        });
        const out = `${r.stdout}\n${r.stderr}`;
        expect(out, scenario).toMatch(/Passed: (\d+)\/\1, 0 failed/);
        expect(r.status, `${scenario}:\n${out}`).toBe(0);
      }
    } finally {
      await fwd.close();
    }
  });
});
