// test/memory/fixture.ts — a MemoryStore on a real SQLite file in a temp AIDO_HOME.

import type { Env } from "../../src/config.js";
import { type Embedder, LocalHashEmbedder } from "../../src/memory/embedder.js";
import { MemoryStore } from "../../src/memory/store.js";
import type { Provenance, StoreInput } from "../../src/memory/types.js";
import { makeTempHome, type TempHome } from "../support/home.js";

export interface MemoryFixture {
  home: TempHome;
  store: MemoryStore;
  /** Opens another store on the same database file (a restart, or a second embedder). */
  reopen(embedder?: Embedder): MemoryStore;
  cleanup(): void;
}

export function memoryFixture(
  env: Env = {},
  overrides: { maxRecords?: number; maxContentBytes?: number } = {},
): MemoryFixture {
  const home = makeTempHome(env);
  const config = { ...home.config, memory: { ...home.config.memory, ...overrides } };
  const opened: MemoryStore[] = [];
  const open = (embedder: Embedder = new LocalHashEmbedder()) => {
    const s = MemoryStore.open(config, embedder);
    opened.push(s);
    return s;
  };
  const store = open();
  return {
    home,
    store,
    reopen: open,
    cleanup() {
      for (const s of opened) if (s.db.open) s.close();
      home.cleanup();
    },
  };
}

export const prov = (
  goalId = "g-1",
  agentId = "a-1",
  source: Provenance["source"] = "trusted",
): Provenance => ({
  goalId,
  agentId,
  source,
});

export function fact(identity: string, content: string, more: Partial<StoreInput> = {}): StoreInput {
  return { identity, scope: "private", category: "fact", content, provenance: prov(), ...more };
}
