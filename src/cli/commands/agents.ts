// cli/commands/agents.ts — `aido agents`: the daemon's agents as a tree per goal (live
// ones by default; --all includes stopped ones), each with its manifest's description,
// from agent.list. Stop reasons carry error text a model may have written: inert text.

import type { AgentSummary } from "../../kernel/registry.js";
import { inert } from "../../security/terminal-text.js";
import { type Command, jsonOption, parseCommandArgs, printJson } from "../command.js";
import { oneLine } from "../watch/state.js";
import { withClient } from "./daemon-client.js";
import { commandSpec } from "./index.js";

function tree(list: AgentSummary[]): string[] {
  const byId = new Map(list.map((a) => [a.agent_id, a]));
  const kids = new Map<string | null, AgentSummary[]>();
  for (const a of list) {
    const parent = a.parent_id !== null && byId.has(a.parent_id) ? a.parent_id : null;
    kids.set(parent, [...(kids.get(parent) ?? []), a]);
  }
  const out: string[] = [];
  const walk = (parent: string | null, indent: string) => {
    for (const a of kids.get(parent) ?? []) {
      const why = a.stop_reason ? ` (${inert(a.stop_reason)})` : "";
      const what = a.description ? `  — ${oneLine(a.description, 80)}` : "";
      out.push(
        `${indent}${a.manifest}  ${a.agent_id}  ${a.state}${why}  ${a.model}  goal=${a.goal_id}${what}`,
      );
      walk(a.agent_id, `${indent}  `);
    }
  };
  walk(null, "");
  return out;
}

export const agents: Command = {
  ...commandSpec("agents"),
  async run(ctx) {
    const { values } = parseCommandArgs(
      this,
      ctx.argv,
      { ...jsonOption, goal: { type: "string" }, all: { type: "boolean" } },
      false,
    );
    const r = await withClient(ctx, (c) =>
      c.call("agent.list", {
        ...(values.goal ? { goal_id: values.goal } : {}),
        include_stopped: values.all === true,
      }),
    );
    if (values.json) printJson(ctx.io, r.agents);
    else if (r.agents.length === 0) ctx.io.out("(no agents)");
    else for (const line of tree(r.agents)) ctx.io.out(line);
    return 0;
  },
};
