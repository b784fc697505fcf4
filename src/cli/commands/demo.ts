// cli/commands/demo.ts — `aido demo`: the bundled multi-agent demo with no model and no
// key. A daemon of its own on a demo home ($AIDO_HOME/demo unless --home; never the user's
// daemon or state) replays demo/recording (AIDO_REPLAY) through the real runtime: the
// bootstrap, three children in parallel in the goal's container, a call the gate denies,
// a write that waits for the user's approval. Deliverables are copied to ./output, then
// a short tour says what was denied, what was approved and how to check the audit.
// --bundle runs another folder of the same layout (goal.txt, inputs/, config.yaml,
// recording/). Exit 0 when the goal succeeded, 1 when not (a replay that diverged from the runtime
// says how to record it again).

import { join, resolve } from "node:path";
import { aidoHome } from "../../home.js";
import { type Command, parseCommandArgs } from "../command.js";
import {
  bundledDemoDir,
  demoDaemonEnv,
  loadDemoBundle,
  recordedCalls,
  recordedModel,
} from "../demo/bundle.js";
import { runDemoSession } from "../demo/session.js";
import { replayDivergence, tourLines } from "../demo/tour.js";
import { copyDeliverables } from "../output-copy.js";
import { commandSpec } from "./index.js";

export const demo: Command = {
  ...commandSpec("demo"),
  async run(ctx) {
    const { values } = parseCommandArgs(
      this,
      ctx.argv,
      { yes: { type: "boolean" }, home: { type: "string" }, bundle: { type: "string" } },
      false,
    );
    const bundle = loadDemoBundle(values.bundle ? resolve(values.bundle) : bundledDemoDir());
    const home = values.home ? resolve(values.home) : join(aidoHome(ctx.env), "demo");
    const env = demoDaemonEnv(ctx.env, home, {
      AIDO_REPLAY: bundle.recording,
      AIDO_MODEL: recordedModel(bundle.recording),
    });
    const interactive = ctx.io.interactive && ctx.io.prompt !== undefined;
    ctx.io.err(
      "Aido demo: a recorded multi-agent run replayed through the real runtime (gate, sandbox, audit);\n" +
        "no model is called and no key is used. The recording's answers stand in for the model's.",
    );
    const result = await runDemoSession({
      bundle,
      home,
      env,
      approvals: values.yes ? "yes" : interactive ? "ask" : "tell",
      io: ctx.io,
    });
    const output = resolve("output");
    const divergence = replayDivergence(result, recordedCalls(bundle.recording));
    const copied =
      divergence === undefined ? (await copyDeliverables(result.goal.output_dir, output)).files : 0;
    for (const line of tourLines(result, { home, output, copied, divergence })) ctx.io.out(line);
    return result.goal.state === "succeeded" && divergence === undefined ? 0 : 1;
  },
};
