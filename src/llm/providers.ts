// llm/providers.ts — from "provider/model" to a working LlmClient. The table below is the
// one place that knows which API each provider speaks, which variable holds its key and
// which its endpoint, so every configuration error can name the variable to set. A missing
// key fails here, before any request, rather than as a 401 deep inside an agent run.

import type { Config, ProviderName } from "../config.js";
import { AidoError, ErrorCode } from "../errors.js";
import { urlPassword } from "../security/url-password.js";
import { AnthropicClient } from "./anthropic.js";
import type { CallSite } from "./failure.js";
import { OpenAIChatClient } from "./openai-chat.js";
import { DEFAULT_BACKOFF, type RetryEvent, type RetryPolicy } from "./retry.js";
import type { LlmClient, UsageListener } from "./types.js";

interface ProviderSpec {
  api: "anthropic" | "openai-chat";
  /** Variable holding the key; absent: the provider takes no key. */
  keyVariable?: string;
  keyRequired: boolean;
  endpointVariable: string;
  defaultBaseURL?: string;
}

export const PROVIDERS: Readonly<Record<ProviderName, ProviderSpec>> = {
  anthropic: {
    api: "anthropic",
    keyVariable: "ANTHROPIC_API_KEY",
    keyRequired: true,
    endpointVariable: "ANTHROPIC_BASE_URL",
    defaultBaseURL: "https://api.anthropic.com",
  },
  openai: {
    api: "openai-chat",
    keyVariable: "OPENAI_API_KEY",
    keyRequired: true,
    endpointVariable: "OPENAI_BASE_URL",
    defaultBaseURL: "https://api.openai.com/v1",
  },
  deepseek: {
    api: "openai-chat",
    keyVariable: "DEEPSEEK_API_KEY",
    keyRequired: true,
    endpointVariable: "DEEPSEEK_BASE_URL",
    defaultBaseURL: "https://api.deepseek.com",
  },
  ollama: {
    api: "openai-chat",
    keyRequired: false,
    endpointVariable: "OLLAMA_HOST",
    defaultBaseURL: "http://127.0.0.1:11434",
  },
  "openai-compat": {
    api: "openai-chat",
    keyVariable: "OPENAI_API_KEY",
    keyRequired: false,
    endpointVariable: "AIDO_OPENAI_COMPAT_BASE_URL",
  },
};

/** The SDK insists on some key; servers that take none ignore this one. */
const NO_KEY = "aido-no-key";

export interface ModelRef {
  provider: ProviderName;
  model: string;
}

/** Split "provider/model" at the first slash ("openai-compat/org/model" keeps "org/model"). */
export function parseModelRef(ref: string): ModelRef {
  const slash = ref.indexOf("/");
  const provider = slash > 0 ? ref.slice(0, slash) : "";
  const model = slash > 0 ? ref.slice(slash + 1) : "";
  const known = Object.keys(PROVIDERS);
  if (!known.includes(provider)) {
    const what =
      slash > 0
        ? `unknown provider "${provider}" in model "${ref}"`
        : `model "${ref}" has no provider prefix`;
    throw new AidoError(
      ErrorCode.providerConfig,
      `${what}: write it as provider/model with provider one of ${known.join(", ")}`,
      {
        model: ref,
      },
    );
  }
  if (model.trim() === "") {
    throw new AidoError(ErrorCode.providerConfig, `model "${ref}" names no model after "${provider}/"`, {
      model: ref,
    });
  }
  return { provider: provider as ProviderName, model };
}

export interface CreateClientOptions {
  onUsage?: UsageListener;
  onRetry?: (e: RetryEvent) => void;
  /** Backoff tuning; the retry count and timeout come from config.inference. */
  backoff?: Partial<Pick<RetryPolicy, "baseDelayMs" | "maxDelayMs" | "maxRetryAfterMs" | "random">>;
}

export function createClient(config: Config, ref: string, opts: CreateClientOptions = {}): LlmClient {
  const { provider, model } = parseModelRef(ref);
  const spec = PROVIDERS[provider];
  const env = config.providers[provider];
  const apiKey = env.apiKey && env.apiKey !== "" ? env.apiKey : undefined;
  if (spec.keyRequired && !apiKey) {
    throw new AidoError(
      ErrorCode.providerConfig,
      `${ref}: no API key for ${provider}: set ${spec.keyVariable}`,
      { provider, variable: spec.keyVariable },
    );
  }
  const rawURL = env.baseURL && env.baseURL !== "" ? env.baseURL : spec.defaultBaseURL;
  if (!rawURL) {
    throw new AidoError(
      ErrorCode.providerConfig,
      `${ref}: no endpoint for ${provider}: set ${spec.endpointVariable}`,
      {
        provider,
        variable: spec.endpointVariable,
      },
    );
  }
  const site = callSite(
    provider,
    model,
    provider === "ollama" ? ollamaBaseURL(rawURL) : checkURL(rawURL, spec.endpointVariable),
    apiKey,
  );
  const retry: RetryPolicy = {
    maxRetries: config.inference.maxRetries,
    timeoutMs: config.inference.requestTimeoutMs,
    ...DEFAULT_BACKOFF,
    ...opts.backoff,
  };
  const adapter = { site, apiKey: apiKey ?? NO_KEY, retry, onUsage: opts.onUsage, onRetry: opts.onRetry };
  return spec.api === "anthropic" ? new AnthropicClient(adapter) : new OpenAIChatClient(adapter);
}

/**
 * Where a call goes, with the variables its failure messages tell the user to check, and the
 * secret they never show, `apiKey` (failure.ts).
 */
export function callSite(provider: ProviderName, model: string, baseURL: string, apiKey?: string): CallSite {
  const spec = PROVIDERS[provider];
  return {
    provider,
    model,
    baseURL,
    endpointVariable: spec.endpointVariable,
    ...(spec.keyVariable ? { keyVariable: spec.keyVariable } : {}),
    secrets: apiKey ? [apiKey] : [],
  };
}

function checkURL(raw: string, variable: string): string {
  try {
    const url = new URL(raw);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("not http(s)");
  } catch {
    throw new AidoError(
      ErrorCode.providerConfig,
      `${variable}="${urlPassword(raw).shown}" is not an http(s) URL`,
      { variable },
    );
  }
  return raw.replace(/\/+$/, "");
}

/**
 * OLLAMA_HOST is what the Ollama server binds to: often "host:port" without a scheme, or
 * 0.0.0.0. The OpenAI-compatible API lives under /v1.
 */
export function ollamaBaseURL(host: string): string {
  const given = host.trim();
  const hasScheme = /^https?:\/\//i.test(given);
  const url = new URL(checkURL(hasScheme ? given : `http://${given}`, "OLLAMA_HOST"));
  if (url.hostname === "0.0.0.0") url.hostname = "127.0.0.1";
  if (!hasScheme && !/:\d+(\/|$)/.test(given)) url.port = "11434";
  const base = url.toString().replace(/\/+$/, "");
  return base.endsWith("/v1") ? base : `${base}/v1`;
}
