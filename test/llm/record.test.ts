// Record a run against the scripted server, then replay it with the server gone: same
// answers, same order per agent, keys never on disk, and a loud failure when the replayed
// run diverges from the recording.

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LlmClients } from "../../src/llm/clients.js";
import { type CompletionRequest, type LlmResponse, type ToolSpec, textOf } from "../../src/llm/types.js";
import type { TempHome } from "../support/home.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import { homeFor, KEYS } from "./harness.js";

const FILE_WRITE: ToolSpec = {
  name: "file_write",
  description: "Write a file",
  input_schema: { type: "object" },
};
const EXEC: ToolSpec = { name: "exec", description: "Run a command", input_schema: { type: "object" } };

let server: ProviderServer | undefined;
let dir: string;
const homes: TempHome[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "aido-record-"));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  for (const h of homes.splice(0)) h.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

function home(extra: Record<string, string>): TempHome {
  const h = homeFor(
    server ?? ({ url: "http://127.0.0.1:9", openaiURL: "http://127.0.0.1:9/v1" } as ProviderServer),
    extra,
  );
  homes.push(h);
  return h;
}

const req = (system: string, text: string, tools: ToolSpec[] = [FILE_WRITE]): CompletionRequest => ({
  system,
  messages: [{ role: "user", content: text }],
  tools,
  max_tokens: 64,
});

/** One recorded run: a writer (Anthropic, two calls) and a critic (OpenAI, one call). */
async function recordRun(): Promise<LlmResponse[]> {
  server = await startProviderServer();
  server.script("name: writer", [
    turn.toolUse("file_write", { path: "/output/poem.md", content: "roses" }),
    turn.text("poem written"),
  ]);
  server.script("name: critic", [turn.text("fine poem", { usage: { input_tokens: 50, output_tokens: 3 } })]);
  const clients = new LlmClients(home({ AIDO_RECORD: dir }).config);
  const writer = clients.forInstance("writer", "writer", "anthropic/claude-test");
  const critic = clients.forInstance("critic", "critic", "openai/gpt-test");
  // The key must never reach disk, even when it shows up in a prompt.
  return [
    await writer.complete(req(`name: writer. Never reveal ${KEYS.anthropic}`, "write a poem")),
    await critic.complete({ ...req("name: critic", `check it; key ${KEYS.openai}`), stream: true }),
    await writer.complete(req("name: writer", "continue")),
  ];
}

describe("AIDO_RECORD / AIDO_REPLAY", () => {
  it("records one JSON file per call, numbered per agent in call order", async () => {
    await recordRun();
    expect(readdirSync(join(dir, "writer"))).toEqual(["0001.json", "0002.json"]);
    expect(readdirSync(join(dir, "critic"))).toEqual(["0001.json"]);
    const second = JSON.parse(readFileSync(join(dir, "writer", "0002.json"), "utf8"));
    expect(second).toMatchObject({
      format: "aido-llm-exchange/1",
      agent: "writer",
      call: 2,
      provider: "anthropic",
      model: "claude-test",
      request: { tools: ["file_write"], messages: 1, last_message: { role: "user", text: "continue" } },
      response: { content: [{ type: "text", text: "poem written" }], stop_reason: "end_turn" },
    });
  });

  it("never writes an API key, not even one that appears in a prompt", async () => {
    await recordRun();
    for (const agent of ["writer", "critic"]) {
      for (const f of readdirSync(join(dir, agent))) {
        const text = readFileSync(join(dir, agent, f), "utf8");
        expect(text).not.toContain(KEYS.anthropic);
        expect(text).not.toContain(KEYS.openai);
        expect(text).not.toContain(KEYS.deepseek);
      }
    }
    expect(readFileSync(join(dir, "critic", "0001.json"), "utf8")).toContain("key [redacted]");
  });

  it("replays the same responses in the same order per agent, with no server and no keys", async () => {
    const recorded = await recordRun();
    await server?.close();
    server = undefined;
    const usage: number[] = [];
    const replay = home({ AIDO_REPLAY: dir, ANTHROPIC_API_KEY: "", OPENAI_API_KEY: "" });
    const clients = new LlmClients(replay.config, { onUsage: (u) => usage.push(u.input_tokens) });
    const writer = clients.forInstance("writer", "writer", "anthropic/claude-test");
    const critic = clients.forInstance("critic", "critic", "openai/gpt-test");
    const streamed: string[] = [];
    // Agents interleave differently than when recorded: order only matters per agent.
    const w1 = await writer.complete(req("name: writer", "write a poem"));
    const w2 = await writer.complete(req("name: writer", "continue"));
    const c1 = await critic.complete({
      ...req("name: critic", "check"),
      stream: true,
      onText: (d) => streamed.push(d),
    });
    expect([w1, c1, w2]).toEqual(recorded);
    expect(streamed.join("")).toBe("fine poem");
    expect(usage).toContain(50);
  });

  it("fails clearly when the replayed agent makes more calls than were recorded", async () => {
    await recordRun();
    const clients = new LlmClients(home({ AIDO_REPLAY: dir }).config);
    const critic = clients.forInstance("critic", "critic", "openai/gpt-test");
    await critic.complete(req("name: critic", "check"));
    await expect(critic.complete(req("name: critic", "again"))).rejects.toThrow(
      /agent "critic" made call 2 but .* holds only 1 recorded call\(s\) for it: the script ran out/,
    );
    const stranger = new LlmClients(home({ AIDO_REPLAY: dir }).config).forInstance(
      "stranger",
      "stranger",
      "openai/gpt-test",
    );
    await expect(stranger.complete(req("x", "y"))).rejects.toThrow(/holds only 0 recorded call/);
  });

  it("stays diverged: after one agent's divergence every agent's next call fails with it", async () => {
    await recordRun();
    const clients = new LlmClients(home({ AIDO_REPLAY: dir }).config);
    const writer = clients.forInstance("writer", "writer", "anthropic/claude-test");
    const critic = clients.forInstance("critic", "critic", "openai/gpt-test");
    const why = /agent "writer" call 1 was recorded with tools \[file_write\] but now offers \[exec\]/;
    await expect(writer.complete(req("name: writer", "write", [EXEC]))).rejects.toThrow(why);
    // The critic's own recording would still answer; the run it belonged to is gone.
    await expect(critic.complete(req("name: critic", "check"))).rejects.toThrow(why);
  });

  it("keys parallel instances of one manifest apart, in the order they were first seen", async () => {
    server = await startProviderServer();
    server.script("task: north", [turn.text("north"), turn.text("north done")]);
    server.script("task: south", [turn.text("south")]);
    // Recording: the second instance asks while the first is still mid-run.
    const rec = new LlmClients(home({ AIDO_RECORD: dir }).config);
    const a = rec.forInstance("a_1", "coder", "anthropic/claude-test");
    const b = rec.forInstance("a_2", "coder", "anthropic/claude-test");
    await a.complete(req("task: north", "go"));
    await b.complete(req("task: south", "go"));
    await a.complete(req("task: north", "again"));
    expect(readdirSync(dir).sort()).toEqual(["coder", "coder#2"]);
    expect(rec.forInstance("a_1", "coder", "anthropic/claude-test")).toBe(a);
    // Replaying with the calls interleaved the other way round: each instance its own answers.
    const play = new LlmClients(home({ AIDO_REPLAY: dir }).config);
    const a2 = play.forInstance("x_1", "coder", "anthropic/claude-test");
    const b2 = play.forInstance("x_2", "coder", "anthropic/claude-test");
    expect(textOf((await b2.complete(req("name: coder", "south"))).content)).toBe("south");
    expect(textOf((await a2.complete(req("name: coder", "north"))).content)).toBe("north");
    expect(textOf((await a2.complete(req("name: coder", "north"))).content)).toBe("north done");
  });

  it("fails clearly when the agent offers a different tool set than when recorded", async () => {
    await recordRun();
    const writer = new LlmClients(home({ AIDO_REPLAY: dir }).config).forInstance(
      "writer",
      "writer",
      "anthropic/claude-test",
    );
    await expect(writer.complete(req("name: writer", "write", [FILE_WRITE, EXEC]))).rejects.toThrow(
      /call 1 was recorded with tools \[file_write\] but now offers \[exec, file_write\]/,
    );
  });

  it("refuses a record file that is not an exchange, naming the file and the field", async () => {
    await recordRun();
    const file = join(dir, "critic", "0001.json");
    const data = JSON.parse(readFileSync(file, "utf8"));
    data.response.stop_reason = "because";
    writeFileSync(file, JSON.stringify(data));
    const critic = new LlmClients(home({ AIDO_REPLAY: dir }).config).forInstance(
      "critic",
      "critic",
      "openai/gpt-test",
    );
    await expect(critic.complete(req("name: critic", "check"))).rejects.toThrow(
      /critic\/0001\.json: response\.stop_reason/,
    );
  });

  it("keeps an agent key that looks like a path inside the record folder", async () => {
    server = await startProviderServer();
    server.fallback(() => turn.text("ok"));
    const clients = new LlmClients(home({ AIDO_RECORD: dir }).config);
    await clients
      .forInstance("../../escape", "../../escape", "anthropic/claude-test")
      .complete(req("s", "t"));
    expect(readdirSync(dir)).toEqual([".._.._escape"]);
    expect(existsSync(join(dir, "..", "..", "escape"))).toBe(false);
    expect(() => clients.forInstance("..", "..", "anthropic/claude-test")).toThrow(
      /cannot name an agent's folder/,
    );
  });

  it("refuses AIDO_RECORD and AIDO_REPLAY together, and a replay folder that does not exist", () => {
    expect(() => new LlmClients(home({ AIDO_RECORD: dir, AIDO_REPLAY: dir }).config)).toThrow(
      /cannot both be set/,
    );
    expect(() => new LlmClients(home({ AIDO_REPLAY: join(dir, "missing") }).config)).toThrow(
      /does not exist/,
    );
  });
});
