// plan.* params as an attacker sends them, over a raw socket to a real daemon: malformed,
// nested past reason, unknown keys. Every refusal is -32602 and names the field; nothing is
// recorded for a refused plan (a step nested past the gate's depth is audited as the gate
// audits it: tool.denied), and the daemon keeps answering.

import { describe, expect, it } from "vitest";
import { manifest, useDaemonPerTest } from "./fixture.js";
import { type RawConnection, rawConnect } from "./raw.js";

const suite = useDaemonPerTest();

/** `{"a":{"a":...1}}`, `depth` objects deep: half a MB of JSON at 100,000. */
const nested = (depth: number) => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;

let nextId = 1;
async function call(raw: RawConnection, method: string, params: string) {
  const id = nextId++;
  raw.send(`{"jsonrpc":"2.0","id":${id},"method":"${method}","params":${params}}\n`);
  let line = await raw.next(20_000);
  // A call that may ask a human is first told its request id (request.started).
  if (line.method === "request.started") line = await raw.next(20_000);
  expect(line.id).toBe(id);
  return line as {
    result?: unknown;
    error?: { code: number; message: string; data?: { details?: { field?: string } } };
  };
}

describe("plan.* params", () => {
  it("an input nested 100,000 deep is refused naming its step, by plan.simulate and plan.create alike", async () => {
    const fx = await suite.start();
    const c = await fx.client();
    const a = await c.call("agent.spawn", {
      manifest: manifest("p", { capabilities: ["tool: spawn_agent"] }),
    });
    const raw = await rawConnect(fx.home.config.socketPath);
    try {
      const steps = `[{"tool":"file_read","input":{"path":"/workspace/a"}},{"tool":"spawn_agent","input":{"manifest":${nested(100_000)},"message":"x"}}]`;
      for (const [method, extra] of [
        ["plan.simulate", ""],
        ["plan.create", `,"title":"deep"`],
      ] as const) {
        const r = await call(raw, method, `{"agent_id":"${a.agent_id}","steps":${steps}${extra}}`);
        expect(r.error?.code, method).toBe(-32602);
        expect(r.error?.message).toMatch(/^steps\.1\.input: nested deeper than 64 levels/);
        expect(r.error?.data?.details?.field).toBe("steps.1.input");
      }
      expect((await c.call("plan.list", {})).plans).toEqual([]);
      expect((await c.call("audit.query", { kind: "plan.simulated" })).entries).toEqual([]);
      // Refused as the gate refuses such arguments: audited, with the depth, not the value.
      const denied = (await c.call("audit.query", { kind: "tool.denied" })).entries;
      expect(denied.map((e) => [e.agent_id, e.payload])).toEqual([
        [
          a.agent_id,
          expect.objectContaining({ tool: "spawn_agent", stage: "schema", code: "invalid_input" }),
        ],
        [
          a.agent_id,
          expect.objectContaining({ tool: "spawn_agent", stage: "schema", code: "invalid_input" }),
        ],
      ]);
      for (const e of denied) {
        expect((e.payload as { reason: string }).reason).toBe(
          "steps.1: invalid input for spawn_agent: arguments nest deeper than 64 levels (they nest 100001)",
        );
      }
      // Still answering.
      expect((await call(raw, "plan.list", "{}")).result).toEqual({ plans: [] });
    } finally {
      raw.close();
    }
  });

  it("malformed and unknown params are refused naming the field", async () => {
    const fx = await suite.start();
    const c = await fx.client();
    const a = await c.call("agent.spawn", { manifest: manifest("p", { capabilities: ["tool: file_read"] }) });
    const raw = await rawConnect(fx.home.config.socketPath);
    const ok = `{"tool":"file_read","input":{"path":"/workspace/a"}}`;
    const cases: [string, string, string][] = [
      ["plan.simulate", `{"agent_id":"${a.agent_id}","steps":[${ok}],"dry":true}`, "dry"],
      ["plan.simulate", `{"agent_id":"${a.agent_id}","steps":[]}`, "steps"],
      ["plan.simulate", `{"agent_id":"${a.agent_id}","steps":[${Array(51).fill(ok).join(",")}]}`, "steps"],
      [
        "plan.simulate",
        `{"agent_id":"${a.agent_id}","steps":[${ok},{"tool":"file_read","input":{"path":"/w","x":1}}]}`,
        "steps.1.input.x",
      ],
      ["plan.simulate", `{"agent_id":"${a.agent_id}","steps":[{"tool":"nope","input":{}}]}`, "steps.0.tool"],
      [
        "plan.simulate",
        `{"agent_id":"${a.agent_id}","steps":[{"tool":"file_read","input":[1]}]}`,
        "steps.0.input",
      ],
      ["plan.simulate", `{"agent_id":"${a.agent_id}","steps":[${ok}],"shadow":"yes"}`, "shadow"],
      ["plan.create", `{"agent_id":"${a.agent_id}","steps":[${ok}]}`, "title"],
      ["plan.create", `{"agent_id":"${a.agent_id}","title":"${"t".repeat(201)}","steps":[${ok}]}`, "title"],
      ["plan.execute", `{"plan_id":"plan_x","on_failure":"retry"}`, "on_failure"],
      ["plan.execute", `{"plan_id":7}`, "plan_id"],
      ["plan.list", `{"agent_id":"a","all":true}`, "all"],
    ];
    try {
      for (const [method, params, field] of cases) {
        const r = await call(raw, method, params);
        expect(r.error?.code, `${method} ${field}`).toBe(-32602);
        expect(r.error?.message, `${method} ${field}`).toContain(field);
      }
      expect((await c.call("plan.list", {})).plans).toEqual([]);
    } finally {
      raw.close();
    }
  });
});
