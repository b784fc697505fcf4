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

it("a base URL's password is never in a failure's text (the URL shown with *** in its place)", async () => {
  // Nothing listens on the port: the call cannot reach the server, and the error names the URL.
  const closed = new URL(server.openaiURL);
  closed.port = "9";
  closed.username = "relay";
  closed.password = "hunter2-base-url";
  const ds = homeFor(server, { DEEPSEEK_BASE_URL: closed.toString() });
  try {
    const err = await failureOf(
      createClient(ds.config, "deepseek/gpt-test", FAST).complete(ask("unreached")),
    );
    expect(err.message).toContain("cannot reach http://relay:***@127.0.0.1:9/");
    expect(err.message).not.toContain("hunter2-base-url");
  } finally {
    ds.cleanup();
  }
});

it("a base URL refused for its scheme is named without its password", () => {
  const ds = homeFor(server, { DEEPSEEK_BASE_URL: "ftp://relay:hunter2-base-url@127.0.0.1/v1" });
  try {
    let message = "";
    try {
      createClient(ds.config, "deepseek/gpt-test", FAST);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toBe('DEEPSEEK_BASE_URL="ftp://relay:***@127.0.0.1/v1" is not an http(s) URL');
  } finally {
    ds.cleanup();
  }
});
