// Red team: goal.submit `inputs`, from a socket client, against a tree a local attacker can
// change. The daemon reads inputs with its own rights and the model reads /inputs, so
// anything the copy lets through reaches the model (and the provider): the runtime key, the
// daemon's environment (its provider API keys), its memory maps.

import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { manifest, useInputsDaemon } from "../daemon/fixture.js";
import { turn } from "../support/provider-server.js";

const suite = useInputsDaemon("aido-rt-inputs-");
const open = (goals = 4): Promise<AidoClient> => suite.open({ files: 50, mb: 4, goals });

const reader = manifest("reader");

describe("goal.submit inputs under attack", () => {
  it("refuses the daemon's own /proc files (its environment holds the provider keys), naming the path", async () => {
    const c = await open();
    suite.server.script('manifest "reader"', [turn.text("read")]);
    for (const input of [
      "/proc/self/environ",
      "/proc/self/maps",
      `/proc/${process.pid}/cmdline`,
      "/proc/self/fd",
    ]) {
      const r = await c
        .call("goal.submit", { goal: "read", manifest: reader, inputs: [input] } as never)
        .then(
          async ({ goal_id }) => {
            await c.call("goal.wait", { goal_id, timeout_ms: 30_000 });
            const inputs = join(suite.fx.home.config.goalsDir, goal_id, "inputs");
            return { copied: readdirSync(inputs) };
          },
          (e: Error) => ({ refused: e.message }),
        );
      expect(r, `${input} reached /inputs`).toHaveProperty("refused");
      expect((r as { refused: string }).refused).toContain("inputs.0");
    }
  });

  it("never follows a folder of the tree swapped for a link while it is copied", async () => {
    const c = await open(1);
    suite.server.script('manifest "blocker"', [turn.hang()]);
    suite.server.script('manifest "reader"', [turn.text("read")]);
    const blocker = await c.call("goal.submit", { goal: "block", manifest: manifest("blocker") });
    // The tree the user hands in: top/sub holds a file named like the runtime key.
    const top = join(suite.outside, "top");
    const sub = join(top, "sub");
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, "runtime.ed25519.pem"), "just a placeholder\n");
    const { goal_id } = await c.call("goal.submit", {
      goal: "read",
      manifest: reader,
      inputs: [top],
    } as never);

    // The attacker watches the copy and swaps top/sub for a link to AIDO_HOME/keys the
    // moment the copier has looked at it (its staging copy of sub exists).
    const keys = suite.fx.home.config.keysDir;
    const root = join(suite.fx.home.config.goalsDir, goal_id);
    let swapped = false;
    let done = false;
    const watch = (async () => {
      for (let i = 0; i < 200_000 && !swapped && !done; i++) {
        const staging = existsSync(root)
          ? readdirSync(root).find((n) => n.startsWith(".inputs-"))
          : undefined;
        if (staging && existsSync(join(root, staging, "top", "sub"))) {
          renameSync(sub, `${sub}.orig`);
          symlinkSync(keys, sub);
          swapped = true;
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    await c.call("goal.cancel", { goal_id: blocker.goal_id });
    const end = await c.call("goal.wait", { goal_id, timeout_ms: 30_000 });
    done = true;
    await watch;
    expect(swapped, "the attacker never saw the copy start").toBe(true);
    const key = readFileSync(join(keys, "runtime.ed25519.pem"), "utf8");
    const copied = join(root, "inputs", "top", "sub", "runtime.ed25519.pem");
    const got = existsSync(copied) ? readFileSync(copied, "utf8") : undefined;
    expect(got, `goal ${end.state}: the runtime key was copied into /inputs`).not.toBe(key);
  });

  // aido mcp serve passes its session's project folder as inputs_within: a client's model
  // names the inputs, and can run commands that change the project between the submit and
  // the copy (a goal queued behind another is copied when it starts).
  it("inputs_within: refuses a path outside the folder, and a folder of the project swapped for a link out of it before the copy", async () => {
    const c = await open(1);
    const project = join(suite.outside, "project");
    const dir = join(project, "dir");
    const secret = join(suite.outside, "secret");
    mkdirSync(dir, { recursive: true });
    mkdirSync(secret, { recursive: true });
    writeFileSync(join(dir, "data.txt"), "project data\n");
    writeFileSync(join(secret, "data.txt"), "SECRET\n");
    const refused = await c
      .call("goal.submit", {
        goal: "read",
        manifest: reader,
        inputs: [join(secret, "data.txt")],
        inputs_within: project,
      } as never)
      .then(
        () => "accepted",
        (e: Error) => e.message,
      );
    expect(refused).toContain("inputs.0");
    expect(refused).toContain(`is outside ${project}`);

    suite.server.script('manifest "blocker"', [turn.hang()]);
    suite.server.script('manifest "reader"', [turn.text("read")]);
    const blocker = await c.call("goal.submit", { goal: "block", manifest: manifest("blocker") });
    const { goal_id } = await c.call("goal.submit", {
      goal: "read",
      manifest: reader,
      inputs: [join(dir, "data.txt")],
      inputs_within: project,
    } as never);
    renameSync(dir, `${dir}.orig`);
    symlinkSync(secret, dir);
    await c.call("goal.cancel", { goal_id: blocker.goal_id });
    const end = await c.call("goal.wait", { goal_id, timeout_ms: 30_000 });
    const copied = join(suite.fx.home.config.goalsDir, goal_id, "inputs", "data.txt");
    const got = existsSync(copied) ? readFileSync(copied, "utf8") : undefined;
    expect(got, `goal ${end.state}: a file outside the project was copied into /inputs`).not.toBe("SECRET\n");
    expect(end.state).toBe("failed");
    expect(end.error).toContain(`is outside ${project}`);
  });
});

describe("goal.submit inputs_within and inputs_as from a socket client", () => {
  it("refuses a relative or missing inputs_within, and an inputs_as that is no open session's agent, naming the field", async () => {
    const c = await open();
    const file = join(suite.outside, "data.txt");
    writeFileSync(file, "data\n");
    const submit = (extra: Record<string, unknown>) =>
      c.call("goal.submit", { goal: "read", manifest: reader, inputs: [file], ...extra } as never).then(
        () => "accepted",
        (e: Error) => e.message,
      );
    expect(await submit({ inputs_within: "project" })).toContain("inputs_within");
    expect(await submit({ inputs_within: join(suite.outside, "nope") })).toContain("inputs_within: ");
    const unknown = await submit({ inputs_as: "a_nobody" });
    expect(unknown).toContain("inputs_as: a_nobody is not the agent of an open session");
    const refused = (await c.call("audit.query", { kind: "goal.refused" })).entries;
    expect(refused.map((e) => (e.payload as { field: string }).field)).toContain("inputs_as");
    expect((await c.call("goal.list", {})).goals).toHaveLength(0);
  });
});

describe("goal.submit input names", () => {
  it("names an input spelled with a trailing . or .. after the folder it resolves to, inside /inputs", async () => {
    const c = await open();
    suite.server.script('manifest "reader"', [turn.text("read")]);
    const top = join(suite.outside, "top");
    mkdirSync(join(top, "sub"), { recursive: true });
    writeFileSync(join(top, "data.txt"), "data\n");
    const { goal_id } = await c.call("goal.submit", {
      goal: "read",
      manifest: reader,
      inputs: [join(top, "sub", ".."), `${join(top, "sub")}/.`],
    } as never);
    const end = await c.call("goal.wait", { goal_id, timeout_ms: 30_000 });
    expect(end.error).toBeUndefined();
    expect(end.state).toBe("succeeded");
    const inputs = join(suite.fx.home.config.goalsDir, goal_id, "inputs");
    expect(readdirSync(inputs).sort()).toEqual(["sub", "top"]);
    expect(readFileSync(join(inputs, "top", "data.txt"), "utf8")).toBe("data\n");
  });
});
