// run-aido.sh hands the OTEL_* variables to the daemon's container by name (`-e NAME`:
// values, headers included, never land on a command line), and off host networking maps
// host.docker.internal to the host and says when an endpoint on loopback cannot work.
// The script is sourced (it then only defines its functions) and otel_args is called.

import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const SCRIPT = join(import.meta.dirname, "..", "..", "run-aido.sh");

function otelArgs(env: Record<string, string>): { args: string[]; stderr: string } {
  const r = spawnSync(
    "bash",
    // --norc and no stdin socket: Debian's bash reads ~/.bashrc when its stdin is a
    // socket, and what the machine's own rc file prints is not the script's.
    ["--norc", "-c", `source "$1"; args=(); otel_args; printf '%s\\n' "\${args[@]}"`, "bash", SCRIPT],
    {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  expect(r.status).toBe(0);
  return { args: r.stdout.split("\n").filter(Boolean), stderr: r.stderr };
}

describe("run-aido.sh and OpenTelemetry", () => {
  it("passes every OTEL_* variable that is set by name only, never its value", () => {
    const { args, stderr } = otelArgs({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://localhost:4318",
      OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20s3cret",
      OTEL_SERVICE_NAME: "swarm",
      OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: "true",
    });
    expect(args).toEqual([
      "-e",
      "OTEL_EXPORTER_OTLP_ENDPOINT",
      "-e",
      "OTEL_EXPORTER_OTLP_HEADERS",
      "-e",
      "OTEL_SERVICE_NAME",
      "-e",
      "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    ]);
    expect(args.join(" ")).not.toContain("s3cret");
    expect(stderr).toBe(""); // host networking (the default): localhost is the host's
  });

  it("adds nothing when no OTEL_* variable is set", () => {
    expect(otelArgs({ AIDO_DAEMON_NETWORK: "bridge" }).args).toEqual([]);
  });

  it("off host networking, maps host.docker.internal and warns about a loopback endpoint", () => {
    const { args, stderr } = otelArgs({
      AIDO_DAEMON_NETWORK: "bridge",
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://127.0.0.1:4318/v1/traces",
    });
    expect(args).toEqual([
      "-e",
      "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
      "--add-host",
      "host.docker.internal:host-gateway",
    ]);
    expect(stderr).toContain("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT points at this machine's loopback");
    expect(stderr).toContain("host.docker.internal");
    const ok = otelArgs({
      AIDO_DAEMON_NETWORK: "bridge",
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://host.docker.internal:4318",
    });
    expect(ok.stderr).toBe("");
  });
});
