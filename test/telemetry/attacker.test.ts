// test/telemetry/attacker.test.ts — a model that wants a secret out of the runtime through
// the traces: it has been talked into repeating the provider's API key, and puts it where
// a span carries text even with message content off (the path of a call the gate denies,
// whose reason names it, or the name of a tool that does not exist). A real daemon (goals in real containers) exports to a local
// OTLP/HTTP receiver.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { requireDocker } from "../support/docker.js";
import { type OtlpReceiver, startOtlpReceiver } from "../support/otlp-receiver.js";
import { turn } from "../support/provider-server.js";

/** The scripted provider's Anthropic key (test/agent/harness.ts providerEnv). */
const KEY = "sk-ant-test";

let receiver: OtlpReceiver;
beforeAll(async () => {
  receiver = await startOtlpReceiver();
});
afterAll(() => receiver?.close());
const suite = useDaemonPerTest({ afterEach: () => receiver.reset() });

describe("a secret a model puts in a denied call", () => {
  beforeAll(() => requireDocker());

  for (const content of ["false", "true"]) {
    it(`never reaches a span's name or attributes (message content ${content === "true" ? "on" : "off"})`, async () => {
      suite.server.script('manifest "leaky"', [
        turn.toolUse("file_read", { path: `/workspace/${KEY}/notes.md` }),
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

      const denied = receiver.spans.find((s) => s.name === "execute_tool file_read");
      expect(denied?.attributes["aido.gate.verdict"]).toBe("denied");
      expect(String(denied?.attributes["aido.gate.reason"])).toContain("/workspace/[redacted]/notes.md");
      expect(receiver.spans.map((s) => s.name)).toContain("execute_tool [redacted]");
      const everything = JSON.stringify(
        receiver.spans.map((s) => [s.name, s.attributes, s.status, s.resource]),
      );
      expect(everything).not.toContain(KEY);
    }, 60_000);
  }
});
