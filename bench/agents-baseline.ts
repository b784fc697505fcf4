// bench/agents-baseline.ts — what of an agent turn is the model call itself, for
// bench/agents.ts. It replays the requests the children of one warmed long-agent run sent
// (recorded by bench/agents-provider.ts, BENCH_RECORD), at the same offsets against the same
// scripted provider (same delay, same answers), two ways, and measures this process's CPU
// (user + system) per call:
// - sdk: through the Anthropic SDK with the runtime's http-fetch, as an agent's turn calls
//   the model (request built, sent, answer parsed into the SDK's message);
// - plain: a bare node:http keep-alive POST of the JSON body, its answer read whole and
//   JSON.parse'd, the least any client does.
// Its own process, started with the daemon's V8 flags by bench/agents.ts: run inside the
// runtime's process before the measured runs, the replay perturbed them (1.9 vs 1.5 ms a
// turn). Each way is warmed first, then the ways alternate and the medians are reported.
// Usage: node <DAEMON_V8_FLAGS> --import tsx bench/agents-baseline.ts <recorded.json>
// <child turns>; prints JSON (Baselines) on stdout.

import { readFileSync } from "node:fs";
import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import Anthropic from "@anthropic-ai/sdk";
import { httpFetch } from "../src/llm/http-fetch.js";
import { startProvider } from "./agents.js";
import type { RecordedCall } from "./agents-provider.js";

/** Replays of each way before the measured ones (JIT, the first connections). */
const WARM_REPLAYS = 3;
/** Measured replays of each way, alternating; the medians are reported. */
const MEASURED_REPLAYS = 5;

export interface Baselines {
  calls: number;
  /** CPU ms per call of each measured replay, in the order measured. */
  sdk: number[];
  plain: number[];
}

type Send = (call: RecordedCall) => Promise<void>;

/** Every call sent at its recorded offset from the start (concurrent, as the children were). */
async function replay(calls: RecordedCall[], send: Send): Promise<number> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    calls.map(async (call) => {
      const wait = t0 + call.atMs - performance.now();
      if (wait > 0) await sleep(wait);
      await send(call);
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / 1000 / calls.length;
}

function viaSdk(url: string): Send {
  const sdk = new Anthropic({
    apiKey: "sk-bench",
    authToken: null,
    baseURL: url,
    maxRetries: 0,
    openTelemetry: false,
    logLevel: "off",
    fetch: httpFetch,
  });
  return async (call) => {
    const body = call.body as Anthropic.MessageCreateParamsNonStreaming;
    if (body.stream) throw new Error("the baseline replays JSON calls; a recorded call asked for a stream");
    await sdk.messages.create(body);
  };
}

function viaPlainHttp(url: string): Send {
  const agent = new http.Agent({ keepAlive: true });
  return (call) =>
    new Promise<void>((ok, fail) => {
      const body = JSON.stringify(call.body);
      const req = http.request(new URL(call.path, url), {
        method: "POST",
        agent,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          "x-api-key": "sk-bench",
          "anthropic-version": "2023-06-01",
        },
      });
      req.on("error", fail);
      req.on("response", (res) => {
        const parts: Buffer[] = [];
        res.on("data", (b: Buffer) => parts.push(b));
        res.on("error", fail);
        res.on("end", () => {
          if (res.statusCode !== 200) return fail(new Error(`plain replay: HTTP ${res.statusCode}`));
          JSON.parse(Buffer.concat(parts).toString("utf8"));
          ok();
        });
      });
      req.end(body);
    });
}

export async function measureBaselines(recorded: string, childTurns: number): Promise<Baselines> {
  const calls = (JSON.parse(readFileSync(recorded, "utf8")) as RecordedCall[]).sort(
    (a, b) => a.atMs - b.atMs,
  );
  if (calls.length === 0) throw new Error(`no recorded calls in ${recorded}`);
  const provider = await startProvider(1, childTurns);
  try {
    const ways = { sdk: viaSdk(provider.url), plain: viaPlainHttp(provider.url) };
    for (let i = 0; i < WARM_REPLAYS; i++) {
      await replay(calls, ways.sdk);
      await replay(calls, ways.plain);
    }
    const out: Baselines = { calls: calls.length, sdk: [], plain: [] };
    for (let i = 0; i < MEASURED_REPLAYS; i++) {
      // Alternating which goes first, so neither always follows the other.
      const order = i % 2 ? (["plain", "sdk"] as const) : (["sdk", "plain"] as const);
      for (const way of order) out[way].push(await replay(calls, ways[way]));
    }
    return out;
  } finally {
    provider.proc.stdin.end();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const [recorded, turns] = process.argv.slice(2);
  if (!recorded || !turns) throw new Error("usage: agents-baseline.ts <recorded.json> <child turns>");
  console.log(JSON.stringify(await measureBaselines(recorded, Number(turns))));
}
