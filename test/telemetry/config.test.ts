// When tracing is on and where it goes, from the standard OTEL_* variables: off by
// default, on with an endpoint, off again with OTEL_SDK_DISABLED or OTEL_TRACES_EXPORTER=none.
// What Aido cannot honour (grpc, http/json, another exporter) stops the daemon at start-up
// with exit 2 and a message naming the variable; a header's value is never in a message.

import { describe, expect, it } from "vitest";
import { daemonMain } from "../../src/daemon/main.js";
import { AidoError } from "../../src/errors.js";
import { telemetryFromEnv } from "../../src/telemetry/config.js";
import { makeTempHome } from "../support/home.js";

const base = "http://collector:4318";

function refusal(env: Record<string, string>): AidoError {
  try {
    telemetryFromEnv(env);
  } catch (e) {
    if (e instanceof AidoError) return e;
    throw e;
  }
  throw new Error("expected the config to be refused");
}

describe("turning tracing on and off", () => {
  it("is off without an endpoint, whatever else is set", () => {
    expect(telemetryFromEnv({})).toBeUndefined();
    expect(telemetryFromEnv({ OTEL_SERVICE_NAME: "x", OTEL_EXPORTER_OTLP_HEADERS: "a=b" })).toBeUndefined();
  });

  it("is on with OTEL_EXPORTER_OTLP_ENDPOINT (+ /v1/traces) or the traces endpoint as given", () => {
    expect(telemetryFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: base })?.tracesUrl).toBe(`${base}/v1/traces`);
    expect(telemetryFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: `${base}/` })?.tracesUrl).toBe(
      `${base}/v1/traces`,
    );
    const specific = telemetryFromEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: base,
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://traces.example/custom/path",
    });
    expect(specific?.tracesUrl).toBe("https://traces.example/custom/path");
  });

  it("is off again with OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none", () => {
    expect(
      telemetryFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: base, OTEL_SDK_DISABLED: "true" }),
    ).toBeUndefined();
    expect(
      telemetryFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: base, OTEL_TRACES_EXPORTER: "none" }),
    ).toBeUndefined();
    expect(
      telemetryFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: base, OTEL_TRACES_EXPORTER: "otlp" }),
    ).toBeDefined();
  });

  it("reads the service name, resource attributes, timeout and batch delay; defaults service.name to aido", () => {
    const t = telemetryFromEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: base,
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=prod,team=a%2Cb",
      OTEL_EXPORTER_OTLP_TIMEOUT: "2500",
      OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: "1500",
      OTEL_BSP_SCHEDULE_DELAY: "200",
    });
    expect(t).toMatchObject({
      serviceName: "aido",
      resourceAttributes: { "deployment.environment": "prod", team: "a,b" },
      timeoutMs: 1500,
      batchDelayMs: 200,
      captureContent: false,
    });
    expect(
      telemetryFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: base, OTEL_SERVICE_NAME: "swarm" })?.serviceName,
    ).toBe("swarm");
  });

  it("merges the headers, the traces-specific ones winning, and keeps them out of the config's JSON", () => {
    const t = telemetryFromEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: base,
      OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20general,x-a=1",
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: "authorization=Bearer%20traces",
    });
    expect(t?.headers()).toEqual({ authorization: "Bearer traces", "x-a": "1" });
    expect(JSON.stringify(t)).not.toContain("Bearer");
  });

  it("captures content only with OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true", () => {
    const on = (v: string) =>
      telemetryFromEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: base,
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: v,
      })?.captureContent;
    expect(on("true")).toBe(true);
    expect(on("TRUE")).toBe(true);
    expect(on("false")).toBe(false);
    expect(on("1")).toBe(false);
  });
});

describe("what Aido cannot honour", () => {
  it("refuses grpc and http/json, naming the variable and what is supported", () => {
    const grpc = refusal({ OTEL_EXPORTER_OTLP_ENDPOINT: base, OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" });
    expect(grpc.code).toBe("config_invalid");
    expect(grpc.message).toContain("OTEL_EXPORTER_OTLP_PROTOCOL");
    expect(grpc.message).toContain("http/protobuf");
    const json = refusal({
      OTEL_EXPORTER_OTLP_ENDPOINT: base,
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/json",
    });
    expect(json.message).toContain("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
    // The traces-specific variable wins over the general one.
    expect(
      telemetryFromEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: base,
        OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/protobuf",
      }),
    ).toBeDefined();
  });

  it("refuses another exporter, a bad endpoint and a bad timeout", () => {
    expect(refusal({ OTEL_EXPORTER_OTLP_ENDPOINT: base, OTEL_TRACES_EXPORTER: "zipkin" }).message).toContain(
      "OTEL_TRACES_EXPORTER",
    );
    expect(refusal({ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" }).message).toContain(
      "OTEL_EXPORTER_OTLP_ENDPOINT",
    );
    expect(refusal({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "ftp://x/" }).message).toContain("http: or https:");
    expect(
      refusal({ OTEL_EXPORTER_OTLP_ENDPOINT: base, OTEL_EXPORTER_OTLP_TIMEOUT: "soon" }).message,
    ).toContain("OTEL_EXPORTER_OTLP_TIMEOUT");
  });

  it("names a malformed header entry by position, never quoting its secret", () => {
    const e = refusal({
      OTEL_EXPORTER_OTLP_ENDPOINT: base,
      OTEL_EXPORTER_OTLP_HEADERS: "x=1,sk-live-SECRET",
    });
    expect(e.message).toContain("OTEL_EXPORTER_OTLP_HEADERS entry 2");
    expect(e.message).not.toContain("SECRET");
  });

  it("stops `aido daemon start` with exit 2 before anything starts", async () => {
    const h = makeTempHome();
    try {
      const err: string[] = [];
      const code = await daemonMain(
        ["--foreground"],
        { ...h.env, OTEL_EXPORTER_OTLP_ENDPOINT: base, OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" },
        { out: () => {}, err: (l) => err.push(l) },
      );
      expect(code).toBe(2);
      expect(err.join("\n")).toContain("OTEL_EXPORTER_OTLP_PROTOCOL");
    } finally {
      h.cleanup();
    }
  });
});
