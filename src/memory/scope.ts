// memory/scope.ts — what an agent's tool calls get bound to: one store, the agent's stable
// identity and the manifest's episodic switch. The agent loop builds one per agent and
// puts it in ToolContext.services.memory; goal and agent ids come from the ToolContext.

import type { MemoryStore } from "./store.js";
import type { MemorySource } from "./types.js";

export interface MemoryScope {
  store: MemoryStore;
  identity: string;
  /** manifest `memory.episodic`; false means memory_* tools refuse to run. */
  episodic: boolean;
  /**
   * Where what the agent stores comes from. Absent means "tool": an agent that has read any
   * tool output may be repeating it, so memories are untrusted unless the loop says otherwise.
   */
  contentSource?: () => MemorySource;
}
