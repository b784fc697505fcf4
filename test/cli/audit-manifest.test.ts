// `aido manifest validate` and `aido audit verify|tail|query`, run in-process through
// runCli against a real AIDO_HOME.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { openDatabase } from "../../src/db/database.js";
import { AuditLog } from "../../src/security/audit.js";
import { RuntimeKey } from "../../src/security/keys.js";
import { makeTempHome, type TempHome } from "../support/home.js";

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l), interactive: false },
    out,
    err,
  };
}

describe("aido manifest validate", () => {
  let home: TempHome;
  beforeEach(() => {
    home = makeTempHome();
  });
  afterEach(() => home.cleanup());

  it("exits 0 for the bundled-style manifest and 1 naming the bad key of another", async () => {
    const good = join(home.dir, "good.yaml");
    const bad = join(home.dir, "bad.yaml");
    writeFileSync(good, 'name: good\ncapabilities: ["tool: file_read", "file_read: /workspace/**"]\n');
    writeFileSync(bad, "name: bad\nbudget:\n  max_tokens: 10\n  refill: 5\n");
    const c = capture();
    expect(await runCli(["manifest", "validate", good], c.io, home.env)).toBe(0);
    const d = capture();
    expect(await runCli(["manifest", "validate", good, bad], d.io, home.env)).toBe(1);
    expect(d.err.join("\n")).toContain(`${bad}:4: budget.refill: unknown key "refill"`);
  });

  it("exits 2 on usage errors", async () => {
    const c = capture();
    expect(await runCli(["manifest", "validate"], c.io, home.env)).toBe(2);
    expect(await runCli(["manifest", "validate", "--frobnicate", "x"], c.io, home.env)).toBe(2);
  });
});

describe("aido audit", () => {
  let home: TempHome;
  beforeEach(() => {
    home = makeTempHome();
    const db = openDatabase(home.config.dbPath);
    const audit = new AuditLog({ db, signer: RuntimeKey.load(home.config.keysDir), checkpointEvery: 5 });
    for (let i = 0; i < 12; i++) {
      audit.append({
        kind: "tool.invoked",
        goalId: "g1",
        agentId: "a1",
        payload: { tool: "exec", input: { i } },
      });
    }
    audit.close();
    db.close();
  });
  afterEach(() => home.cleanup());

  it("verifies an intact log and shows its tail as JSON", async () => {
    const c = capture();
    expect(await runCli(["audit", "verify"], c.io, home.env)).toBe(0);
    expect(c.out.join("")).toMatch(/^ok: \d+ entries/);
    const t = capture();
    expect(await runCli(["audit", "tail", "-n", "3", "--json"], t.io, home.env)).toBe(0);
    expect(JSON.parse(t.out.join("\n"))).toHaveLength(3);
  });

  it("exits 1 and names the first bad seq after a row is edited in SQLite", async () => {
    const db = openDatabase(home.config.dbPath);
    db.prepare("UPDATE audit SET payload = ? WHERE seq = 4").run(
      JSON.stringify({ tool: "exec", input: { i: 99 } }),
    );
    db.close();
    const c = capture();
    expect(await runCli(["audit", "verify"], c.io, home.env)).toBe(1);
    expect(c.err.join("")).toContain("seq 4");
  });

  it("filters by kind and refuses an unknown kind as a usage error", async () => {
    const c = capture();
    expect(
      await runCli(["audit", "query", "--kind", "tool.invoked", "--limit", "2", "--json"], c.io, home.env),
    ).toBe(0);
    expect(JSON.parse(c.out.join("\n"))).toHaveLength(2);
    const d = capture();
    expect(await runCli(["audit", "query", "--kind", "tool.teleported"], d.io, home.env)).toBe(2);
  });
});
