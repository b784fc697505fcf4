// A provider's failure never shows the API key (llm/failure.ts failureError): the provider's
// own words are passed on, and an OpenAI-compatible server may echo the key it refused whole;
// it reached the error (and so the goal's result, the audit, the daemon's log).

import { afterAll, beforeAll, expect, it } from "vitest";
import { createClient } from "../../src/llm/providers.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import { ask, FAST, failureOf, homeFor, KEYS } from "./harness.js";

let server: ProviderServer;
beforeAll(async () => {
  server = await startProviderServer({ apiKeys: { anthropic: KEYS.anthropic, openai: KEYS.openai } });
});
afterAll(() => server?.close());

it("a refusal that echoes the whole key names the variable, not the key", async () => {
  // The server knows only the OpenAI key, so DeepSeek gets past auth with it and the script answers.
  const ds = homeFor(server, { DEEPSEEK_API_KEY: KEYS.openai });
  try {
    server.script("echoed", [turn.error(401, { message: `Incorrect API key provided: ${KEYS.openai}` })]);
    const err = await failureOf(createClient(ds.config, "deepseek/gpt-test", FAST).complete(ask("echoed")));
    expect(err.code).toBe("provider_config");
    expect(err.message).toContain("DEEPSEEK_API_KEY");
    expect(err.message).toContain("Incorrect API key provided: ***");
    expect(err.message).not.toContain(KEYS.openai);
  } finally {
    ds.cleanup();
  }
});
