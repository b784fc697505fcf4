// `aido sandbox destroy` and the TTL sweep against the real engine: what a task left that
// will not go never keeps the rest of a sandbox (or the other sandboxes) from going, each
// failure is said and logged, the messages pass the env scrubber, and a tree deeper than a
// recursive walk goes all the same.

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { containerNameOf } from "../../src/humansandbox/container.js";
import { destroySandbox } from "../../src/humansandbox/lifecycle.js";
import { sandboxUp } from "../../src/humansandbox/up.js";
import { type EngineProxy, engineProxy } from "../support/engine-proxy.js";
import { canMakeUndeletable, makeUndeletable } from "../support/undeletable.js";
import { makeProject, type Project, startAido } from "./fixture.js";

let p: Project;
const docker = new Docker();

beforeAll(async () => {
  p = await makeProject();
});
afterAll(async () => {
  await p?.cleanup();
});

const containerExists = async (id: string) =>
  docker
    .getContainer(containerNameOf(id))
    .inspect()
    .then(
      () => true,
      () => false,
    );

const root = (id: string) => join(p.dir, ".aido", "sandboxes", id);
const events = (id: string) =>
  readFileSync(join(root(id), "events.log"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, string>);

/** A secret the person passes to the task in its env, which a task can choose as a file's name. */
const SECRET = "sk-live-destroy-0123456789";

describe("aido sandbox destroy", () => {
  it.skipIf(!canMakeUndeletable)(
    "removes everything it can past a folder that will not go, says each failure, logs it, and exits 1",
    async () => {
      // The first working folder whose removal failed threw out of destroy: output/ and
      // stream/ after it stayed in the project although nothing kept them.
      p.write("stuck.yaml", `runtime: python:3.11\nenv:\n  TOKEN: ${SECRET}\n`);
      const up = await p.aido("sandbox", "up", "-f", "stuck.yaml");
      expect(up.code, up.err.join("\n")).toBe(0);
      const id = up.out[0] as string;
      const run = await p.aido("run", "sh", "-c", "echo made > /output/o.txt; mkdir /aido/stream/left");
      expect(run.code, run.err.join("\n")).toBe(0);
      // What the task named after its secret, and the host cannot remove.
      const release = makeUndeletable(join(root(id), "work", SECRET));
      let destroy: Awaited<ReturnType<Project["aido"]>>;
      try {
        destroy = await p.aido("sandbox", "destroy", id);
        expect(destroy.code).toBe(1);
        expect(existsSync(join(root(id), "output"))).toBe(false);
        expect(existsSync(join(root(id), "stream"))).toBe(false);
        expect(existsSync(join(root(id), "work"))).toBe(true);
        expect(await containerExists(id)).toBe(false);
      } finally {
        release();
      }
      const err = destroy.err.join("\n");
      expect(err).toContain(`sandbox ${id} could not be destroyed entirely`);
      expect(err).toMatch(/cannot remove .*work: .*\[env:TOKEN\]/);
      expect(err).toContain(`aido sandbox destroy ${id}`);
      expect(err).not.toContain(SECRET);
      const failed = events(id).filter((e) => e.event === "destroy_failed");
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ reason: "destroyed by the user" });
      expect(failed[0]?.error).toMatch(/cannot remove .*work: .*\[env:TOKEN\]/);
      for (const f of p.evidenceFiles()) expect(f.text, f.path).not.toContain(SECRET);
      const list = (await p.aido("sandbox", "list", "--json")).json<Array<{ id: string; state: string }>>();
      expect(list.find((s) => s.id === id)?.state).toBe("running");
      // Once it can go, a second destroy finishes the job.
      const again = await p.aido("sandbox", "destroy", id);
      expect(again.code, again.err.join("\n")).toBe(0);
      expect(existsSync(join(root(id), "work"))).toBe(false);
    },
    120_000,
  );
});

describe("the TTL sweep", () => {
  it.skipIf(!canMakeUndeletable)(
    "goes on past a sandbox it cannot destroy, says so, and destroys it at the next command",
    async () => {
      // One sandbox whose folders would not go threw out of the sweep: the sandboxes after it
      // were never destroyed, on every later command too.
      // Its failure names what the task left by the task's name: here the person's secret.
      // A TTL the three `up`s fit in on a loaded machine (each sweeps what expired first).
      p.write("ttl.yaml", `runtime: python:3.11\nttl: 5s\nenv:\n  TOKEN: ${SECRET}\n`);
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const up = await p.aido("sandbox", "up", "-f", "ttl.yaml");
        expect(up.code, up.err.join("\n")).toBe(0);
        ids.push(up.out[0] as string);
      }
      const [stuck, ...others] = ids as [string, ...string[]];
      const release = makeUndeletable(join(root(stuck), "work", SECRET));
      try {
        const expiry = (id: string) =>
          Date.parse(JSON.parse(readFileSync(join(root(id), "sandbox.json"), "utf8")).expires_at);
        const wait = Math.max(...ids.map(expiry)) + 300 - Date.now();
        await new Promise((r) => setTimeout(r, Math.max(0, wait)));
        const list = await p.aido("sandbox", "list", "--json");
        expect(list.code, list.err.join("\n")).toBe(0);
        const err = list.err.join("\n");
        for (const id of others) expect(err).toContain(`sandbox ${id} expired and was destroyed`);
        expect(err).toMatch(
          new RegExp(
            `warning: sandbox ${stuck} expired but could not be destroyed \\(tried again by the next aido command\\): cannot remove .*work: .*\\[env:TOKEN\\]`,
          ),
        );
        const states = list.json<Array<{ id: string; state: string }>>();
        for (const id of others) expect(states.find((s) => s.id === id)?.state).toBe("destroyed");
        expect(states.find((s) => s.id === stuck)?.state).toBe("running");
        expect(readFileSync(join(root(stuck), "events.log"), "utf8")).toMatch(
          /"event":"destroy_failed","reason":"ttl expired","error":"cannot remove .*\[env:TOKEN\]/,
        );
        expect(err).not.toContain(SECRET);
        for (const f of p.evidenceFiles()) expect(f.text, f.path).not.toContain(SECRET);
        for (const id of ids) expect(await containerExists(id)).toBe(false);
      } finally {
        release();
      }
      const again = await p.aido("sandbox", "list", "--json");
      expect(again.err.join("\n")).toContain(`sandbox ${stuck} expired and was destroyed`);
      expect(again.json<Array<{ id: string; state: string }>>().find((s) => s.id === stuck)?.state).toBe(
        "destroyed",
      );
      expect(existsSync(join(root(stuck), "work"))).toBe(false);
    },
    120_000,
  );
});

describe("a task nesting folders deeper than a recursive walk goes", () => {
  it("is destroyed with its folders all the same", async () => {
    // Removal held a descriptor and a stack frame per level: a chain of 12,000 folders
    // overflowed the stack, so `aido sandbox destroy` (and every later sweep of an expired
    // sandbox) failed and the sandbox stayed "running" with its folders in the project.
    p.write("deep.yaml", "runtime: python:3.11\n");
    const up = await p.aido("sandbox", "up", "-f", "deep.yaml");
    expect(up.code, up.err.join("\n")).toBe(0);
    const id = up.out[0] as string;
    p.write(
      "deep.py",
      [
        "import os",
        "os.chdir('/output')",
        "for _ in range(12000):",
        "    os.mkdir('d')",
        "    os.chdir('d')",
        "open('f', 'w').close()",
        "print('deep')",
      ].join("\n"),
    );
    const run = await p.aido("run", "deep.py");
    expect(run.out, run.err.join("\n")).toEqual(["deep"]);
    const destroy = await p.aido("sandbox", "destroy", id);
    expect(destroy.code, destroy.err.join("\n")).toBe(0);
    const folder = join(p.dir, ".aido", "sandboxes", id);
    expect(existsSync(join(folder, "output"))).toBe(false);
    expect(JSON.parse(readFileSync(join(folder, "sandbox.json"), "utf8")).state).toBe("destroyed");
  }, 120_000);
});

describe("a sandbox file a task swapped for a FIFO", () => {
  it("hangs neither aido run nor destroy: it is read only when it is a regular file", async () => {
    // Read at each `aido run`, and now at each destroy and TTL sweep (its env values scrub
    // their errors). A task given the folder that holds it (an input, with
    // --dangerous-allow-mutations) can put a FIFO at its name: reading it waited for a writer
    // forever, and once the sandbox expired so did every aido command in the project (each
    // sweeps first).
    p.write("fifo/sb.yaml", "runtime: python:3.11\n");
    const up = await p.aido("sandbox", "up", "-f", "fifo/sb.yaml");
    expect(up.code, up.err.join("\n")).toBe(0);
    const id = up.out[0] as string;
    rmSync(join(p.dir, "fifo", "sb.yaml"));
    execFileSync("mkfifo", [join(p.dir, "fifo", "sb.yaml")]);
    const finish = async (argv: string[]) => {
      const { child, exited } = startAido(p, argv);
      let err = "";
      child.stderr?.on("data", (b: Buffer) => {
        err += b.toString();
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      try {
        return { signal: await exited, code: child.exitCode, err };
      } finally {
        clearTimeout(timer);
      }
    };
    const run = await finish(["run", "--sandbox", id, "true"]);
    expect(run.signal, "aido run hung").toBeNull();
    expect(run.err).toMatch(/sandbox file .*sb\.yaml.*not a regular file/);
    const destroy = await finish(["sandbox", "destroy", id]);
    expect(destroy.signal, "aido sandbox destroy hung").toBeNull();
    expect(destroy.code, destroy.err).toBe(0);
    expect(await containerExists(id)).toBe(false);
  }, 120_000);
});

/** The real engine, refusing the requests `fail` picks with a 500 (test/support/engine-proxy.ts). */
function refusingEngine(fail: RegExp): Promise<EngineProxy> {
  return engineProxy((line) => (fail.test(line) ? "refuse" : undefined));
}

describe("an up whose start fails and whose cleanup fails too", () => {
  it("reports why the start failed, the cleanup's failure, and what is left for destroy", async () => {
    // The cleanup destroy's error was thrown instead of the start's: the person learned
    // that a container could not be removed, never why `up` had failed.
    // (The container is looked at before it is removed, by its labels: that is refused too.)
    const engine = await refusingEngine(
      /^(POST \S*\/containers\/create|(GET|DELETE) \S*\/containers\/aido_sbx_)/,
    );
    let error: Error | undefined;
    try {
      await sandboxUp({ cwd: p.dir, config: p.home.config, docker: engine.docker });
    } catch (e) {
      error = e as Error;
    } finally {
      await engine.close();
    }
    const id = /sandbox ([0-9a-f]{12})/.exec(error?.message ?? "")?.[1] as string;
    expect(error?.message).toMatch(
      new RegExp(
        `^starting sandbox ${id} failed: .*injected refusal of POST \\S*/containers/create.*; removing what it made failed too \\(what stayed: removing container aido_sbx_${id} failed: .*injected refusal of (GET|DELETE).*\\): run \`aido sandbox destroy ${id}\``,
      ),
    );
    expect(events(id).filter((e) => e.event === "destroy_failed")).toHaveLength(1);
    const again = await p.aido("sandbox", "destroy", id);
    expect(again.code, again.err.join("\n")).toBe(0);
  }, 60_000);
});

describe("a destroy whose egress relay will not go", () => {
  it("still removes the egress folder, and reports the relay", async () => {
    // A relay whose removal failed threw before the share folder was removed: egress/ stayed
    // in the project (also after a later destroy had it reported fixed by hand).
    p.write("hosts.yaml", "runtime: python:3.11\npermissions: { network: [plain.test:8080] }\n");
    const up = await p.aido("sandbox", "up", "-f", "hosts.yaml");
    expect(up.code, up.err.join("\n")).toBe(0);
    const id = up.out[0] as string;
    expect(existsSync(join(root(id), "egress"))).toBe(true);
    const engine = await refusingEngine(/^DELETE \S*\/containers\/aido_sbx_relay_/);
    let error: Error | undefined;
    try {
      await destroySandbox(p.dir, id, { docker: engine.docker });
    } catch (e) {
      error = e as Error;
    } finally {
      await engine.close();
    }
    expect(error?.message).toMatch(/removing the egress relay aido_sbx_relay_\w+ failed: .*injected refusal/);
    expect(existsSync(join(root(id), "egress"))).toBe(false);
    expect(existsSync(join(root(id), "work"))).toBe(false);
    expect(await containerExists(id)).toBe(false);
    const again = await p.aido("sandbox", "destroy", id);
    expect(again.code, again.err.join("\n")).toBe(0);
    expect(
      await docker
        .getContainer(`aido_sbx_relay_${id}`)
        .inspect()
        .then(
          () => true,
          () => false,
        ),
    ).toBe(false);
  }, 120_000);
});
