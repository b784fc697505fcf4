// test/llm/harness.ts — a Config whose providers all point at one scripted provider server.

import type { Config } from "../../src/config.js";
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
