// test/cluster/compose.test.ts — docker/cluster-compose.yaml, the three-node cluster on one
// engine: its shape checked against what run-aido.sh gives a lone daemon (the engine's
// socket, the home at the same path inside as outside, provider settings by name), Redis
// reachable on the compose network only and only with the env file's password, and the
// file brought up for real with docker-compose: three daemons that see each other.
// The daemon image is AIDO_DAEMON_IMAGE or aido-agentd:latest (docker/build.sh builds it);
// the Redis image is built here by docker/build-redis.sh (no registry needed).

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { AidoClient } from "../../src/client/client.js";
import { MODEL } from "../agent/harness.js";
import { bridgeGateway, requireDocker } from "../support/docker.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import { forGoal, manifest } from "./fixture.js";

const ROOT = join(import.meta.dirname, "..", "..");
const FILE = join(ROOT, "docker", "cluster-compose.yaml");
const PROJECT = `cluster2-compose-${process.pid}`;
const DAEMON_IMAGE = process.env.AIDO_DAEMON_IMAGE ?? "aido-agentd:latest";

interface Service {
  image: string;
  command?: string[];
  ports?: unknown[];
  networks?: string[] | Record<string, unknown>;
  volumes?: string[];
  environment?: Record<string, string | null>;
  labels?: Record<string, string>;
  init?: boolean;
}

/** run-aido.sh's pass_vars: the names a lone daemon's container gets from the shell. */
function runAidoPassVars(): string[] {
  const src = readFileSync(join(ROOT, "run-aido.sh"), "utf8");
  const m = /pass_vars=\(([^)]*)\)/.exec(src);
  if (!m) throw new Error("run-aido.sh has no pass_vars=( ... )");
  return (m[1] ?? "").split(/\s+/).filter((s) => s !== "");
}

function service(doc: { services: Record<string, Service> }, name: string): Service {
  const s = doc.services[name];
  if (!s) throw new Error(`no service ${name}`);
  return s;
}

interface ClusterStatus {
  enabled: boolean;
  node_id: string;
  nodes: { node_id: string; alive: boolean }[];
}

function compose(args: string[], env: Record<string, string>): string {
  return execFileSync("docker-compose", ["-p", PROJECT, "-f", FILE, ...args], {
    env: { ...process.env, ...env },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
}

describe("docker/cluster-compose.yaml", () => {
  beforeAll(() => {
    // docker-compose (Debian's package) comes with the cluster tests' set-up.
    execFileSync("bash", [join(ROOT, "scripts", "ensure-redis.sh")], { stdio: "inherit" });
  });
  const dir = mkdtempSync(join(tmpdir(), "cluster2-compose-"));
  const envFile = join(dir, "cluster.env");
  const env: Record<string, string> = { AIDO_DAEMON_IMAGE: DAEMON_IMAGE };
  writeFileSync(envFile, `REDIS_PASSWORD=pw-${process.pid}-x\nAIDO_CLUSTER_DIR=${join(dir, "homes")}\n`);

  afterAll(() => {
    try {
      compose(["--env-file", envFile, "down", "-v", "--timeout", "5"], env);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("starts each daemon as run-aido.sh does, and keeps Redis on the compose network behind a password with AOF on", () => {
    const doc = parse(readFileSync(FILE, "utf8"), { merge: true }) as { services: Record<string, Service> };
    const nodes = Object.keys(doc.services).filter((s) => s.startsWith("node-"));
    expect(nodes).toEqual(["node-1", "node-2", "node-3"]);
    const passVars = runAidoPassVars();
    for (const name of nodes) {
      const s = service(doc, name);
      expect(s.image).toBe("${AIDO_DAEMON_IMAGE:-aido-agentd:latest}");
      expect(s.init).toBe(true);
      expect(s.ports).toBeUndefined();
      expect(s.volumes).toContain("${DOCKER_SOCKET:-/var/run/docker.sock}:/var/run/docker.sock");
      const home = `\${AIDO_CLUSTER_DIR}/${name}`;
      expect(s.volumes).toContain(`${home}:${home}`);
      expect(s.environment?.AIDO_HOME).toBe(home);
      expect(s.labels?.["aido.home"]).toContain(`/${name}`);
      expect(s.environment?.AIDO_REDIS_URL).toMatch(
        /^redis:\/\/:\$\{REDIS_PASSWORD:\?[^}]*\}@redis:6379\/0$/,
      );
      // Every variable passed by name is one run-aido.sh passes too (no value in the file).
      for (const [k, v] of Object.entries(s.environment ?? {})) {
        if (v === null) expect(passVars, k).toContain(k);
      }
    }
    const redis = service(doc, "redis");
    expect(redis.image).toBe("${AIDO_REDIS_IMAGE:-aido-redis:latest}");
    expect(redis.ports).toBeUndefined();
    expect(redis.networks).toEqual(["cluster"]);
    const cmd = (redis.command ?? []).join(" ");
    expect(cmd).toContain("requirepass");
    expect(cmd).toContain("--appendonly yes");
    // The password is read from the environment inside, never written into the command.
    expect(cmd).toContain("$$REDIS_PASSWORD");
  });

  it("is refused by docker-compose without a password, naming the variable", () => {
    let err = "";
    try {
      compose(["config", "-q"], { AIDO_CLUSTER_DIR: dir, REDIS_PASSWORD: "" });
    } catch (e) {
      err = String((e as { stderr?: string }).stderr);
    }
    expect(err).toMatch(/REDIS_PASSWORD/);
  });

  describe("brought up with docker-compose", () => {
    let provider: ProviderServer;
    let relay: Server;
    beforeAll(async () => {
      requireDocker();
      // The daemon image as ./run-aido.sh makes it: the same set-up (dependencies, build,
      // images), under its lock, so a stale image never runs this checkout's cluster mode.
      if (!process.env.AIDO_DAEMON_IMAGE)
        execFileSync("bash", ["-c", "source ./run-aido.sh && install_and_build"], {
          cwd: ROOT,
          stdio: ["ignore", "ignore", "inherit"],
          timeout: 900_000,
        });
      execFileSync("bash", [join(ROOT, "docker", "build-redis.sh")], { stdio: ["ignore", "pipe", "pipe"] });
      // The scripted provider listens on loopback; the daemons reach it through a relay on
      // the default bridge's gateway address (the host, as any container can route to it).
      provider = await startProviderServer();
      const gateway = bridgeGateway();
      const target = new URL(provider.url);
      relay = createServer((c) => {
        const up = new Socket().connect(Number(target.port), target.hostname);
        c.pipe(up).pipe(c);
        up.on("error", () => c.destroy());
        c.on("error", () => up.destroy());
      });
      await new Promise<void>((ok) => relay.listen(0, gateway, ok));
      const port = (relay.address() as { port: number }).port;
      Object.assign(env, {
        ANTHROPIC_API_KEY: "sk-ant-test",
        ANTHROPIC_BASE_URL: `http://${gateway}:${port}`,
        AIDO_MODEL: MODEL,
      });
      compose(["--env-file", envFile, "up", "-d"], env);
    }, 900_000);

    afterAll(async () => {
      relay?.close();
      await provider?.close();
    });

    it("three daemons join one Redis and each sees all three up; Redis answers no one without the password", async () => {
      const status = (node: string): ClusterStatus | undefined => {
        try {
          return JSON.parse(
            execFileSync("docker", ["exec", `${PROJECT}_${node}_1`, "aido", "cluster", "status", "--json"], {
              encoding: "utf8",
              stdio: ["ignore", "pipe", "pipe"],
            }),
          ) as ClusterStatus;
        } catch (e) {
          const out = (e as { stdout?: string }).stdout ?? "";
          return out.startsWith("{") ? (JSON.parse(out) as ClusterStatus) : undefined;
        }
      };
      const deadline = Date.now() + 60_000;
      let seen: ClusterStatus | undefined;
      for (;;) {
        seen = status("node-3");
        if (seen?.nodes?.length === 3 && seen.nodes.every((n) => n.alive)) break;
        if (Date.now() > deadline) throw new Error(`three nodes never came up: ${JSON.stringify(seen)}`);
        await new Promise((r) => setTimeout(r, 1_000));
      }
      const ids = new Set(seen.nodes.map((n) => n.node_id));
      for (const node of ["node-1", "node-2"]) {
        const s = status(node);
        expect(s?.enabled).toBe(true);
        expect(ids.has(s?.node_id ?? "")).toBe(true);
        expect(new Set(s?.nodes.map((n) => n.node_id))).toEqual(ids);
      }
      // From a node, on the compose network, without the password: NOAUTH.
      const ping = execFileSync(
        "docker",
        [
          "exec",
          `${PROJECT}_node-1_1`,
          "node",
          "-e",
          'const s=require("net").connect(6379,"redis",()=>s.write("PING\\r\\n"));s.on("data",(d)=>{process.stdout.write(String(d));s.end()})',
        ],
        { encoding: "utf8" },
      );
      expect(ping).toMatch(/^-NOAUTH/);
      const redis = `${PROJECT}_redis_1`;
      // Not published on the host: the container has no port bindings.
      const ports = execFileSync("docker", ["inspect", "-f", "{{json .NetworkSettings.Ports}}", redis], {
        encoding: "utf8",
      });
      expect(Object.values(JSON.parse(ports) as Record<string, unknown>).every((b) => b === null)).toBe(true);
    }, 90_000);

    it("runs a goal submitted to node-1 on one of the nodes, and every node reports it", async () => {
      provider.script(forGoal("compose-goal"), [turn.text("compose goal done")]);
      const home = join(dir, "homes", "node-1");
      const client = await AidoClient.connect(join(home, "agentd.sock"));
      try {
        const { goal_id } = await client.call("goal.submit", {
          goal: "do compose-goal",
          manifest: manifest(),
        });
        const ended = await client.call("goal.wait", { goal_id, timeout_ms: 60_000 });
        expect(ended, ended.error).toMatchObject({ state: "succeeded", result: "compose goal done" });
        expect(ended.node).toBeDefined();
        for (const node of ["node-2", "node-3"]) {
          const out = execFileSync(
            "docker",
            ["exec", `${PROJECT}_${node}_1`, "aido", "status", goal_id, "--json"],
            { encoding: "utf8" },
          );
          expect(JSON.parse(out)).toMatchObject({ goal_id, state: "succeeded", node: ended.node });
        }
      } finally {
        client.close();
      }
    }, 90_000);
  });
});
