// test/support/otlp-receiver.ts — a local OTLP/HTTP trace collector for tests and the bench:
// a node http server on 127.0.0.1 that takes POST /v1/traces (application/x-protobuf,
// gzip or not), decodes the ExportTraceServiceRequest with a minimal protobuf reader (only
// the fields a test asserts on: resource and span attributes, ids, names, kinds, status),
// and keeps every span and the headers each request came with. No dependency: the wire
// format of protobuf is small, and decoding it ourselves means the test checks the bytes
// the daemon really sent, not what a library we share with it thinks they mean.

import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";

export type AnyValue = string | number | boolean | AnyValue[] | { [k: string]: AnyValue } | Buffer | null;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** "" for a root span. */
  parentSpanId: string;
  name: string;
  /** 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, AnyValue>;
  /** 0 unset, 1 ok, 2 error. */
  status: { code: number; message: string };
  resource: Record<string, AnyValue>;
}

export interface OtlpReceiver {
  /** Base URL for OTEL_EXPORTER_OTLP_ENDPOINT: http://127.0.0.1:PORT */
  readonly url: string;
  readonly spans: ReceivedSpan[];
  /** Headers of every export request, in order. */
  readonly requests: IncomingHttpHeaders[];
  /** Resolves when at least `n` spans arrived (rejects after `timeoutMs`). */
  waitForSpans(n: number, timeoutMs?: number): Promise<ReceivedSpan[]>;
  reset(): void;
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: IncomingHttpHeaders[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/v1/traces") {
        res.writeHead(404).end();
        return;
      }
      try {
        let body = Buffer.concat(chunks);
        if (req.headers["content-encoding"] === "gzip") body = gunzipSync(body);
        spans.push(...decodeExportRequest(body));
        requests.push(req.headers);
        // An empty ExportTraceServiceResponse: success.
        res.writeHead(200, { "content-type": "application/x-protobuf" }).end(Buffer.alloc(0));
      } catch (e) {
        res.writeHead(400).end(String(e));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    requests,
    async waitForSpans(n, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs;
      while (spans.length < n) {
        if (Date.now() > until) throw new Error(`expected ${n} spans, received ${spans.length}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return spans;
    },
    reset() {
      spans.length = 0;
      requests.length = 0;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

// --- protobuf ---------------------------------------------------------------------------

type Field = { no: number; wire: number; varint?: bigint; bytes?: Buffer; fixed?: Buffer };

/** The fields of one message, in order (repeated fields appear once per element). */
function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) throw new Error("truncated varint");
      const b = buf[pos++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (pos < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ no, wire, varint: varint() });
    else if (wire === 1) {
      out.push({ no, wire, fixed: buf.subarray(pos, pos + 8) });
      pos += 8;
    } else if (wire === 2) {
      const len = Number(varint());
      out.push({ no, wire, bytes: buf.subarray(pos, pos + len) });
      pos += len;
    } else if (wire === 5) {
      out.push({ no, wire, fixed: buf.subarray(pos, pos + 4) });
      pos += 4;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

const str = (f: Field | undefined): string => f?.bytes?.toString("utf8") ?? "";
const hex = (f: Field | undefined): string => f?.bytes?.toString("hex") ?? "";
const all = (fs: Field[], no: number): Field[] => fs.filter((f) => f.no === no);
const one = (fs: Field[], no: number): Field | undefined => fs.find((f) => f.no === no);

function anyValue(buf: Buffer): AnyValue {
  const f = fields(buf)[0];
  if (!f) return null;
  switch (f.no) {
    case 1:
      return str(f);
    case 2:
      return f.varint === 1n;
    case 3:
      return Number(BigInt.asIntN(64, f.varint ?? 0n));
    case 4:
      return (f.fixed as Buffer).readDoubleLE(0);
    case 5:
      return all(fields(f.bytes as Buffer), 1).map((v) => anyValue(v.bytes as Buffer));
    case 6:
      return keyValues(all(fields(f.bytes as Buffer), 1));
    case 7:
      return Buffer.from(f.bytes as Buffer);
    default:
      return null;
  }
}

function keyValues(kvs: Field[]): Record<string, AnyValue> {
  const out: Record<string, AnyValue> = {};
  for (const kv of kvs) {
    const fs = fields(kv.bytes as Buffer);
    const value = one(fs, 2);
    out[str(one(fs, 1))] = value ? anyValue(value.bytes as Buffer) : null;
  }
  return out;
}

/** ExportTraceServiceRequest -> spans (opentelemetry/proto/collector/trace/v1). */
export function decodeExportRequest(body: Buffer): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of all(fields(body), 1)) {
    const rsf = fields(rs.bytes as Buffer);
    const res = one(rsf, 1);
    const resource = res ? keyValues(all(fields(res.bytes as Buffer), 1)) : {};
    for (const ss of all(rsf, 2)) {
      for (const sp of all(fields(ss.bytes as Buffer), 2)) {
        const s = fields(sp.bytes as Buffer);
        const st = one(s, 15);
        const stf = st ? fields(st.bytes as Buffer) : [];
        out.push({
          traceId: hex(one(s, 1)),
          spanId: hex(one(s, 2)),
          parentSpanId: hex(one(s, 4)),
          name: str(one(s, 5)),
          kind: Number(one(s, 6)?.varint ?? 0n),
          startNs: one(s, 7)?.fixed?.readBigUInt64LE(0) ?? 0n,
          endNs: one(s, 8)?.fixed?.readBigUInt64LE(0) ?? 0n,
          attributes: keyValues(all(s, 9)),
          status: { code: Number(one(stf, 3)?.varint ?? 0n), message: str(one(stf, 2)) },
          resource,
        });
      }
    }
  }
  return out;
}

/** The span tree as indented text (AIDO_OTEL_DUMP=1 prints it; docs/observability.md shows one). */
export function formatSpanTree(spans: readonly ReceivedSpan[], pick: readonly string[] = []): string {
  const byParent = new Map<string, ReceivedSpan[]>();
  const ids = new Set(spans.map((s) => s.spanId));
  for (const s of [...spans].sort((a, b) => (a.startNs < b.startNs ? -1 : 1))) {
    const p = ids.has(s.parentSpanId) ? s.parentSpanId : "";
    byParent.set(p, [...(byParent.get(p) ?? []), s]);
  }
  const lines: string[] = [];
  const walk = (parent: string, depth: number) => {
    for (const s of byParent.get(parent) ?? []) {
      const ms = Number((s.endNs - s.startNs) / 1_000_000n);
      const attrs = pick
        .filter((k) => s.attributes[k] !== undefined)
        .map((k) => `${k}=${JSON.stringify(s.attributes[k])}`)
        .join(" ");
      const err = s.status.code === 2 ? ` ERROR(${s.status.message})` : "";
      lines.push(`${"  ".repeat(depth)}${s.name} [${ms} ms]${err}${attrs ? `  ${attrs}` : ""}`);
      walk(s.spanId, depth + 1);
    }
  };
  walk("", 0);
  return lines.join("\n");
}
