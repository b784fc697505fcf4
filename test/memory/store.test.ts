import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isAidoError } from "../../src/errors.js";
import { LocalHashEmbedder } from "../../src/memory/embedder.js";
import { MemoryStore } from "../../src/memory/store.js";
import { fact, type MemoryFixture, memoryFixture, prov } from "./fixture.js";

const A = "agent:researcher";
const B = "agent:writer";

describe("MemoryStore", () => {
  let f: MemoryFixture;
  beforeEach(() => {
    f = memoryFixture({ AIDO_PERSISTENT_MEMORY: "1" });
  });
  afterEach(() => f.cleanup());

  it("stores a memory with its owner, scope, category, provenance and time", async () => {
    const before = Date.now();
    const m = await f.store.store(
      fact(A, "The build uses vitest 4.", { provenance: prov("g-7", "a-3", "tool") }),
    );
    expect(m).toMatchObject({
      identity: A,
      scope: "private",
      category: "fact",
      content: "The build uses vitest 4.",
      provenance: { goalId: "g-7", agentId: "a-3", source: "tool" },
      replaces: null,
      supersededBy: null,
    });
    expect(m.createdAt).toBeGreaterThanOrEqual(before);
    expect(f.store.get(m.id)).toEqual(m);
  });

  it("returns the memory that shares the query's words first, nearest first", async () => {
    const texts = [
      "The deployment pipeline runs on Kubernetes in the eu-west cluster",
      "Alice prefers tabs over spaces in Python code",
      "Quarterly revenue grew 12 percent driven by subscription sales",
      "The database migration failed because of a missing index on orders",
      "Use the staging API key only for integration tests",
    ];
    const ids: number[] = [];
    for (const t of texts) ids.push((await f.store.store(fact(A, t))).id);
    const { hits } = await f.store.query({
      identity: A,
      goalId: "g-1",
      query: "revenue subscription growth",
      limit: 5,
    });
    expect(hits[0]!.id).toBe(ids[2]);
    const distances = hits.map((h) => h.distance);
    expect(distances).toEqual([...distances].sort((a, b) => a - b));
    const { hits: h2 } = await f.store.query({
      identity: A,
      goalId: "g-1",
      query: "migration index orders",
      limit: 1,
    });
    expect(h2.map((h) => h.id)).toEqual([ids[3]]);
  });

  it("filters a query by category", async () => {
    await f.store.store(fact(A, "deploy on fridays is forbidden"));
    const d = await f.store.store(fact(A, "we decided deploy happens on mondays", { category: "decision" }));
    const { hits } = await f.store.query({
      identity: A,
      goalId: "g-1",
      query: "deploy",
      categories: ["decision"],
    });
    expect(hits.map((h) => h.id)).toEqual([d.id]);
  });

  it("deletes a memory so that queries no longer return it", async () => {
    const m = await f.store.store(fact(A, "the cache lives in redis"));
    f.store.delete(m.id, A);
    expect(f.store.get(m.id)).toBeUndefined();
    const { hits } = await f.store.query({ identity: A, goalId: "g-1", query: "cache redis" });
    expect(hits).toEqual([]);
  });

  it("returns only the replacement once a memory is replaced, and marks the old one superseded", async () => {
    const old = await f.store.store(fact(A, "the API rate limit is 100 requests per minute"));
    const now = await f.store.store(
      fact(A, "the API rate limit is 500 requests per minute", { replaces: old.id }),
    );
    expect(now.replaces).toBe(old.id);
    expect(f.store.get(old.id)!.supersededBy).toBe(now.id);
    const { hits } = await f.store.query({
      identity: A,
      goalId: "g-1",
      query: "API rate limit requests",
      limit: 10,
    });
    expect(hits.map((h) => h.id)).toEqual([now.id]);
    expect(f.store.list({ identity: A }).map((m) => m.id)).toEqual([now.id]);
    expect(f.store.list({ identity: A, includeSuperseded: true })).toHaveLength(2);
  });

  it("refuses to replace a superseded memory or another identity's memory (not_found)", async () => {
    const old = await f.store.store(fact(A, "v1"));
    await f.store.store(fact(A, "v2", { replaces: old.id }));
    await expect(f.store.store(fact(A, "v3", { replaces: old.id }))).rejects.toMatchObject({
      code: "not_found",
    });
    const mine = await f.store.store(fact(A, "mine"));
    await expect(f.store.store(fact(B, "hijack", { replaces: mine.id }))).rejects.toMatchObject({
      code: "not_found",
    });
    expect(f.store.get(mine.id)!.supersededBy).toBeNull();
  });

  it("deleting a memory also deletes the versions it replaced", async () => {
    const v1 = await f.store.store(fact(A, "port is 8080"));
    const v2 = await f.store.store(fact(A, "port is 9090", { replaces: v1.id }));
    f.store.delete(v2.id, A);
    expect(f.store.get(v1.id)).toBeUndefined();
    expect(f.store.count({ includeSuperseded: true })).toBe(0);
  });

  it("keeps one identity's private memories invisible to another identity", async () => {
    await f.store.store(fact(A, "secret: the staging password rotates on tuesdays"));
    const { hits } = await f.store.query({
      identity: B,
      goalId: "g-1",
      query: "staging password rotates tuesdays",
    });
    expect(hits).toEqual([]);
  });

  it("answers not_found when another identity deletes a private memory, exactly as for a missing id", async () => {
    const m = await f.store.store(fact(A, "private note"));
    let theirs: unknown;
    let missing: unknown;
    try {
      f.store.delete(m.id, B);
    } catch (e) {
      theirs = e;
    }
    try {
      f.store.delete(999_999, B);
    } catch (e) {
      missing = e;
    }
    expect(isAidoError(theirs, "not_found")).toBe(true);
    expect(isAidoError(missing, "not_found")).toBe(true);
    expect((theirs as Error).message).toBe(`memory ${m.id} not found`);
    expect((missing as Error).message).toBe("memory 999999 not found");
    expect(f.store.get(m.id)).toBeDefined();
  });

  it("shows goal-shared memories to other identities of the same goal only, and global ones to all", async () => {
    const shared = await f.store.store(fact(A, "the report goes to /output/report.md", { scope: "goal" }));
    const global = await f.store.store(
      fact(A, "the report house style uses British spelling", { scope: "global" }),
    );
    const same = await f.store.query({ identity: B, goalId: "g-1", query: "report", limit: 10 });
    expect(same.hits.map((h) => h.id).sort()).toEqual([shared.id, global.id].sort());
    const other = await f.store.query({ identity: B, goalId: "g-2", query: "report", limit: 10 });
    expect(other.hits.map((h) => h.id)).toEqual([global.id]);
  });

  it("keeps memories across a restart (close, reopen the same file)", async () => {
    const m = await f.store.store(fact(A, "the customer is called Northwind"));
    f.store.close();
    const again = f.reopen();
    expect(again.get(m.id)?.content).toBe("the customer is called Northwind");
    const { hits } = await again.query({ identity: A, goalId: "g-9", query: "customer Northwind" });
    expect(hits.map((h) => h.id)).toEqual([m.id]);
  });

  it("resets all memories or one identity's, and counts live ones", async () => {
    await f.store.store(fact(A, "a1"));
    await f.store.store(fact(A, "a2"));
    await f.store.store(fact(B, "b1"));
    expect(f.store.count()).toBe(3);
    expect(f.store.count({ identity: A })).toBe(2);
    expect(f.store.reset({ identity: A })).toBe(2);
    expect(f.store.count()).toBe(1);
    expect(f.store.reset()).toBe(1);
    expect(f.store.count()).toBe(0);
  });

  it("answers each query from the tables as they are now, whoever wrote them and through which connection", async () => {
    // A query keeps the index status (live and indexed counts) between queries; every way
    // the tables can change must drop it, or a query would answer from a stale count.
    const status = async (store = f.store) => {
      const r = await store.query({ identity: A, goalId: "g-1", query: "pallets Rotterdam", limit: 10 });
      return { ids: r.hits.map((h) => h.id).sort((x, y) => x - y), unindexed: r.unindexed };
    };
    expect(await status()).toEqual({ ids: [], unindexed: 0 });
    // This store: a live count of 0 kept would answer "nothing" without searching.
    const own = await f.store.store(fact(A, "pallets leave Rotterdam on Mondays"));
    expect(await status()).toEqual({ ids: [own.id], unindexed: 0 });
    // Another store on the same connection (the daemon's one database).
    const sibling = new MemoryStore(f.store.db, {
      embedder: new LocalHashEmbedder(),
      maxRecords: 100,
      maxContentBytes: 4096,
      persistent: true,
    });
    const viaSibling = await sibling.store(fact(A, "pallets from Rotterdam go by barge"));
    expect(await status()).toEqual({ ids: [own.id, viaSibling.id], unindexed: 0 });
    // Another connection (`aido memory` beside a running daemon), with another embedder:
    // its memory is live but not in this store's index.
    const cli = f.reopen(new LocalHashEmbedder(128));
    const viaCli = await cli.store(fact(A, "pallets are counted in Rotterdam"));
    expect(await status()).toEqual({ ids: [own.id, viaSibling.id], unindexed: 1 });
    await f.store.reembed(new LocalHashEmbedder(128));
    expect(await status(cli)).toEqual({ ids: [own.id, viaSibling.id, viaCli.id], unindexed: 0 });
    cli.deleteAny(viaCli.id);
    expect(await status()).toEqual({ ids: [own.id, viaSibling.id], unindexed: 0 });
    sibling.delete(viaSibling.id, A);
    expect(await status()).toEqual({ ids: [own.id], unindexed: 0 });
    expect(cli.reset()).toBe(1);
    expect(await status()).toEqual({ ids: [], unindexed: 0 });
    // Back to one memory, but only under the 128-dim index: this store cannot search it.
    await cli.store(fact(A, "pallets wait in Rotterdam"));
    await expect(status()).rejects.toMatchObject({ code: "memory_not_indexed" });
    expect(f.store.pruneGoal("g-1")).toBe(0);
    await f.store.reembed();
    expect((await status()).unindexed).toBe(0);
    // A failed write (rolled back) leaves the answers as they were.
    await expect(f.store.store(fact(A, "pallets", { replaces: 999_999 }))).rejects.toMatchObject({
      code: "not_found",
    });
    expect((await status()).ids).toHaveLength(1);
  });

  it("keeps a goal's memories at goal end when memory is persistent", async () => {
    await f.store.store(fact(A, "kept"));
    expect(f.store.pruneGoal("g-1")).toBe(0);
    expect(f.store.count()).toBe(1);
  });
});

describe("MemoryStore without persistent memory", () => {
  let f: MemoryFixture;
  beforeEach(() => {
    f = memoryFixture();
  });
  afterEach(() => f.cleanup());

  it("shows a goal only the memories written during that goal, even the agent's own and global ones", async () => {
    const here = await f.store.store(fact(A, "invoice numbers start with INV", { provenance: prov("g-1") }));
    await f.store.store(fact(A, "invoice numbers end with a checksum", { provenance: prov("g-2") }));
    await f.store.store(fact(A, "invoice totals include VAT", { scope: "global", provenance: prov("g-2") }));
    const { hits } = await f.store.query({ identity: A, goalId: "g-1", query: "invoice numbers", limit: 10 });
    expect(hits.map((h) => h.id)).toEqual([here.id]);
  });

  it("removes a goal's memories when the goal ends (pruneGoal)", async () => {
    await f.store.store(fact(A, "x", { provenance: prov("g-1") }));
    await f.store.store(fact(B, "y", { scope: "goal", provenance: prov("g-1") }));
    const other = await f.store.store(fact(A, "z", { provenance: prov("g-2") }));
    expect(f.store.pruneGoal("g-1")).toBe(2);
    expect(f.store.list().map((m) => m.id)).toEqual([other.id]);
  });
});

describe("MemoryStore limits", () => {
  let f: MemoryFixture;
  beforeEach(() => {
    f = memoryFixture({ AIDO_PERSISTENT_MEMORY: "1" }, { maxRecords: 3, maxContentBytes: 64 });
  });
  afterEach(() => f.cleanup());

  it("fails with limit_exceeded when an identity already holds memory.max_records live memories", async () => {
    for (const t of ["one", "two", "three"]) await f.store.store(fact(A, t));
    await expect(f.store.store(fact(A, "four"))).rejects.toMatchObject({ code: "limit_exceeded" });
    expect(f.store.count({ identity: A })).toBe(3);
    // Another identity has its own allowance, and a replacement does not grow the count.
    await f.store.store(fact(B, "b-one"));
    const [first] = f.store.list({ identity: A });
    await f.store.store(fact(A, "three, corrected", { replaces: first!.id }));
    expect(f.store.count({ identity: A })).toBe(3);
  });

  it("refuses content larger than memory.max_content_bytes, counting UTF-8 bytes", async () => {
    await expect(f.store.store(fact(A, "é".repeat(33)))).rejects.toMatchObject({
      code: "limit_exceeded",
      details: { field: "content", bytes: 66, limit: 64 },
    });
    await expect(f.store.store(fact(A, "x".repeat(64)))).resolves.toBeDefined();
  });

  it("refuses empty content and unknown categories with invalid_input naming the field", async () => {
    await expect(f.store.store(fact(A, "   "))).rejects.toMatchObject({
      code: "invalid_input",
      details: { field: "content" },
    });
    await expect(f.store.store(fact(A, "ok", { category: "rumour" as never }))).rejects.toMatchObject({
      code: "invalid_input",
      details: { field: "category" },
    });
    await expect(f.store.query({ identity: A, goalId: "g", query: "x", limit: 0 })).rejects.toMatchObject({
      code: "invalid_input",
    });
  });
});
