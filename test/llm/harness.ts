// test/llm/harness.ts — a Config whose providers all point at one scripted provider server,
// and the request and failure helpers the LLM suites share.

import { expect } from "vitest";
import type { Config } from "../../src/config.js";
import { AidoError } from "../../src/errors.js";
import type { CompletionRequest } from "../../src/llm/types.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import type { ProviderServer } from "../support/provider-server.js";

export const KEYS = {
  anthropic: "sk-ant-test-0123456789",
  openai: "sk-openai-test-0123456789",
  deepseek: "sk-ds-test-0123456789",
};

export function homeFor(server: ProviderServer, extra: Record<string, string> = {}): TempHome {
  return makeTempHome({
    ANTHROPIC_API_KEY: KEYS.anthropic,
    ANTHROPIC_BASE_URL: server.url,
    OPENAI_API_KEY: KEYS.openai,
    OPENAI_BASE_URL: server.openaiURL,
    DEEPSEEK_API_KEY: KEYS.deepseek,
    DEEPSEEK_BASE_URL: server.openaiURL,
    ...extra,
  });
}

/** The same config with other inference settings (the config file's job in real use). */
export function withInference(config: Config, inference: Partial<Config["inference"]>): Config {
  return { ...config, inference: { ...config.inference, ...inference } };
}

/** A one-message request with `system` as its marker (what provider-server scripts match). */
export const ask = (system: string, extra: Partial<CompletionRequest> = {}): CompletionRequest => ({
  system,
  messages: [{ role: "user", content: "hi" }],
  max_tokens: 32,
  ...extra,
});

/** Backoff small enough that only a honoured retry-after can explain a long wait. */
export const FAST = { backoff: { baseDelayMs: 1, maxDelayMs: 5 } };

/** The AidoError a call failed with (the test fails when it did not fail). */
export async function failureOf(p: Promise<unknown>): Promise<AidoError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(AidoError);
    return e as AidoError;
  }
  throw new Error("expected the call to fail");
}
