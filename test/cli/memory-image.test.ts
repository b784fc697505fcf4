// `aido memory list|search|delete|reset` against a real database in a temp AIDO_HOME, and
// `aido image build` against the real Docker engine.

import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { LocalHashEmbedder } from "../../src/memory/embedder.js";
import { MemoryStore } from "../../src/memory/store.js";
import { requireDocker } from "../support/docker.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import { captureIo } from "./io.js";

const prov = (goalId: string) => ({ goalId, agentId: "a-1", source: "trusted" as const });

describe("aido memory", () => {
  let home: TempHome;
  let ids: number[];
  beforeEach(async () => {
    home = makeTempHome();
    const store = MemoryStore.open(home.config, new LocalHashEmbedder());
    ids = [];
    for (const [identity, content, goal] of [
      ["agent:researcher", "the vendor contract renews in March", "g-1"],
      ["agent:writer", "reports use British spelling", "g-2"],
      ["agent:writer", "lunch is at noon", "g-2"],
    ] as const) {
      ids.push(
        (await store.store({ identity, scope: "private", category: "fact", content, provenance: prov(goal) }))
          .id,
      );
    }
    store.close();
  });
  afterEach(() => home.cleanup());

  it("lists newest first, filtered by identity, as text or JSON", async () => {
    const c = captureIo();
    expect(await runCli(["memory", "list", "--identity", "agent:writer", "--json"], c.io, home.env)).toBe(0);
    const listed = JSON.parse(c.text()) as { id: number; content: string }[];
    expect(listed.map((m) => m.id)).toEqual([ids[2], ids[1]]);
    const t = captureIo();
    expect(await runCli(["memory", "list"], t.io, home.env)).toBe(0);
    expect(t.text()).toContain("the vendor contract renews in March");
    expect(t.text()).toMatch(/agent:researcher private\/fact goal=g-1 trusted/);
  });

  it("searches every identity's memories, nearest first", async () => {
    const c = captureIo();
    expect(
      await runCli(["memory", "search", "vendor", "contract", "--limit", "1", "--json"], c.io, home.env),
    ).toBe(0);
    const r = JSON.parse(c.text()) as { hits: { id: number }[]; unindexed: number };
    expect(r.hits.map((h) => h.id)).toEqual([ids[0]]);
    expect(r.unindexed).toBe(0);
  });

  it("deletes one memory, and exits 1 naming a memory that does not exist", async () => {
    const c = captureIo();
    expect(await runCli(["memory", "delete", String(ids[0])], c.io, home.env)).toBe(0);
    expect(c.text()).toBe(`deleted memory ${ids[0]} (agent:researcher)`);
    const again = captureIo();
    expect(await runCli(["memory", "delete", String(ids[0])], again.io, home.env)).toBe(1);
    expect(again.err).toEqual([`aido memory delete: memory ${ids[0]} not found`]);
  });

  it("resets only with --yes, one identity or everything", async () => {
    const refused = captureIo();
    expect(await runCli(["memory", "reset"], refused.io, home.env)).toBe(2);
    expect(refused.err.join("\n")).toContain("add --yes to confirm");
    const one = captureIo();
    expect(
      await runCli(["memory", "reset", "--identity", "agent:writer", "--yes", "--json"], one.io, home.env),
    ).toBe(0);
    expect(JSON.parse(one.text())).toEqual({ deleted: 2 });
    const all = captureIo();
    expect(await runCli(["memory", "reset", "--yes"], all.io, home.env)).toBe(0);
    expect(all.text()).toBe("deleted 1 memories");
  });

  it("rejects a bad limit as a usage error (exit 2) and says when nothing has run yet (exit 1)", async () => {
    const bad = captureIo();
    expect(await runCli(["memory", "list", "--limit", "zero"], bad.io, home.env)).toBe(2);
    expect(bad.err.join("\n")).toContain('--limit must be a positive integer, got "zero"');
    const empty = makeTempHome();
    try {
      const c = captureIo();
      expect(await runCli(["memory", "list"], c.io, empty.env)).toBe(1);
      expect(c.err.join("\n")).toContain("nothing has run yet");
    } finally {
      empty.cleanup();
    }
  });
});

describe("aido image build", () => {
  beforeAll(() => requireDocker());

  it("prints progress and reports the sandbox image as built or up to date", async () => {
    const home = makeTempHome();
    try {
      const c = captureIo();
      expect(await runCli(["image", "build", "--json"], c.io, home.env)).toBe(0);
      const r = JSON.parse(c.text()) as { image: string; source: string };
      expect(r.image).toBe(home.config.sandbox.image);
      expect(["cached", "registry", "offline", "base-cached"]).toContain(r.source);
      expect(c.err[0]).toBe(`image ${home.config.sandbox.image}: checking`);
    } finally {
      home.cleanup();
    }
  }, 900_000);
});
