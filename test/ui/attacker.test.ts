// test/ui/attacker.test.ts — attacks on the dashboard that got through its first build,
// each written as the attacker would run it (over real HTTP against a real daemon, the
// scripted provider behind the real SDK, real SQLite and audit log), kept as regressions.

import { describe, expect, it } from "vitest";
import { manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { turn } from "../support/provider-server.js";
import { openStream, openUi, signIn } from "./fixture.js";

const suite = useDaemonPerTest();

describe("a stolen session cookie", () => {
  it("loses the event stream it holds open when the operator rotates the token", async () => {
    const fx = await suite.start();
    const ui = await openUi(fx);
    const stolen = await signIn(ui);
    const stream = await openStream(ui, stolen, "/api/events");
    expect(stream.status).toBe(200);

    await openUi(fx, true); // aido ui --rotate
    await stream.ended;

    // Whatever runs after the rotation is not seen through the old cookie.
    suite.server.script('manifest "after"', [turn.text("private answer")]);
    const c = await fx.client();
    const { goal_id } = await c.call("goal.submit", {
      goal: "after the rotation",
      manifest: manifest("after"),
    });
    await c.call("goal.wait", { goal_id, timeout_ms: 20_000 }, { timeoutMs: 25_000 });
    expect(stream.events.map((e) => e.data.goal_id)).not.toContain(goal_id);
  });
});
