// memory/openai-embedder.ts — embeddings from an OpenAI-compatible endpoint (OpenAI,
// Ollama, any /v1/embeddings server) through the official `openai` SDK, and the factory
// that picks the embedder a Config asks for. The dimension is learned from the endpoint
// once (a probe call) so the store never has to guess which vector table to use. Its
// requests are retried by llm/retry.ts's policy, as chat calls are (the SDK's own retries
// are off): an answer past http-fetch's caps is then not asked for again.

import OpenAI from "openai";
import type { Config, ProviderName } from "../config.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { type CallSite, classifySdkError } from "../llm/failure.js";
import { httpFetch, responseTooLarge } from "../llm/http-fetch.js";
import { OPENAI_SDK_ERRORS } from "../llm/openai-chat.js";
import { callSite } from "../llm/providers.js";
import { callWithRetries, DEFAULT_BACKOFF, type RetryPolicy } from "../llm/retry.js";
import { type Embedder, LocalHashEmbedder } from "./embedder.js";

/** Inputs per request: endpoints cap the batch (OpenAI at 2048); stay well below. */
const BATCH = 128;
const DEFAULT_MODEL = "openai/text-embedding-3-small";
const EMBEDDING_PROVIDERS = ["openai", "ollama", "openai-compat"] as const;

export interface OpenAIEmbedderOptions {
  /** Model name as the endpoint knows it (no provider prefix). */
  model: string;
  /** Recorded with every vector; defaults to `model`. */
  id?: string;
  /** Whose endpoint it is (what a failure tells the user to check); defaults to openai. */
  provider?: ProviderName;
  apiKey?: string;
  baseURL?: string;
  timeoutMs?: number;
  maxRetries?: number;
}

export class OpenAIEmbedder implements Embedder {
  readonly id: string;
  readonly dimensions: number;
  private readonly client: OpenAI;
  private readonly model: string;
  private readonly site: CallSite;
  private readonly retry: RetryPolicy;

  private constructor(
    client: OpenAI,
    model: string,
    id: string,
    dimensions: number,
    site: CallSite,
    retry: RetryPolicy,
  ) {
    this.client = client;
    this.model = model;
    this.id = id;
    this.dimensions = dimensions;
    this.site = site;
    this.retry = retry;
  }

  /** Connects and asks the endpoint for one embedding to learn the model's dimension. */
  static async connect(opts: OpenAIEmbedderOptions): Promise<OpenAIEmbedder> {
    const client = new OpenAI({
      apiKey: opts.apiKey ?? "unused",
      baseURL: opts.baseURL ?? null,
      // null, not undefined: the SDK would otherwise read its own environment variables.
      organization: null,
      project: null,
      timeout: opts.timeoutMs ?? 60_000,
      // One retry policy (llm/retry.ts): the SDK would retry an answer past http-fetch's cap.
      maxRetries: 0,
      fetch: httpFetch,
    });
    const site = callSite(opts.provider ?? "openai", opts.model, client.baseURL, opts.apiKey);
    const retry: RetryPolicy = {
      maxRetries: opts.maxRetries ?? 2,
      timeoutMs: opts.timeoutMs ?? 60_000,
      ...DEFAULT_BACKOFF,
    };
    const probe = new OpenAIEmbedder(client, opts.model, opts.id ?? opts.model, 0, site, retry);
    const [v] = await probe.request(["dimension probe"]);
    if (!v || v.length === 0) {
      throw new AidoError(
        ErrorCode.providerFailed,
        `embedding model ${opts.model} returned an empty vector`,
        {
          model: opts.model,
        },
      );
    }
    return new OpenAIEmbedder(client, opts.model, opts.id ?? opts.model, v.length, site, retry);
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (let i = 0; i < texts.length; i += BATCH) {
      const vectors = await this.request(texts.slice(i, i + BATCH));
      for (const v of vectors) {
        if (v.length !== this.dimensions) {
          throw new AidoError(
            ErrorCode.providerFailed,
            `embedding model ${this.id} returned ${v.length} dimensions, expected ${this.dimensions}`,
            { model: this.id, got: v.length, expected: this.dimensions },
          );
        }
        out.push(v);
      }
    }
    return out;
  }

  private async request(input: string[]): Promise<Float32Array[]> {
    let res: OpenAI.Embeddings.CreateEmbeddingResponse;
    try {
      // "float" explicitly: the SDK would ask for base64, which not every compatible server speaks.
      res = await callWithRetries(
        this.site,
        this.retry,
        (e) => classifySdkError(e, OPENAI_SDK_ERRORS),
        (signal) =>
          this.client.embeddings.create({ model: this.model, input, encoding_format: "float" }, { signal }),
      );
    } catch (e) {
      throw new AidoError(
        ErrorCode.providerFailed,
        `embedding request to ${this.id} failed: ${errorMessage(responseTooLarge(e) ?? e)}`,
        {
          model: this.id,
        },
      );
    }
    if (!Array.isArray(res.data) || res.data.length !== input.length) {
      throw new AidoError(
        ErrorCode.providerFailed,
        `embedding model ${this.id} returned ${res.data?.length ?? 0} vectors for ${input.length} inputs`,
        { model: this.id },
      );
    }
    const sorted = [...res.data].sort((a, b) => a.index - b.index);
    return sorted.map((d) => Float32Array.from(d.embedding));
  }
}

/**
 * "provider/model" (provider one of openai, ollama, openai-compat) or a bare model name,
 * which means OpenAI. Keys and endpoints come from config.providers.
 */
export function embeddingEndpoint(
  config: Pick<Config, "providers" | "inference">,
  modelRef: string,
): OpenAIEmbedderOptions {
  const slash = modelRef.indexOf("/");
  const prefix = slash > 0 ? modelRef.slice(0, slash) : "";
  const provider: ProviderName = (EMBEDDING_PROVIDERS as readonly string[]).includes(prefix)
    ? (prefix as ProviderName)
    : "openai";
  const model = provider === prefix ? modelRef.slice(slash + 1) : modelRef;
  if (model === "") {
    throw new AidoError(ErrorCode.configInvalid, `memory.embedding_model "${modelRef}" names no model`, {
      key: "memory.embedding_model",
    });
  }
  const env = config.providers[provider];
  let baseURL = env.baseURL;
  if (provider === "ollama") {
    const host = baseURL ?? "http://127.0.0.1:11434";
    baseURL = `${/^https?:\/\//.test(host) ? host : `http://${host}`}`.replace(/\/+$/, "") + "/v1";
  }
  if (provider === "openai-compat" && !baseURL) {
    throw new AidoError(
      ErrorCode.providerConfig,
      `memory.embedding_model "${modelRef}" needs AIDO_OPENAI_COMPAT_BASE_URL`,
      { key: "memory.embedding_model" },
    );
  }
  if (provider === "openai" && !env.apiKey && !baseURL) {
    throw new AidoError(
      ErrorCode.providerConfig,
      `memory.embedder "openai" needs OPENAI_API_KEY (or OPENAI_BASE_URL)`,
      {
        key: "memory.embedder",
      },
    );
  }
  const opts: OpenAIEmbedderOptions = {
    model,
    id: `${provider}/${model}`,
    provider,
    timeoutMs: config.inference.requestTimeoutMs,
    maxRetries: config.inference.maxRetries,
  };
  if (env.apiKey) opts.apiKey = env.apiKey;
  if (baseURL) opts.baseURL = baseURL;
  return opts;
}

/** The embedder a Config asks for: the local hashing model unless memory.embedder is "openai". */
export async function createEmbedder(
  config: Pick<Config, "memory" | "providers" | "inference">,
): Promise<Embedder> {
  if (config.memory.embedder === "local") return new LocalHashEmbedder();
  return OpenAIEmbedder.connect(embeddingEndpoint(config, config.memory.embeddingModel ?? DEFAULT_MODEL));
}
