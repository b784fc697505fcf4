// A buffered answer over http-fetch is a BufferedResponse (llm/buffered-response.ts), not
// undici's Response. Differential: every kind of body is served by one bare server and read
// the same way through Node's own fetch and through httpFetch, and what a caller observes
// (values, bodyUsed, errors by name and message) must be the same.

import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BufferedResponse } from "../../src/llm/buffered-response.js";
import { httpFetch } from "../../src/llm/http-fetch.js";

interface Served {
  status?: number;
  headers?: Record<string, string>;
  /** Written one after the other with a pause between, so a reader may see them apart. */
  chunks: Buffer[];
}

const euro = Buffer.from("€ and ü", "utf8");
const BODIES: Record<string, Served> = {
  json: { headers: { "content-type": "application/json" }, chunks: [Buffer.from('{"a":1,"ü":["x",null]}')] },
  text: { headers: { "content-type": "text/plain" }, chunks: [Buffer.from("plain text")] },
  empty: { chunks: [] },
  binary: {
    headers: { "content-type": "application/octet-stream" },
    chunks: [Buffer.from(Array.from({ length: 256 }, (_, i) => i))],
  },
  // A multi-byte character split across two writes (and two TCP segments).
  split: {
    headers: { "content-type": "text/plain; charset=utf-8" },
    chunks: [euro.subarray(0, 1), euro.subarray(1)],
  },
  bom: { chunks: [Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from("after a BOM")] },
  invalidUtf8: { chunks: [Buffer.from([0x61, 0xff, 0xfe, 0xc3])] },
  badJson: { headers: { "content-type": "application/json" }, chunks: [Buffer.from('{"a":')] },
  notFound: {
    status: 404,
    headers: { "content-type": "application/json" },
    chunks: [Buffer.from('{"e":1}')],
  },
  gzip: { headers: { "content-encoding": "gzip" }, chunks: [gzipSync(Buffer.from("zipped"))] },
  form: {
    headers: { "content-type": "application/x-www-form-urlencoded" },
    chunks: [Buffer.from("a=1&b=%C3%BC&a=2")],
  },
  multipart: {
    headers: { "content-type": "multipart/form-data; boundary=XyZ" },
    chunks: [Buffer.from('--XyZ\r\ncontent-disposition: form-data; name="f"\r\n\r\nvalue\r\n--XyZ--\r\n')],
  },
};
/** Content types as servers send them, for blob()'s type. */
const CONTENT_TYPES = [
  "application/json",
  "Text/Plain; Charset=UTF-8",
  'text/html;charset="utf-8"',
  "text/plain ; a=b ; c=d",
  "image/PNG",
  "not a mime type",
  "text/plain, application/json",
  "",
];

let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer(async (req, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://x");
    const type = url.searchParams.get("type");
    const served: Served =
      type !== null
        ? { headers: { "content-type": type }, chunks: [Buffer.from("typed")] }
        : (BODIES[url.pathname.slice(1)] ?? { status: 500, chunks: [] });
    res.writeHead(served.status ?? 200, served.headers);
    for (const [i, chunk] of served.chunks.entries()) {
      if (i > 0) await new Promise((ok) => setTimeout(ok, 20));
      res.write(chunk);
    }
    res.end();
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((ok) => server.close(() => ok()));
});

type Outcome = unknown;
/** A value, or the error it threw (name and message), so both sides compare. */
async function outcome(f: () => unknown): Promise<Outcome> {
  try {
    const v = await f();
    if (v instanceof ArrayBuffer) return { arrayBuffer: [...new Uint8Array(v)] };
    if (v instanceof Uint8Array) return { bytes: [...v], isUint8Array: true };
    if (v instanceof Blob)
      return { blob: v.type, size: v.size, content: [...new Uint8Array(await v.arrayBuffer())] };
    if (v instanceof FormData) return { formData: [...v.entries()] };
    return { value: v };
  } catch (e) {
    return { error: (e as Error).name, message: (e as Error).message, type: (e as Error).constructor.name };
  }
}

/** What a caller sees of the answer's head. */
function head(r: Response) {
  const headers = [...r.headers].filter(([k]) => k !== "date");
  return {
    status: r.status,
    statusText: r.statusText,
    ok: r.ok,
    headers,
    url: r.url,
    redirected: r.redirected,
    type: r.type,
  };
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<number[]> {
  const out: number[] = [];
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) out.push(...chunk);
  return out;
}

type Reader = (r: Response) => Promise<Outcome[]>;
const READS: Record<string, Reader> = {
  "text()": async (r) => [await outcome(() => r.text()), r.bodyUsed],
  "json()": async (r) => [await outcome(() => r.json()), r.bodyUsed],
  "arrayBuffer()": async (r) => [await outcome(() => r.arrayBuffer()), r.bodyUsed],
  "bytes()": async (r) => [
    await outcome(() => (r as Response & { bytes(): Promise<Uint8Array> }).bytes()),
    r.bodyUsed,
  ],
  "blob()": async (r) => [await outcome(() => r.blob()), r.bodyUsed],
  "formData()": async (r) => [await outcome(() => r.formData()), r.bodyUsed],
  "text() twice, then json(), clone() and arrayBuffer()": async (r) => [
    r.bodyUsed,
    await outcome(() => r.text()),
    await outcome(() => r.text()),
    await outcome(() => r.json()),
    await outcome(() => r.clone()),
    await outcome(() => r.arrayBuffer()),
    r.bodyUsed,
  ],
  "clone(), then both read": async (r) => {
    const c = r.clone();
    return [
      head(c),
      await outcome(() => c.text()),
      r.bodyUsed,
      await outcome(() => r.arrayBuffer()),
      c.bodyUsed,
    ];
  },
  "clone() read first, then the original": async (r) => {
    const c = r.clone();
    return [
      await outcome(() => r.clone().json()),
      await outcome(() => c.text()),
      await outcome(() => r.text()),
    ];
  },
  "body read as a stream, then text()": async (r) => {
    const body = r.body as ReadableStream<Uint8Array>;
    const before = [body === r.body, r.bodyUsed];
    return [
      ...before,
      await readAll(body),
      r.bodyUsed,
      await outcome(() => r.text()),
      await outcome(() => r.clone()),
    ];
  },
  "body locked but not read, then text()": async (r) => {
    const reader = (r.body as ReadableStream<Uint8Array>).getReader();
    const used = r.bodyUsed;
    const tried = await outcome(() => r.text());
    reader.releaseLock();
    return [used, tried, r.bodyUsed, await outcome(() => r.text())];
  },
  "body touched, then text()": async (r) => [
    r.body !== null,
    r.bodyUsed,
    await outcome(() => r.text()),
    r.bodyUsed,
    r.body?.locked,
    await outcome(() => r.body?.getReader()),
  ],
  "body cancelled": async (r) => {
    await (r.body as ReadableStream<Uint8Array>).cancel();
    return [r.bodyUsed, await outcome(() => r.text())];
  },
  "text(), then the body stream": async (r) => {
    await r.text();
    const body = r.body as ReadableStream<Uint8Array>;
    return [body.locked, await outcome(() => body.getReader())];
  },
};

async function both(path: string, read: Reader) {
  const viaFetch = await fetch(base + path);
  const viaHttpFetch = await httpFetch(base + path);
  // Not undici's Response: the answer this suite is about.
  expect(viaHttpFetch).toBeInstanceOf(BufferedResponse);
  expect(viaHttpFetch).not.toBeInstanceOf(Response);
  const theirs = [head(viaFetch), ...(await read(viaFetch))];
  const ours = [head(viaHttpFetch), ...(await read(viaHttpFetch))];
  return { theirs, ours };
}

describe("a buffered answer read through httpFetch and through Node's fetch", () => {
  for (const path of Object.keys(BODIES)) {
    for (const [name, read] of Object.entries(READS)) {
      it(`reads the ${path} body with ${name} the same way`, async () => {
        const { theirs, ours } = await both(`/${path}`, read);
        expect(ours).toEqual(theirs);
      });
    }
  }

  it.each(CONTENT_TYPES)("gives blob() the same type for content-type %j", async (type) => {
    const { theirs, ours } = await both(`/typed?type=${encodeURIComponent(type)}`, READS["blob()"] as Reader);
    expect(ours).toEqual(theirs);
  });
});
