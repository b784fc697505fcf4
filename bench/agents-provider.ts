// bench/agents-provider.ts — the scripted provider for bench/agents.ts, in its own process
// so that its CPU (serving HTTP, encoding answers) is not counted as the runtime's. Every
// answer comes after a fixed delay. The fan-out parent (system prompt with
// manifest "fanout") first asks for spawn_agents with CHILDREN children, then answers;
// every other request (a child) answers with text. Prints the server's URL, then serves
// until stdin closes; prints the most requests it had in flight on exit.

import { type ProviderServer, startProviderServer, turn } from "../test/support/provider-server.js";

const delayMs = Number(process.env.BENCH_DELAY_MS ?? 200);
const children = Number(process.env.BENCH_CHILDREN ?? 50);

const server: ProviderServer = await startProviderServer();
const child = (i: number) => ({
  manifest: { name: "leaf", system_prompt: `Child ${i}.`, capabilities: [], budget: { max_tokens: 20_000 } },
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
server.fallback(() => turn.text("child done", { delayMs }));
console.log(server.url);
process.stdin.resume();
process.stdin.on("end", async () => {
  console.log(`maxInFlight=${server.maxInFlight}`);
  await server.close();
  process.exit(0);
});
