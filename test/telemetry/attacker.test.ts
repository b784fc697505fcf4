// test/telemetry/attacker.test.ts — a model that wants a secret out of the runtime through
// the traces: it has been talked into repeating the provider's API key, and puts it where
// a span carries text even with message content off (the path of a call the gate denies,
// whose reason names it, or the name of a tool that does not exist). And a model that
// probes for secret files: with message content off, the paths it tried appear on no span
// (a denial's span says its code, not the gate's text). A real daemon (goals in real
// containers) exports to a local OTLP/HTTP receiver.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { requireDocker } from "../support/docker.js";
import { type OtlpReceiver, startOtlpReceiver } from "../support/otlp-receiver.js";
import { turn } from "../support/provider-server.js";

/** The scripted provider's Anthropic key (test/agent/harness.ts providerEnv). */
const KEY = "sk-ant-test";
/** A secret-looking file the model tries to read. */
const PROBED = "/workspace/.ssh/id_ed25519";

let receiver: OtlpReceiver;
beforeAll(async () => {
  receiver = await startOtlpReceiver();
});
afterAll(() => receiver?.close());
const suite = useDaemonPerTest({ afterEach: () => receiver.reset() });

describe("a secret a model puts in a denied call, or a secret file it probes for", () => {
  beforeAll(() => requireDocker());

  for (const content of ["false", "true"]) {
    it(`never reaches a span's name or attributes, nor with content off the paths it tried (message content ${content === "true" ? "on" : "off"})`, async () => {
      suite.server.script('manifest "leaky"', [
        turn.toolUse("file_read", { path: `/workspace/${KEY}/notes.md` }),
        turn.toolUse("file_read", { path: PROBED }),
        // A tool that does not exist, named with the key: a span's name carries the tool's name.
        turn.toolUse(KEY, {}),
        turn.text("could not read it"),
      ]);
      const fx = await suite.start({
        runtime: { backend: undefined },
        env: {
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
          OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: content,
        },
      });
      const c = await fx.client();
      const leaky = manifest("leaky", { capabilities: ["tool: file_read", "file_read: /inputs/**"] });
      const { goal_id } = await c.call("goal.submit", { goal: "read the notes", manifest: leaky });
      expect((await c.call("goal.wait", { goal_id, timeout_ms: 30_000 })).state).toBe("succeeded");
      await fx.daemon.close();

      const denied = receiver.spans.filter((s) => s.name === "execute_tool file_read");
      expect(denied.map((s) => [s.attributes["aido.gate.verdict"], s.attributes["error.type"]])).toEqual([
        ["denied", "capability_denied"],
        ["denied", "capability_denied"],
      ]);
      const reasons = denied.map((s) => String(s.attributes["aido.gate.reason"]));
      if (content === "true") {
        // Opted in: the gate's own words, the key still replaced (the gate blanks the config's
        // secrets in its refusals itself, as *** ; tracing redacts what is left).
        expect(reasons[0]).toContain("/workspace/***/notes.md");
        expect(reasons[1]).toContain(PROBED);
      } else {
        // Off: the code alone, nothing the model wrote.
        expect(reasons).toEqual(["capability_denied", "capability_denied"]);
      }
      // Content on: the name, the key replaced; off: no name a model made up at all.
      expect(receiver.spans.map((s) => s.name)).toContain(
        content === "true" ? "execute_tool [redacted]" : "execute_tool unknown",
      );
      const everything = JSON.stringify(
        receiver.spans.map((s) => [s.name, s.attributes, s.status, s.resource]),
      );
      expect(everything).not.toContain(KEY);
      if (content === "false") {
        expect(everything).not.toContain("id_ed25519");
        expect(everything).not.toContain("notes.md");
      }
    }, 60_000);
  }
});
