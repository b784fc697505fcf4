// telemetry/config.ts — whether the daemon exports traces, and where, from the standard
// OpenTelemetry variables (read here, once, from the environment config.ts was given; the
// SDK's own readers of process.env are bypassed by passing everything explicitly).
// Off unless an OTLP endpoint is set; OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none
// turn it off again. Only OTLP over http/protobuf is exported (the installed exporter): a
// protocol or exporter Aido cannot honour is a configuration error at start-up, naming the
// variable and what is supported, rather than a daemon that silently exports nothing.
// Header values are kept behind a function, so the config object never carries them into
// a log line or an audit entry, and no message here ever quotes one.

import { AidoError, ErrorCode } from "../errors.js";

type Env = Readonly<Record<string, string | undefined>>;

export interface TelemetryConfig {
  /** Where spans are POSTed: the traces endpoint as given, or the base endpoint + /v1/traces. */
  tracesUrl: string;
  /** The variable tracesUrl came from (for messages). */
  endpointVariable: string;
  /** OTEL_EXPORTER_OTLP_HEADERS, overridden per key by ..._TRACES_HEADERS. Never logged. */
  headers(): Record<string, string>;
  /** Per export request. */
  timeoutMs: number;
  /** OTEL_BSP_SCHEDULE_DELAY: how long the batch processor gathers spans before an export. */
  batchDelayMs: number;
  serviceName: string;
  resourceAttributes: Record<string, string>;
  /** OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true: prompts, answers, tool arguments and results. */
  captureContent: boolean;
}

const DEFAULT_EXPORT_TIMEOUT_MS = 10_000;
const DEFAULT_BATCH_DELAY_MS = 5_000;
const SUPPORTED_PROTOCOL = "http/protobuf";

/** The tracing config, or undefined when tracing is off. Throws config_invalid naming the variable. */
export function telemetryFromEnv(env: Env): TelemetryConfig | undefined {
  if (set(env.OTEL_SDK_DISABLED)?.toLowerCase() === "true") return undefined;
  const exporters = set(env.OTEL_TRACES_EXPORTER)
    ?.split(",")
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  if (exporters?.includes("none")) return undefined;
  const unsupported = exporters?.filter((e) => e !== "otlp") ?? [];
  if (unsupported.length > 0) {
    throw invalid(
      "OTEL_TRACES_EXPORTER",
      `names ${unsupported.map((e) => `"${e}"`).join(", ")}: Aido exports traces with "otlp" only (or "none" to turn them off)`,
    );
  }
  const endpoint = tracesEndpoint(env);
  if (!endpoint) return undefined;
  for (const variable of ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"]) {
    const p = set(env[variable]);
    if (p === undefined) continue;
    if (p !== SUPPORTED_PROTOCOL) {
      throw invalid(
        variable,
        `is "${p}": Aido exports traces over ${SUPPORTED_PROTOCOL} only; unset it or set ${SUPPORTED_PROTOCOL} and point the endpoint at the collector's OTLP/HTTP port (usually 4318)`,
      );
    }
    break; // the traces-specific variable wins over the general one
  }
  const headers = {
    ...keyValues(env, "OTEL_EXPORTER_OTLP_HEADERS", { secret: true }),
    ...keyValues(env, "OTEL_EXPORTER_OTLP_TRACES_HEADERS", { secret: true }),
  };
  const resourceAttributes = keyValues(env, "OTEL_RESOURCE_ATTRIBUTES", { secret: false });
  const serviceName = set(env.OTEL_SERVICE_NAME) ?? resourceAttributes["service.name"] ?? "aido";
  return {
    tracesUrl: endpoint.url,
    endpointVariable: endpoint.variable,
    headers: () => ({ ...headers }),
    timeoutMs:
      timeout(env, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") ??
      timeout(env, "OTEL_EXPORTER_OTLP_TIMEOUT") ??
      DEFAULT_EXPORT_TIMEOUT_MS,
    batchDelayMs: timeout(env, "OTEL_BSP_SCHEDULE_DELAY") ?? DEFAULT_BATCH_DELAY_MS,
    serviceName,
    resourceAttributes,
    captureContent: set(env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)?.toLowerCase() === "true",
  };
}

/** The URL without credentials, for messages. */
export function printableUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return "(unparsable URL)";
  }
}

function tracesEndpoint(env: Env): { url: string; variable: string } | undefined {
  const specific = set(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  if (specific !== undefined) {
    return {
      url: httpUrl("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", specific),
      variable: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    };
  }
  const base = set(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  if (base === undefined) return undefined;
  const url = httpUrl("OTEL_EXPORTER_OTLP_ENDPOINT", base);
  return { url: `${url.replace(/\/+$/, "")}/v1/traces`, variable: "OTEL_EXPORTER_OTLP_ENDPOINT" };
}

function httpUrl(variable: string, raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw invalid(variable, "is not a URL (expected e.g. http://localhost:4318)");
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw invalid(variable, `uses ${u.protocol} but OTLP/HTTP needs an http: or https: URL`);
  }
  return raw;
}

/** The W3C-baggage-like list the OTel variables use: key=value,key2=value2, percent-encoded. */
function keyValues(env: Env, variable: string, opts: { secret: boolean }): Record<string, string> {
  const raw = set(env[variable]);
  const out: Record<string, string> = {};
  if (raw === undefined) return out;
  raw.split(",").forEach((item, i) => {
    if (item.trim() === "") return;
    const eq = item.indexOf("=");
    const key = eq > 0 ? item.slice(0, eq).trim() : "";
    if (key === "") {
      // A header entry may hold a secret: its position is named, never its text.
      throw invalid(
        variable,
        `entry ${i + 1}${opts.secret ? "" : ` ("${item.trim()}")`} is not key=value (entries are separated by commas)`,
      );
    }
    try {
      out[decodeURIComponent(key)] = decodeURIComponent(item.slice(eq + 1).trim());
    } catch {
      throw invalid(variable, `entry ${i + 1} (key "${key}") is not valid percent-encoding`);
    }
  });
  return out;
}

function timeout(env: Env, variable: string): number | undefined {
  const raw = set(env[variable]);
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) <= 0) {
    throw invalid(variable, `is "${raw}" but must be a positive number of milliseconds`);
  }
  return Number(raw);
}

function set(v: string | undefined): string | undefined {
  const t = v?.trim();
  return t === undefined || t === "" ? undefined : t;
}

function invalid(variable: string, what: string): AidoError {
  return new AidoError(ErrorCode.configInvalid, `environment variable ${variable} ${what}`, { variable });
}
