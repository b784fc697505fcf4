// cli/commands/memory.ts — `aido memory list | search | delete | reset`: people looking
// at (and pruning) what agents remember. These open $AIDO_HOME/aido.db directly
// through memory/cli.ts (SQLite in WAL mode lets them run beside a live daemon), so they
// work whether or not the daemon is up.

import { existsSync } from "node:fs";
import type { Config } from "../../config.js";
import { AidoError, ErrorCode } from "../../errors.js";
import { deleteMemory, listMemories, resetMemories, searchMemories } from "../../memory/cli.js";
import { type Embedder, LocalHashEmbedder } from "../../memory/embedder.js";
import { createEmbedder } from "../../memory/openai-embedder.js";
import { MemoryStore } from "../../memory/store.js";
import type { MemoryHit, MemoryRecord } from "../../memory/types.js";
import { inert } from "../../security/terminal-text.js";
import { type CliIo, type Command, jsonOption, parseCommandArgs, printJson, UsageError } from "../command.js";
import { commandSpec } from "./index.js";

/**
 * Listing, deleting and resetting never embed anything, so they use the local embedder and
 * need no provider; search embeds the query with the configured one.
 */
async function openStore(config: Config, embedder?: Embedder): Promise<MemoryStore> {
  if (!existsSync(config.dbPath)) {
    throw new AidoError(ErrorCode.notFound, `no Aido state at ${config.home} (nothing has run yet)`, {
      home: config.home,
    });
  }
  return MemoryStore.open(config, embedder ?? new LocalHashEmbedder());
}

function positiveInt(flag: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0)
    throw new UsageError(`${flag} must be a positive integer, got "${raw}"`);
  return n;
}

function printRecords(io: CliIo, records: (MemoryRecord | MemoryHit)[]): void {
  if (records.length === 0) io.out("(no memories)");
  for (const m of records) {
    const when = new Date(m.createdAt).toISOString().slice(0, 19).replace("T", " ");
    const dist = "distance" in m ? ` d=${m.distance.toFixed(3)}` : "";
    const sup = m.supersededBy !== null ? ` (superseded by ${m.supersededBy})` : "";
    io.out(
      `${String(m.id).padStart(6)} ${when} ${m.identity} ${m.scope}/${m.category} goal=${m.provenance.goalId} ${m.provenance.source}${dist}${sup}`,
    );
    // A model wrote the content: inert text, on one line.
    io.out(`       ${inert(m.content.replace(/\s+/g, " ").slice(0, 200))}`);
  }
}

export const memoryList: Command = {
  ...commandSpec("memory list"),
  async run(ctx) {
    const { values } = parseCommandArgs(
      this,
      ctx.argv,
      {
        ...jsonOption,
        identity: { type: "string" },
        goal: { type: "string" },
        superseded: { type: "boolean" },
        limit: { type: "string" },
      },
      false,
    );
    const limit = positiveInt("--limit", values.limit, 100);
    const store = await openStore(await ctx.config());
    try {
      const records = listMemories(store, {
        ...(values.identity ? { identity: values.identity } : {}),
        ...(values.goal ? { goalId: values.goal } : {}),
        includeSuperseded: values.superseded === true,
        limit,
      });
      if (values.json) printJson(ctx.io, records);
      else printRecords(ctx.io, records);
      return 0;
    } finally {
      store.close();
    }
  },
};

export const memorySearch: Command = {
  ...commandSpec("memory search"),
  async run(ctx) {
    const { values, positionals } = parseCommandArgs(this, ctx.argv, {
      ...jsonOption,
      limit: { type: "string" },
    });
    const query = positionals.join(" ").trim();
    if (query === "") throw new UsageError(`no query given\nusage: ${this.usage}`);
    const limit = positiveInt("--limit", values.limit, 10);
    const config = await ctx.config();
    const store = await openStore(config, await createEmbedder(config));
    try {
      const r = await searchMemories(store, query, limit);
      if (values.json) printJson(ctx.io, r);
      else {
        printRecords(ctx.io, r.hits);
        if (r.unindexed > 0)
          ctx.io.err(`note: ${r.unindexed} memories are not indexed by the current embedder (run reembed)`);
      }
      return 0;
    } finally {
      store.close();
    }
  },
};

export const memoryDelete: Command = {
  ...commandSpec("memory delete"),
  async run(ctx) {
    const { values, positionals } = parseCommandArgs(this, ctx.argv, jsonOption);
    if (positionals.length !== 1) throw new UsageError(`give exactly one memory id\nusage: ${this.usage}`);
    const id = positiveInt("ID", positionals[0], 0);
    const store = await openStore(await ctx.config());
    try {
      const gone = deleteMemory(store, id);
      if (values.json) printJson(ctx.io, gone);
      else ctx.io.out(`deleted memory ${gone.id} (${gone.identity})`);
      return 0;
    } finally {
      store.close();
    }
  },
};

export const memoryReset: Command = {
  ...commandSpec("memory reset"),
  async run(ctx) {
    const { values } = parseCommandArgs(
      this,
      ctx.argv,
      { ...jsonOption, identity: { type: "string" }, yes: { type: "boolean" } },
      false,
    );
    if (!values.yes) {
      const what = values.identity ? `every memory of ${values.identity}` : "EVERY memory";
      throw new UsageError(`this deletes ${what}; add --yes to confirm\nusage: ${this.usage}`);
    }
    const store = await openStore(await ctx.config());
    try {
      const r = resetMemories(store, values.identity ? { identity: values.identity } : {});
      if (values.json) printJson(ctx.io, r);
      else ctx.io.out(`deleted ${r.deleted} memories`);
      return 0;
    } finally {
      store.close();
    }
  },
};
