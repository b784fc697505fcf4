// llm/clients.ts — where the agent loop gets its LlmClient. One LlmClients per run (daemon
// or goal) applies the config's record/replay choice to every agent's client, so the
// numbering of recorded calls per agent is shared by all clients made for that agent:
// replaying: a ReplayClient (no provider, no key needed); recording: the real client,
// wrapped so every exchange is written; otherwise: the real client.
//
// Record/replay keys. An agent instance's key is its manifest name for the first instance
// of that name in this run and "name#2", "name#3"... for later ones, in the order agents
// are first seen (spawn order: the spawner asks for a client while it spawns, and a batch
// is spawned in list order). Keyed by manifest name alone, two children of one manifest
// running in parallel would draw from one numbered script in whatever order their calls
// happened to interleave, and a replay would hand one child the other's answers.

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
  /** One SDK client per "provider/model": agents share its keep-alive connections. */
  readonly #shared = new Map<string, LlmClient>();
  /** Recording or replaying: agent id -> its client under its instance key. */
  readonly #instances = new Map<string, LlmClient>();
  readonly #instancesOfName = new Map<string, number>();

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

  /**
   * The client of one agent instance. Without record/replay, agents of one model share
   * one client; with it, each instance gets its key (see the header) on first sight.
   */
  forInstance(agentId: string, manifestName: string, ref: string): LlmClient {
    if (!this.#recorder && !this.#replayer) return this.#sharedClient(ref);
    let c = this.#instances.get(agentId);
    if (!c) {
      const n = (this.#instancesOfName.get(manifestName) ?? 0) + 1;
      this.#instancesOfName.set(manifestName, n);
      c = this.#forKey(n === 1 ? manifestName : `${manifestName}#${n}`, ref);
      this.#instances.set(agentId, c);
    }
    return c;
  }

  /** The client for one record/replay key (see record.ts) and "provider/model". */
  #forKey(agent: string, ref: string): LlmClient {
    if (this.#replayer) {
      const { provider, model } = parseModelRef(ref);
      return this.#replayer.client(agent, provider, model);
    }
    const client = this.#sharedClient(ref);
    return this.#recorder ? this.#recorder.wrap(agent, client) : client;
  }

  #sharedClient(ref: string): LlmClient {
    let c = this.#shared.get(ref);
    if (!c) {
      c = createClient(this.#config, ref, this.#opts);
      this.#shared.set(ref, c);
    }
    return c;
  }
}
