import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { LocalHashEmbedder } from "../../src/memory/embedder.js";
import { createEmbedder, embeddingEndpoint, OpenAIEmbedder } from "../../src/memory/openai-embedder.js";
import { fact, type MemoryFixture, memoryFixture } from "./fixture.js";

const A = "agent:analyst";

const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const cos = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);

describe("LocalHashEmbedder", () => {
  const e = new LocalHashEmbedder();

  it("is deterministic, 384-dimensional and L2-normalised", async () => {
    const [a, b] = await e.embed(["Quarterly revenue grew", "Quarterly revenue grew"]);
    expect(e.dimensions).toBe(384);
    expect(a).toEqual(b);
    expect(norm(a!)).toBeCloseTo(1, 5);
  });

  it("puts texts sharing words closer than texts sharing none (it is lexical)", async () => {
    const [q, near, far] = await e.embed([
      "postgres connection pool exhausted",
      "the connection pool of postgres was exhausted at noon",
      "Alice likes green tea",
    ]);
    expect(cos(q!, near!)).toBeGreaterThan(0.4);
    expect(cos(q!, far!)).toBeLessThan(0.2);
  });

  it("gives text without words a defined unit vector", async () => {
    const [v] = await e.embed(["?!…"]);
    expect(norm(v!)).toBeCloseTo(1, 5);
  });
});

describe("distances", () => {
  let f: MemoryFixture;
  beforeEach(() => {
    f = memoryFixture({ AIDO_PERSISTENT_MEMORY: "1" });
  });
  afterEach(() => f.cleanup());

  it("are cosine distances even when an endpoint returns vectors that are not unit length", async () => {
    const local = new LocalHashEmbedder(64);
    const unnormalised = {
      id: "unnormalised",
      dimensions: 64,
      embed: async (texts: string[]) => (await local.embed(texts)).map((v) => v.map((x) => x * 7.5)),
    };
    const store = f.reopen(unnormalised);
    const same = await store.store(fact(A, "tides follow the moon"));
    const other = await store.store(fact(A, "bread needs yeast and time"));
    const { hits } = await store.query({
      identity: A,
      goalId: "g-1",
      query: "tides follow the moon",
      limit: 2,
    });
    expect(hits.map((h) => h.id)).toEqual([same.id, other.id]);
    expect(hits[0]!.distance).toBeCloseTo(0, 5);
    const [q, o] = await local.embed(["tides follow the moon", "bread needs yeast and time"]);
    expect(hits[1]!.distance).toBeCloseTo(1 - cos(q!, o!), 4);
  });
});

describe("switching embedders on one database", () => {
  let f: MemoryFixture;
  beforeEach(() => {
    f = memoryFixture({ AIDO_PERSISTENT_MEMORY: "1" });
  });
  afterEach(() => f.cleanup());

  it("never mixes dimensions: a 128-dim embedder reports memory_not_indexed until reembed, then finds them", async () => {
    const m = await f.store.store(fact(A, "the warehouse ships from Rotterdam"));
    const small = f.reopen(new LocalHashEmbedder(128));
    await expect(
      small.query({ identity: A, goalId: "g-1", query: "warehouse Rotterdam" }),
    ).rejects.toMatchObject({
      code: "memory_not_indexed",
      message: expect.stringMatching(
        /no memory is indexed for embedder local-hash-v1 \(128 dims\).*384 dims.*reembed/,
      ),
    });
    expect(await small.reembed()).toEqual({ indexed: 1, model: "local-hash-v1", dimensions: 128 });
    const { hits, unindexed } = await small.query({
      identity: A,
      goalId: "g-1",
      query: "warehouse Rotterdam",
    });
    expect(hits.map((h) => h.id)).toEqual([m.id]);
    expect(unindexed).toBe(0);
    // The 384-dim index is untouched and still answers.
    const { hits: big } = await f.store.query({ identity: A, goalId: "g-1", query: "warehouse Rotterdam" });
    expect(big.map((h) => h.id)).toEqual([m.id]);
  });

  it("reports how many live memories the current embedder has not indexed yet", async () => {
    await f.store.store(fact(A, "first fact about invoices"));
    const small = f.reopen(new LocalHashEmbedder(128));
    await small.reembed();
    await f.store.store(fact(A, "second fact about invoices"));
    const res = await small.query({ identity: A, goalId: "g-1", query: "invoices" });
    expect(res.hits).toHaveLength(1);
    expect(res.unindexed).toBe(1);
  });

  it("removes a replaced memory's vectors from every index", async () => {
    const old = await f.store.store(fact(A, "the office is in Lyon"));
    const small = f.reopen(new LocalHashEmbedder(128));
    await small.reembed();
    const now = await f.store.store(fact(A, "the office is in Nantes", { replaces: old.id }));
    await small.reembed();
    const { hits } = await small.query({
      identity: A,
      goalId: "g-1",
      query: "office Lyon Nantes",
      limit: 10,
    });
    expect(hits.map((h) => h.id)).toEqual([now.id]);
  });
});

/** A local server speaking the OpenAI embeddings wire format, embedding with the local hasher. */
function embeddingsServer(dims: number): Promise<{ server: Server; url: string; requests: unknown[] }> {
  const hasher = new LocalHashEmbedder(dims);
  const requests: unknown[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", async () => {
      const parsed = JSON.parse(body) as { model: string; input: string[]; encoding_format?: string };
      requests.push({ url: req.url, auth: req.headers.authorization, ...parsed });
      const vectors = await hasher.embed(parsed.input);
      res.setHeader("content-type", "application/json");
      res.end(
        JSON.stringify({
          object: "list",
          model: parsed.model,
          data: vectors.map((v, index) => ({ object: "embedding", index, embedding: Array.from(v) })),
          usage: { prompt_tokens: 1, total_tokens: 1 },
        }),
      );
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: `http://127.0.0.1:${port}/v1`, requests });
    }),
  );
}

describe("OpenAIEmbedder (real SDK over real HTTP)", () => {
  let srv: Awaited<ReturnType<typeof embeddingsServer>>;
  beforeAll(async () => {
    srv = await embeddingsServer(64);
  });
  afterAll(() => new Promise<void>((r) => srv.server.close(() => r())));

  it("learns the dimension from the endpoint and asks for float vectors with the configured key", async () => {
    const e = await OpenAIEmbedder.connect({
      model: "nomic-embed-text",
      id: "ollama/nomic-embed-text",
      baseURL: srv.url,
      apiKey: "k-1",
    });
    expect(e.dimensions).toBe(64);
    expect(e.id).toBe("ollama/nomic-embed-text");
    const [v] = await e.embed(["hello world"]);
    expect(v).toHaveLength(64);
    expect(srv.requests.at(-1)).toMatchObject({
      url: "/v1/embeddings",
      auth: "Bearer k-1",
      model: "nomic-embed-text",
      encoding_format: "float",
      input: ["hello world"],
    });
  });

  it("fails on an endpoint answering with a gzip bomb, naming the cap, without holding the bomb or asking again", async () => {
    // 16 gzip members of 64 MiB of zeros: about 1 MB on the wire, 1 GiB decoded.
    const member = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    let requests = 0;
    const bomb = createServer((req, res) => {
      requests++;
      req.resume();
      req.on("end", async () => {
        res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip" });
        for (let i = 0; i < 16 && !res.destroyed; i++)
          if (!res.write(member)) await new Promise((ok) => res.once("drain", ok).once("close", ok));
        res.end();
      });
    });
    await new Promise<void>((ok) => bomb.listen(0, "127.0.0.1", ok));
    try {
      const before = process.memoryUsage().rss;
      const connecting = OpenAIEmbedder.connect({
        model: "m",
        baseURL: `http://127.0.0.1:${(bomb.address() as AddressInfo).port}/v1`,
        // Retries on, as config.inference.max_retries has them: the SDK's own retries read
        // the bomb again each time.
        maxRetries: 2,
      });
      await expect(connecting).rejects.toThrow(
        /embedding request to m failed: the answer passed 32 MiB decoded/,
      );
      expect(process.memoryUsage().rss - before).toBeLessThan(400 * 1024 * 1024);
      expect(requests).toBe(1);
    } finally {
      bomb.closeAllConnections();
      await new Promise<void>((ok) => bomb.close(() => ok()));
    }
  });

  it("is picked by createEmbedder when memory.embedder is openai, and stores and queries through a store", async () => {
    const f = memoryFixture({ AIDO_PERSISTENT_MEMORY: "1" });
    try {
      const config = {
        ...f.home.config,
        memory: {
          ...f.home.config.memory,
          embedder: "openai" as const,
          embeddingModel: "openai-compat/embed-small",
        },
        providers: { ...f.home.config.providers, "openai-compat": { apiKey: "k-2", baseURL: srv.url } },
      };
      const e = await createEmbedder(config);
      expect(e).toMatchObject({ id: "openai-compat/embed-small", dimensions: 64 });
      const store = f.reopen(e);
      const m = await store.store(fact(A, "the invoices are due on the 5th"));
      await store.store(fact(A, "the printer is on floor 3"));
      const { hits } = await store.query({ identity: A, goalId: "g-1", query: "invoices due" });
      expect(hits[0]!.id).toBe(m.id);
    } finally {
      f.cleanup();
    }
  });

  it("builds the Ollama endpoint from OLLAMA_HOST and refuses openai without a key", () => {
    const base = { inference: { maxConcurrent: 1, maxRetries: 0, requestTimeoutMs: 1000 } };
    const providers = {
      anthropic: {},
      openai: {},
      deepseek: {},
      ollama: { baseURL: "10.0.0.5:11434" },
      "openai-compat": {},
    };
    expect(embeddingEndpoint({ ...base, providers }, "ollama/nomic-embed-text")).toMatchObject({
      model: "nomic-embed-text",
      baseURL: "http://10.0.0.5:11434/v1",
    });
    expect(() => embeddingEndpoint({ ...base, providers }, "text-embedding-3-small")).toThrow(
      /OPENAI_API_KEY/,
    );
  });
});
