// sandbox.json names the sandbox's container and its relay and network, and a command acts on
// them by those names. The record is the project owner's file (given to them when `sudo aido`
// made it, or made by them): a name of theirs had a `sudo aido sandbox destroy` (or the TTL
// sweep before any command) force-remove any container of the engine, with its volumes, and
// any network, and `aido run` start and run the task in any container. Against the real
// engine: what the labels set at `up` do not say is this sandbox's is left alone.

import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attach } from "../../src/humansandbox/container.js";
import { destroySandbox } from "../../src/humansandbox/lifecycle.js";
import { withProject } from "../../src/humansandbox/project.js";
import { type SandboxRecord, sandboxPaths, storePaths, writeRecord } from "../../src/humansandbox/state.js";

const docker = new Docker();
const tag = randomBytes(4).toString("hex");
const victim = `aido-test-victim-${tag}`;
const victimNet = `aido-test-victim-net-${tag}`;
const ID = "0123456789ab";
const made: string[] = [];

beforeAll(async () => {
  await docker.createContainer({ name: victim, Image: "aido-sandbox:latest", Cmd: ["true"] });
  await docker.createNetwork({ Name: victimNet, Driver: "bridge", Internal: true });
});

afterAll(async () => {
  await docker
    .getContainer(victim)
    .remove({ force: true })
    .catch(() => {});
  await docker
    .getNetwork(victimNet)
    .remove()
    .catch(() => {});
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A project whose sandbox's record names a container and a network that are not its own. */
function craftedProject(): { project: string; record: SandboxRecord } {
  const project = mkdtempSync(join(tmpdir(), "aido-hs-recnames-"));
  made.push(project);
  mkdirSync(storePaths(project, ID).runs, { recursive: true });
  const record = {
    id: ID,
    name: "x",
    state: "running",
    created_at: new Date().toISOString(),
    expires_at: new Date(Date.now() + 3_600_000).toISOString(),
    container: victim,
    user: "1000:1000",
    spec_file: null,
    limits: { timeout_ms: 60_000 },
    flags: { dangerous_allow_mutations: false },
    inputs: [],
    egress: { network: victimNet, relay: victim, address: "" },
  } as unknown as SandboxRecord;
  withProject(project, (held) => writeRecord(sandboxPaths(held, ID), record));
  return { project, record };
}

describe("the names in a sandbox's record", () => {
  it("never have run start, nor attach to, a container that is not the sandbox's", async () => {
    const { project, record } = craftedProject();
    const home = join(project, "home");
    const runtime = {
      home,
      keysDir: join(home, "keys"),
      dbPath: join(home, "aido.db"),
      auditHeadPath: join(home, "audit.head"),
    };
    await expect(withProject(project, (held) => attach(docker, record, held, runtime))).rejects.toThrow(
      /is not that sandbox's \(its labels\)/,
    );
    expect((await docker.getContainer(victim).inspect()).State.Status).toBe("created");
  }, 60_000);

  it("never have destroy remove a container or network that is not the sandbox's", async () => {
    const { project } = craftedProject();
    await expect(destroySandbox(project, ID, { docker })).rejects.toThrow(/is not that sandbox's/);
    expect((await docker.getContainer(victim).inspect()).Name).toBe(`/${victim}`);
    expect((await docker.getNetwork(victimNet).inspect()).Name).toBe(victimNet);
  }, 60_000);
});
