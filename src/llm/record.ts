// llm/record.ts — record and replay model exchanges. AIDO_RECORD=DIR writes every
// successful call as one JSON file, DIR/<agent>/<NNNN>.json, numbered per agent in call
// order: a summary of the request (never the keys, never headers) and the response in
// Aido's own format. AIDO_REPLAY=DIR plays them back in the same order per agent, without
// any provider, and fails loudly when the script runs out or the agent now offers a
// different set of tools than when it was recorded (the run has diverged; answers from the
// recording would no longer make sense).
//
// The agent key is the agent instance's key (llm/clients.ts): its manifest name, and
// "researcher#2", "researcher#3"... for later instances of one manifest, in spawn order.
// A replay that diverged stays diverged: every later call of any agent fails with the
// first divergence, so a parent cannot carry on from its recording past a child that
// failed (and a goal cannot end "succeeded" on answers that no longer fit).

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import type { Config, ProviderName } from "../config.js";
import { AidoError, ErrorCode } from "../errors.js";
import { blankSecrets } from "../security/blank-secrets.js";
import type { CompletionRequest, LlmClient, LlmResponse, UsageListener } from "./types.js";
import { textOf } from "./types.js";

export const EXCHANGE_FORMAT = "aido-llm-exchange/1";
const LAST_MESSAGE_CHARS = 2000;

const UsageSchema = z.object({
  input_tokens: z.number().int().min(0),
  output_tokens: z.number().int().min(0),
});
const ResponseSchema = z.object({
  content: z.array(
    z.union([
      z.object({ type: z.literal("text"), text: z.string() }),
      z.object({
        type: z.literal("tool_use"),
        id: z.string(),
        name: z.string(),
        input: z.record(z.string(), z.unknown()),
        input_error: z.string().optional(),
      }),
    ]),
  ),
  stop_reason: z.enum(["end_turn", "tool_use", "max_tokens", "stop_sequence", "other"]),
  raw_stop_reason: z.string().optional(),
  usage: UsageSchema,
  model: z.string(),
  id: z.string().optional(),
  finish_reason: z.string().optional(),
});
const ExchangeSchema = z.object({
  format: z.literal(EXCHANGE_FORMAT),
  agent: z.string(),
  call: z.number().int().positive(),
  provider: z.string(),
  model: z.string(),
  request: z.object({
    model: z.string(),
    max_tokens: z.number(),
    stream: z.boolean(),
    tools: z.array(z.string()),
    system_sha256: z.string(),
    messages: z.number().int(),
    last_message: z.object({ role: z.string(), text: z.string() }).optional(),
  }),
  response: ResponseSchema,
});
export type RecordedExchange = z.infer<typeof ExchangeSchema>;

/** Folder name for an agent key: readable, and never a path out of the record folder. */
export function agentFolder(agent: string): string {
  const safe = agent.replace(/[^A-Za-z0-9._#-]/g, "_");
  if (safe === "" || /^\.+$/.test(safe)) {
    throw new AidoError(ErrorCode.invalidInput, `record/replay: "${agent}" cannot name an agent's folder`, {
      agent,
    });
  }
  return safe;
}

const fileName = (call: number) => `${String(call).padStart(4, "0")}.json`;
const toolSet = (req: CompletionRequest) => (req.tools ?? []).map((t) => t.name).sort();

/** Every key in the config: they must never reach a record file. */
export function secretsOf(config: Config): string[] {
  return Object.values(config.providers)
    .map((p) => p.apiKey)
    .filter((k): k is string => typeof k === "string" && k.length > 0);
}

/** Numbers calls per agent key, shared by every client made for that key. */
class CallCounter {
  readonly #next = new Map<string, number>();
  take(agent: string): number {
    const n = (this.#next.get(agent) ?? 0) + 1;
    this.#next.set(agent, n);
    return n;
  }
}

export class ExchangeRecorder {
  readonly #dir: string;
  readonly #secrets: string[];
  readonly #calls = new CallCounter();

  constructor(dir: string, secrets: readonly string[]) {
    this.#dir = dir;
    // Longest first, so a key that contains another is redacted whole.
    this.#secrets = [...secrets]
      .sort((a, b) => b.length - a.length)
      .map((s) => JSON.stringify(s).slice(1, -1));
  }

  wrap(agent: string, inner: LlmClient): LlmClient {
    const folder = join(this.#dir, agentFolder(agent));
    const complete = async (req: CompletionRequest): Promise<LlmResponse> => {
      const call = this.#calls.take(agent);
      const response = await inner.complete(req);
      const last = req.messages.at(-1);
      const exchange: RecordedExchange = {
        format: EXCHANGE_FORMAT,
        agent,
        call,
        provider: inner.provider,
        model: inner.model,
        request: {
          model: req.model ?? inner.model,
          max_tokens: req.max_tokens,
          stream: req.stream === true,
          tools: toolSet(req),
          system_sha256: createHash("sha256").update(req.system).digest("hex"),
          messages: req.messages.length,
          ...(last
            ? { last_message: { role: last.role, text: textOf(last.content).slice(0, LAST_MESSAGE_CHARS) } }
            : {}),
        },
        response,
      };
      mkdirSync(folder, { recursive: true });
      writeFileSync(join(folder, fileName(call)), `${this.#redact(JSON.stringify(exchange, null, 2))}\n`, {
        mode: 0o600,
      });
      return response;
    };
    return {
      provider: inner.provider,
      model: inner.model,
      ...(inner.baseURL !== undefined ? { baseURL: inner.baseURL } : {}),
      complete,
    };
  }

  #redact(text: string): string {
    return blankSecrets(text, this.#secrets, "[redacted]");
  }
}

export class ExchangeReplayer {
  readonly #dir: string;
  readonly #calls = new CallCounter();
  readonly #onUsage: UsageListener | undefined;
  #diverged: { message: string; details: Record<string, unknown> } | undefined;

  constructor(dir: string, opts: { onUsage?: UsageListener } = {}) {
    if (!existsSync(dir)) {
      throw new AidoError(ErrorCode.providerConfig, `AIDO_REPLAY: folder ${dir} does not exist`, { dir });
    }
    this.#dir = dir;
    this.#onUsage = opts.onUsage;
  }

  client(agent: string, provider: ProviderName, model: string): LlmClient {
    const complete = async (req: CompletionRequest): Promise<LlmResponse> => {
      if (this.#diverged) throw replayError(this.#diverged.message, this.#diverged.details);
      const call = this.#calls.take(agent);
      let exchange: RecordedExchange;
      try {
        exchange = this.#load(agent, call);
        const want = exchange.request.tools.join(", ");
        const got = toolSet(req).join(", ");
        if (want !== got) {
          throw replayError(
            `replay: agent "${agent}" call ${call} was recorded with tools [${want}] but now offers [${got}]: the run has diverged from the recording in ${this.#dir}`,
            { agent, call },
          );
        }
      } catch (e) {
        if (e instanceof AidoError) this.#diverged = { message: e.message, details: e.details };
        throw e;
      }
      const response = exchange.response as LlmResponse;
      if (req.stream && req.onText) {
        for (const b of response.content) if (b.type === "text" && b.text !== "") req.onText(b.text);
      }
      this.#onUsage?.(response.usage, { provider, model: response.model });
      return structuredClone(response);
    };
    return { provider, model, complete };
  }

  #load(agent: string, call: number): RecordedExchange {
    const folder = join(this.#dir, agentFolder(agent));
    const file = join(folder, fileName(call));
    if (!existsSync(file)) {
      const recorded = existsSync(folder)
        ? readdirSync(folder).filter((f) => /^\d{4}\.json$/.test(f)).length
        : 0;
      throw replayError(
        `replay: agent "${agent}" made call ${call} but ${this.#dir} holds only ${recorded} recorded call(s) for it: the script ran out`,
        { agent, call, recorded },
      );
    }
    let data: unknown;
    try {
      data = JSON.parse(readFileSync(file, "utf8"));
    } catch (e) {
      throw replayError(`replay: ${file} is not JSON: ${(e as Error).message}`, { file });
    }
    const parsed = ExchangeSchema.safeParse(data);
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      throw replayError(`replay: ${file}: ${first?.path.join(".") || "(root)"}: ${first?.message}`, { file });
    }
    return parsed.data;
  }
}

function replayError(message: string, details: Record<string, unknown>): AidoError {
  return new AidoError(ErrorCode.providerFailed, message, { replay: true, ...details });
}
