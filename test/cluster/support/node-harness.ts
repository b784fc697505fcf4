// test/cluster/support/node-harness.ts — a Runtime in this process wired to a ClusterNode made
// after it (the node needs the Runtime), as the daemon wires them: the Runtime's first model
// call, inference slots and tool calls go through the node once `node()` returns one. Short
// leases so the fence and the looks happen within a test.

import type Docker from "dockerode";
import type { ClusterNode } from "../../../src/cluster/node.js";
import type { RuntimeOptions } from "../../../src/kernel/runtime.js";
import { DockerBackend } from "../../../src/sandbox/docker.js";
import { type Harness, openHarness } from "../../agent/harness.js";
import type { ProviderServer } from "../../support/provider-server.js";

export const NODE_LEASE_MS = 1_000;
export const NODE_HEARTBEAT_MS = 250;

export function openNodeHarness(
  server: ProviderServer,
  opts: {
    /** The Redis the node connects to (a proxy's URL for a partition). */
    redisUrl: string;
    nodeId: string;
    /** The node, once made; until then the hooks let every call through. */
    node: () => ClusterNode | undefined;
    /**
     * The sandbox backend; "docker": the runtime's own on the real engine (default: none); a
     * dockerode client (an engine proxy, test/support/engine-proxy.ts): a DockerBackend on it.
     */
    backend?: RuntimeOptions["backend"] | "docker" | Docker;
    /** Lease and heartbeat (default NODE_LEASE_MS, NODE_HEARTBEAT_MS). */
    leaseMs?: number;
    heartbeatMs?: number;
    /** More config (MCP servers, grant ceilings). */
    config?: (c: Harness["home"]["config"]) => void;
  },
): Promise<Harness> {
  const b = opts.backend;
  return openHarness(server, {
    ...(b === "docker"
      ? { backend: undefined }
      : b && "getContainer" in b
        ? { backendOf: (c) => new DockerBackend(c, { docker: b }) }
        : b
          ? { backend: b }
          : {}),
    config: (c) => {
      opts.config?.(c);
      c.cluster = {
        redisUrl: opts.redisUrl,
        nodeId: opts.nodeId,
        leaseMs: opts.leaseMs ?? NODE_LEASE_MS,
        heartbeatMs: opts.heartbeatMs ?? NODE_HEARTBEAT_MS,
        onRedisLoss: "hold",
      };
    },
    beforeFirstModelCall: (goalId) => opts.node()?.beforeFirstModelCall(goalId) ?? Promise.resolve(),
    inferenceSlot: (provider, signal) =>
      opts.node()?.inferenceSlot(provider, signal) ?? Promise.resolve(() => {}),
    beforeToolCall: (goalId, signal) => opts.node()?.beforeToolCall(goalId, signal) ?? Promise.resolve(),
  });
}
