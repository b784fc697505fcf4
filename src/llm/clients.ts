// llm/clients.ts — where the agent loop gets its LlmClient. One LlmClients per run (daemon
// or goal) applies the config's record/replay choice to every agent's client, so the
// numbering of recorded calls per agent is shared by all clients made for that agent:
// replaying: a ReplayClient (no provider, no key needed); recording: the real client,
// wrapped so every exchange is written; otherwise: the real client.

import type { Config } from "../config.js";
import { AidoError, ErrorCode } from "../errors.js";
import { type CreateClientOptions, createClient, parseModelRef } from "./providers.js";
import { ExchangeRecorder, ExchangeReplayer, secretsOf } from "./record.js";
import type { LlmClient } from "./types.js";

export class LlmClients {
  readonly #config: Config;
  readonly #opts: CreateClientOptions;
  readonly #recorder: ExchangeRecorder | undefined;
  readonly #replayer: ExchangeReplayer | undefined;

  constructor(config: Config, opts: CreateClientOptions = {}) {
    if (config.record && config.replay) {
      throw new AidoError(ErrorCode.configInvalid, "AIDO_RECORD and AIDO_REPLAY cannot both be set", {});
    }
    this.#config = config;
    this.#opts = opts;
    if (config.record) this.#recorder = new ExchangeRecorder(config.record, secretsOf(config));
    if (config.replay) {
      this.#replayer = new ExchangeReplayer(config.replay, opts.onUsage ? { onUsage: opts.onUsage } : {});
    }
  }

  /** The client for one agent (key: its manifest name; see record.ts) and "provider/model". */
  forAgent(agent: string, ref: string): LlmClient {
    if (this.#replayer) {
      const { provider, model } = parseModelRef(ref);
      return this.#replayer.client(agent, provider, model);
    }
    const client = createClient(this.#config, ref, this.#opts);
    return this.#recorder ? this.#recorder.wrap(agent, client) : client;
  }
}
