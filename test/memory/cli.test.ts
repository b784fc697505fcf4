import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { deleteMemory, listMemories, resetMemories, searchMemories } from "../../src/memory/cli.js";
import { fact, type MemoryFixture, memoryFixture, prov } from "./fixture.js";

describe("memory functions for people (aido memory ...)", () => {
  let f: MemoryFixture;
  beforeEach(() => {
    f = memoryFixture();
  });
  afterEach(() => f.cleanup());

  it("lists newest first and filters by identity", async () => {
    const a = await f.store.store(fact("agent:a", "first"));
    const b = await f.store.store(fact("agent:b", "second"));
    expect(listMemories(f.store).map((m) => m.id)).toEqual([b.id, a.id]);
    expect(listMemories(f.store, { identity: "agent:a" }).map((m) => m.id)).toEqual([a.id]);
  });

  it("searches every identity's private memories, across goals", async () => {
    const a = await f.store.store(
      fact("agent:a", "the vendor contract renews in March", { provenance: prov("g-1") }),
    );
    await f.store.store(fact("agent:b", "lunch is at noon", { provenance: prov("g-2") }));
    const { hits } = await searchMemories(f.store, "vendor contract renews", 1);
    expect(hits.map((h) => h.id)).toEqual([a.id]);
  });

  it("deletes any memory by id, and reports not_found for a missing one", async () => {
    const a = await f.store.store(fact("agent:a", "x"));
    expect(deleteMemory(f.store, a.id).id).toBe(a.id);
    expect(() => deleteMemory(f.store, a.id)).toThrow(expect.objectContaining({ code: "not_found" }));
  });

  it("resets one identity or everything", async () => {
    await f.store.store(fact("agent:a", "x"));
    await f.store.store(fact("agent:b", "y"));
    expect(resetMemories(f.store, { identity: "agent:a" })).toEqual({ deleted: 1 });
    expect(resetMemories(f.store)).toEqual({ deleted: 1 });
  });
});
