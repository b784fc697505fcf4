// telemetry/tracer.ts — the small tracing seam the runtime calls: start an agent span, a
// chat span or a tool span under an explicit parent, set attributes, end it. Tracing off
// is the absence of a Tracer: every hook in the runtime is `tracer?.…` / `span?.…`, one
// null check, and the OpenTelemetry packages are never loaded (openTracer imports them
// only when the config turns tracing on). Parents are passed explicitly (the agent record
// holds its run's span; a tool's span reaches the children it spawns through the tool
// context) instead of through a global async context manager, so nothing else in the
// process (the SDKs' own instrumentation, say) can attach spans to ours or ours to theirs.

import type { Config } from "../config.js";
import { type AttributeValue, type ContentRedactor, redactorFor } from "./attributes.js";
import { printableUrl } from "./config.js";

export type SpanAttributes = Record<string, AttributeValue | undefined>;

/** One span in flight. end() is idempotent. */
export interface TraceSpan {
  set(attributes: SpanAttributes): void;
  /** Ends the span; with `errorType` the status is ERROR and error.type is set. */
  end(errorType?: string): void;
}

export interface Tracer {
  /** Message content, tool arguments and results may be put on spans (the standard opt-in). */
  readonly content: ContentRedactor | undefined;
  /** invoke_agent {name}, INTERNAL. */
  startAgent(parent: TraceSpan | undefined, name: string, attributes: SpanAttributes): TraceSpan;
  /** chat {model}, CLIENT. */
  startChat(parent: TraceSpan | undefined, model: string, attributes: SpanAttributes): TraceSpan;
  /** execute_tool {tool}, INTERNAL. */
  startTool(parent: TraceSpan | undefined, tool: string, attributes: SpanAttributes): TraceSpan;
  /** Export what is buffered and stop; waits at most `waitMs`. */
  shutdown(waitMs: number): Promise<void>;
}

/**
 * The Tracer the config asks for, or undefined (tracing off: nothing is loaded). `log`
 * receives the export failures, rate-limited (telemetry/otel.ts).
 */
export async function openTracer(
  config: Config,
  log: (message: string) => void,
): Promise<Tracer | undefined> {
  const t = config.telemetry;
  if (!t) return undefined;
  const { OtelTracer } = await import("./otel.js");
  log(
    `tracing on: spans go to ${printableUrl(t.tracesUrl)} (from ${t.endpointVariable}) as service "${t.serviceName}"${t.captureContent ? ", with message content" : ""}`,
  );
  return new OtelTracer(t, redactorFor(config), log);
}
