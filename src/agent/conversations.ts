// agent/conversations.ts — the conversation of a persistent agent (lifecycle: persistent),
// kept in SQLite so that `agent.run` after a daemon restart continues where it left off.
// One row per agent, rewritten after every turn; summaries (context.ts) shrink it.

import { type Db, migrate, prepared } from "../db/database.js";
import type { Message } from "../llm/types.js";

const MIGRATIONS = [
  `CREATE TABLE agent_conversations (
     agent_id TEXT PRIMARY KEY,
     messages TEXT NOT NULL,
     updated_at INTEGER NOT NULL
   );`,
];

export class ConversationStore {
  constructor(private readonly db: Db) {
    migrate(db, "agent_conversations", MIGRATIONS);
  }

  load(agentId: string): Message[] {
    const raw = prepared(this.db, "SELECT messages FROM agent_conversations WHERE agent_id = ?")
      .pluck()
      .get(agentId) as string | undefined;
    return raw === undefined ? [] : (JSON.parse(raw) as Message[]);
  }

  save(agentId: string, messages: readonly Message[]): void {
    prepared(
      this.db,
      `INSERT INTO agent_conversations (agent_id, messages, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (agent_id) DO UPDATE SET messages = excluded.messages, updated_at = excluded.updated_at`,
    ).run(agentId, JSON.stringify(messages), Date.now());
  }
}
