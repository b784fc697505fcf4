// `aido watch` shows a call that did not run because a stage of the gate failed (tool.errored)
// as the dashboard does: "failed at <stage>, did not run". Before, tool.errored was only an audit
// entry: the bus carried tool.completed with is_error, and watch said the call ran and failed.
// The real agent loop (scripted provider, real SDK) on a runtime with no containers, so the
// call's needs stage fails; its events go through the daemon's wire form into watch's reducer.

import { describe, expect, it } from "vitest";
import { initialWatchState } from "../../src/cli/watch/seed.js";
import { reduceWatch } from "../../src/cli/watch/state.js";
import { fromWireEvent } from "../../src/cli/watch/wire.js";
import { toWireEvent } from "../../src/daemon/events.js";
import type { RuntimeEvent } from "../../src/kernel/events.js";
import { type Harness, openHarness, useHarnessSuite } from "../agent/harness.js";
import { type ProviderServer, turn } from "../support/provider-server.js";

let server: ProviderServer;
let h: Harness;
useHarnessSuite(
  (s) => (server = s),
  () => h,
);

describe("aido watch and a call whose gate stage failed", () => {
  it("shows it as failed at its stage, did not run, from the event the gate's caller publishes", async () => {
    h = await openHarness(server);
    const events: RuntimeEvent[] = [];
    h.rt.events.subscribe({}, (e) => events.push(e));
    server.script('manifest "reader"', [
      turn.toolUse("file_read", { path: "/workspace/a.txt" }),
      turn.text("done"),
    ]);
    await h.rt.spawnAndRun(
      {
        name: "reader",
        system_prompt: "reads",
        capabilities: ["tool: file_read", "file_read: /workspace/**"],
        memory: { episodic: false },
      },
      "Read it.",
    );
    const wire = events.map((e) => fromWireEvent(JSON.parse(JSON.stringify(toWireEvent(e)))));
    expect(wire.map((e) => e?.type)).toContain("tool.errored");
    expect(wire.map((e) => e?.type)).not.toContain("tool.completed");
    const s = wire.reduce((acc, e) => (e ? reduceWatch(acc, e) : acc), initialWatchState());
    const lines = s.activity.map((a) => a.text);
    expect(lines).toContainEqual(
      expect.stringMatching(
        /^reader ✗ file_read failed at needs, did not run \(sandbox_unavailable: this suite runs without containers/,
      ),
    );
    expect(lines.some((l) => /failed \(\d+ ms\)/.test(l))).toBe(false);
    expect(Object.values(s.agents).every((a) => Object.keys(a.toolsRunning).length === 0)).toBe(true);
  }, 60_000);
});
