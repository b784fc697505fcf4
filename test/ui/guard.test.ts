// test/ui/guard.test.ts — the ui.denied rate limit on its own clock, against a real audit
// log: a minute of refusals of one reason is one entry, the next entry says how many it
// left out, and each reason has its own minute.

import type { IncomingMessage } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { DenialLog } from "../../src/daemon/ui/guard.js";
import { openDatabase } from "../../src/db/database.js";
import { AuditLog } from "../../src/security/audit.js";
import { RuntimeKey } from "../../src/security/keys.js";
import { makeTempHome, type TempHome } from "../support/home.js";

let home: TempHome | undefined;
afterEach(() => {
  home?.cleanup();
  home = undefined;
});

const request = { method: "GET", socket: { remoteAddress: "127.0.0.1" } } as unknown as IncomingMessage;

describe("DenialLog", () => {
  it("writes one ui.denied per reason per minute and counts the ones it left out", () => {
    home = makeTempHome();
    const db = openDatabase(home.config.dbPath);
    const audit = new AuditLog({ db, signer: RuntimeKey.load(home.config.keysDir) });
    let now = 1_000_000;
    const log = new DenialLog(audit, () => now);
    for (let i = 0; i < 50; i++) log.record("token", request, "/api/rpc");
    log.record("origin", request, "/api/events");
    now += 59_999;
    log.record("token", request, "/api/rpc");
    now += 1;
    log.record("token", request, "/");
    const entries = audit
      .query({ kind: "ui.denied" })
      .sort((a, b) => a.seq - b.seq)
      .map((e) => e.payload);
    expect(entries).toEqual([
      { reason: "token", remote: "127.0.0.1", method: "GET", path: "/api/rpc" },
      { reason: "origin", remote: "127.0.0.1", method: "GET", path: "/api/events" },
      { reason: "token", remote: "127.0.0.1", method: "GET", path: "/", suppressed: 50 },
    ]);
    db.close();
  });
});
