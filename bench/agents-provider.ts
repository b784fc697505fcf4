// bench/agents-provider.ts — the scripted provider for bench/agents.ts, in its own process
// so that its CPU (serving HTTP, encoding answers) is not counted as the runtime's. Every
// answer comes after a fixed delay. The fan-out parent (system prompt with
// manifest "fanout") first asks for spawn_agents with CHILDREN children, then answers;
// every other request (a child) asks for BENCH_CHILD_TURNS - 1 memory_query calls, one per
// turn, then answers with text. Prints the server's URL, then serves
// until stdin closes; prints the most requests it had in flight on exit. With
// BENCH_RECORD=file it then writes the children's requests to that file (JSON: each one's
// path, body and arrival in ms after the first), which bench/agents-baseline.ts replays.

import { writeFileSync } from "node:fs";
import { type ProviderServer, startProviderServer, turn } from "../test/support/provider-server.js";

/** One recorded request (BENCH_RECORD). */
export interface RecordedCall {
  atMs: number;
  path: string;
  body: unknown;
}

const delayMs = Number(process.env.BENCH_DELAY_MS ?? 200);
const children = Number(process.env.BENCH_CHILDREN ?? 50);
/** Model turns per child: every turn but the last asks for a memory_query call. */
const childTurns = Number(process.env.BENCH_CHILD_TURNS ?? 1);
const record = process.env.BENCH_RECORD;

const server: ProviderServer = await startProviderServer();
const child = (i: number) => ({
  manifest: {
    name: "leaf",
    system_prompt: `Child ${i}.`,
    capabilities: childTurns > 1 ? ["tool: memory_query"] : [],
    budget: { max_tokens: 20_000 * childTurns },
    limits: { max_iterations: childTurns + 1 },
  },
  message: `Task ${i}`,
});
server.script('manifest "fanout"', [
  turn.toolUse(
    "spawn_agents",
    { children: Array.from({ length: children }, (_, i) => child(i)) },
    { delayMs },
  ),
  turn.text("all children done", { delayMs }),
]);
server.fallback((req) => {
  const messages = (req.body as { messages?: unknown[] }).messages ?? [];
  // A child's nth request carries 2n - 1 messages: its task, then a call and a result per turn.
  const done = (messages.length - 1) / 2;
  return done + 1 < childTurns
    ? turn.toolUse("memory_query", { query: `fact ${done}` }, { delayMs })
    : turn.text("child done", { delayMs });
});
/** The children's requests (the parent's are not what a working agent's turn sends). */
function recorded(): RecordedCall[] {
  const parent = new Set(server.requestsMatching('manifest "fanout"'));
  const calls = server.requests.filter((r) => !parent.has(r));
  const first = calls[0]?.receivedAt ?? 0;
  return calls.map((r) => ({ atMs: r.receivedAt - first, path: r.path, body: r.body }));
}
console.log(server.url);
process.stdin.resume();
process.stdin.on("end", async () => {
  console.log(`maxInFlight=${server.maxInFlight}`);
  if (record) writeFileSync(record, JSON.stringify(recorded()));
  await server.close();
  process.exit(0);
});
