// telemetry/otel.ts — the Tracer over the OpenTelemetry SDK, loaded only when tracing is
// on (telemetry/tracer.ts imports this module dynamically). Spans go through a batch
// processor to the OTLP/HTTP protobuf exporter, configured explicitly from the parsed
// config (endpoint, headers, timeout, resource), so what the daemon was started with is
// what it uses. Exporting happens off the goal's path: a slow or dead collector costs the
// goal nothing, spans it cannot take are dropped, and the failure is logged once, then at
// most once a minute with a count. shutdown() flushes, waiting a bounded time.

import { ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import { Attr, type ContentRedactor, Operation } from "./attributes.js";
import { printableUrl, type TelemetryConfig } from "./config.js";
import type { SpanAttributes, Tracer, TraceSpan } from "./tracer.js";

/** Export failures after the first are reported at most this often. */
const EXPORT_FAILURE_REPORT_MS = 60_000;

class OtelSpan implements TraceSpan {
  private ended = false;
  constructor(
    readonly span: Span,
    private readonly secrets: ContentRedactor,
  ) {}

  /** Every string is scrubbed of the runtime's secrets, whatever attribute carries it. */
  set(attributes: SpanAttributes): void {
    if (this.ended) return;
    for (const [k, v] of Object.entries(attributes)) {
      if (v === undefined) continue;
      const scrubbed =
        typeof v === "string"
          ? this.secrets.scrub(v)
          : Array.isArray(v)
            ? v.map((x) => this.secrets.scrub(x))
            : v;
      this.span.setAttribute(k, scrubbed);
    }
  }

  end(errorType?: string): void {
    if (this.ended) return;
    this.ended = true;
    if (errorType !== undefined) {
      this.span.setAttribute(Attr.errorType, errorType);
      // The type only: a message may quote a prompt, a file or a tool's output.
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: errorType });
    }
    this.span.end();
  }
}

export class OtelTracer implements Tracer {
  private readonly provider: TracerProvider;
  private readonly tracer: ReturnType<TracerProvider["getTracer"]>;

  readonly content: ContentRedactor | undefined;

  /** `secrets` scrubs every span's strings; content goes on spans only when `captureContent`. */
  constructor(
    config: TelemetryConfig,
    private readonly secrets: ContentRedactor,
    log: (message: string) => void,
  ) {
    this.content = config.captureContent ? secrets : undefined;
    const exporter = new ReportingExporter(
      new OTLPTraceExporter({
        url: config.tracesUrl,
        headers: config.headers(),
        timeoutMillis: config.timeoutMs,
      }),
      printableUrl(config.tracesUrl),
      log,
    );
    this.provider = new TracerProvider({
      resource: resourceFromAttributes({
        ...config.resourceAttributes,
        "service.name": config.serviceName,
      }),
      spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: config.batchDelayMs })],
    });
    this.tracer = this.provider.getTracer("aido");
  }

  startAgent(parent: TraceSpan | undefined, name: string, attributes: SpanAttributes): TraceSpan {
    return this.start(`${Operation.agent} ${name}`, SpanKind.INTERNAL, parent, {
      [Attr.operation]: Operation.agent,
      ...attributes,
    });
  }

  startChat(parent: TraceSpan | undefined, model: string, attributes: SpanAttributes): TraceSpan {
    return this.start(`${Operation.chat} ${model}`, SpanKind.CLIENT, parent, {
      [Attr.operation]: Operation.chat,
      ...attributes,
    });
  }

  startTool(parent: TraceSpan | undefined, tool: string, attributes: SpanAttributes): TraceSpan {
    return this.start(`${Operation.tool} ${tool}`, SpanKind.INTERNAL, parent, {
      [Attr.operation]: Operation.tool,
      ...attributes,
    });
  }

  async shutdown(waitMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.provider.shutdown().catch(() => {}),
      new Promise<void>((r) => {
        timer = setTimeout(r, waitMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }

  private start(
    name: string,
    kind: SpanKind,
    parent: TraceSpan | undefined,
    attrs: SpanAttributes,
  ): TraceSpan {
    const ctx = parent instanceof OtelSpan ? trace.setSpan(ROOT_CONTEXT, parent.span) : ROOT_CONTEXT;
    // A name holds a tool's name as the model wrote it (one that does not exist included).
    const span = new OtelSpan(this.tracer.startSpan(this.secrets.scrub(name), { kind }, ctx), this.secrets);
    span.set(attrs);
    return span;
  }
}

type ExportCallback = Parameters<SpanExporter["export"]>[1];

/** The OTLP exporter, with its failures told to the operator (rate-limited) instead of swallowed. */
class ReportingExporter implements SpanExporter {
  private lastReport = 0;
  private failures = 0;
  private dropped = 0;

  constructor(
    private readonly inner: SpanExporter,
    private readonly where: string,
    private readonly log: (message: string) => void,
  ) {}

  export(spans: ReadableSpan[], done: ExportCallback): void {
    this.inner.export(spans, (result) => {
      // ExportResultCode.SUCCESS is 0 (@opentelemetry/core, not a dependency of ours).
      if (result.code !== 0) this.failed(spans.length, result.error);
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }

  private failed(spans: number, error: Error | undefined): void {
    this.failures++;
    this.dropped += spans;
    const now = Date.now();
    const first = this.lastReport === 0;
    if (!first && now - this.lastReport < EXPORT_FAILURE_REPORT_MS) return;
    const why = error?.message ?? "unknown error";
    this.log(
      first
        ? `tracing: exporting ${spans} span(s) to ${this.where} failed (${why}); the spans are dropped, goals are not affected; further failures are reported at most once a minute`
        : `tracing: ${this.failures} export(s) to ${this.where} failed since the last report, ${this.dropped} span(s) dropped; latest: ${why}`,
    );
    this.lastReport = now;
    this.failures = 0;
    this.dropped = 0;
  }
}
