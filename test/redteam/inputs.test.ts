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
});
