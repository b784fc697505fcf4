// test/ui/server-attacks.test.ts — the dashboard's HTTP server attacked as a hostile page,
// a local user or a script would: over real HTTP against a real daemon.

import { describe, expect, it } from "vitest";
import { useDaemonPerTest } from "../daemon/fixture.js";
import { openUi, raw, rpc, signIn } from "./fixture.js";

const suite = useDaemonPerTest();

describe("the dashboard's door", () => {
  it("answers /api/rpc with the cookie the token visit sets, and 401 without it", async () => {
    const fx = await suite.start();
    const ui = await openUi(fx);
    const cookie = await signIn(ui);
    const r = await rpc(ui, cookie, "goal.list");
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ result: { goals: [] } });
    const noauth = await raw(ui.port, { path: "/", headers: { Host: ui.host } });
    expect(noauth.status).toBe(401);
  });
});
