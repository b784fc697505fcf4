// OPEN (red team): a goal's children spend past the goal cap when their calls cost more
// than was reserved. A call reserves "characters / 4 + max_tokens" and commits what the
// provider reports; the commit cannot refuse (the tokens are spent). Characters / 4 is a
// fair guess for English and a large underestimate for text a model can make dense: rare
// CJK characters cost one to three tokens each with the providers' tokenizers, random
// base64 about one per 1.5 characters. The model writes its children's task messages, so
// it can put 8,000 such characters in each; five children in parallel each reserve ~6,500
// tokens (all five fit the 40,000 cap) and are each charged the ~16,500 the provider
// reports: the goal spends twice its cap (83,500 of 40,000 here). The more children run at once, the further past.
// docs/security.md says a child's spending beyond its carve-out "must fit in every
// ancestor's room"; at commit nothing holds it.
// Not fixed here: an estimate that is an upper bound (UTF-8 bytes of the request, which a
// byte-level tokenizer never exceeds, + max_tokens) reserves ~4x what English costs, and
// refuses the last calls of a budget that would have fit; the lead decides the trade.

import { expect, it } from "vitest";
import { type Harness, openHarness } from "../agent/harness.js";
import { type ProviderServer, turn } from "../support/provider-server.js";
import { useProviderServer } from "../support/provider-suite.js";

let server: ProviderServer;
let h: Harness;

useProviderServer({
  started: (s) => {
    server = s;
  },
  afterEach: () => h?.close(),
});

const CAP = 40_000;
const CHILDREN = ["c1", "c2", "c3", "c4", "c5"];
/** 8,000 characters of CJK Extension A: ~2 tokens each for a real tokenizer, 1/4 to the estimate. */
const DENSE = Array.from({ length: 8000 }, (_, i) => String.fromCodePoint(0x3400 + (i % 6000))).join("");

it("five children in parallel, each with a task of dense text, stay within the goal cap", async () => {
  h = await openHarness(server, {
    env: { AIDO_SPAWN_BATCH_CAP: "5" },
    config: (c) => {
      c.limits.goalMaxTokens = CAP;
    },
  });
  server.script('manifest "lead"', [
    turn.toolUse(
      "spawn_agents",
      {
        children: CHILDREN.map((name) => ({
          manifest: { name, budget: { max_tokens: 7000 } },
          message: DENSE,
        })),
      },
      { usage: { input_tokens: 800, output_tokens: 200 } },
    ),
    turn.text("done", { usage: { input_tokens: 800, output_tokens: 100 } }),
  ]);
  // What a provider reports for a request carrying 8,000 such characters.
  for (const name of CHILDREN) {
    server.script(`manifest "${name}"`, [
      turn.text("read it", { delayMs: 300, usage: { input_tokens: 16_000, output_tokens: 500 } }),
    ]);
  }
  const { goal_id } = h.rt.goals.submit({
    goal: "Spend it.",
    manifest: {
      name: "lead",
      system_prompt: "You lead.",
      capabilities: ["tool: spawn_agents", `spawn_child: [${CHILDREN.join(", ")}]`],
    },
  });
  const s = await h.rt.goals.wait(goal_id, 30_000);
  const goal = h.rt.budget.get(`goal:${goal_id}`);
  expect(goal.spent, `goal ${s.state}: spent ${goal.spent} of a ${CAP} cap`).toBeLessThanOrEqual(CAP);
});
