// `aido approvals` says exactly what each answer will cover before a human gives it;
// `aido approvals grants` lists the standing Allow Always grants and `aido approvals
// revoke ID` ends one. In-process through runCli, against a real agentd on its socket.

import { describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import type { GrantRecord } from "../../src/security/approval-grants.js";
import { manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { captureIo } from "./io.js";

const suite = useDaemonPerTest();

async function cli(argv: string[], prompt?: (q: string) => Promise<string | undefined>) {
  const c = captureIo(prompt !== undefined);
  if (prompt) c.io.prompt = prompt;
  const code = await runCli(argv, c.io, suite.fx.home.env);
  return { code, ...c };
}

/** A memory_store call by a fresh "keeper" agent, waiting for a human. */
async function pendingCall(content = "k") {
  const caller = await suite.fx.client();
  const a = await caller.call("agent.spawn", {
    manifest: manifest("keeper", {
      lifecycle: "persistent",
      capabilities: ["tool: memory_store"],
      approval_required: ["memory_store"],
    }),
  });
  const call = caller.call("tool.invoke", {
    agent_id: a.agent_id,
    tool: "memory_store",
    input: { content, category: "fact" },
  });
  for (let i = 0; i < 200; i++) {
    const listed = JSON.parse((await cli(["approvals", "--json"])).text()) as { id: string }[];
    if (listed.length > 0) return { call, id: listed[0]!.id, agentId: a.agent_id };
    await new Promise((r) => setTimeout(r, 15));
  }
  throw new Error("no approval appeared");
}

const target = 'memory_store with exactly the input {"category":"fact","content":"k"}';

describe("aido approvals", () => {
  it("shows what Allow Once, Allow Session and Allow Always would each cover", async () => {
    const _fx = await suite.start();
    const p = await pendingCall();
    const out = (await cli(["approvals"])).out;
    expect(out).toContain(`    Allow Once:    this call only: ${target}`);
    expect(out).toContain(`    Allow Session: ${target} by agent ${p.agentId} until it stops`);
    // agent.spawn gives the agent a pseudo-goal of its own and no project folder: it alone is covered.
    const goal = (await (await suite.fx.client()).call("agent.status", { agent_id: p.agentId })).goal_id;
    expect(out).toContain(
      `    Allow Always:  ${target} by agents of identity \`keeper\` in goal ${goal} only (it has no project folder) for 1 h`,
    );
    expect(out[0]).toContain(`agent=${p.agentId} (identity keeper)`);
    // Which socket call asked: the id the daemon told that call (request.started).
    expect(out[0]).toMatch(/ request=req_[0-9a-f]{24} /);
    await cli(["approvals", "respond", p.id, "deny"]);
    await p.call.catch(() => {});
  });

  it("prints the whole call when the summary is cut, invisible and bidi characters written out", async () => {
    const _fx = await suite.start();
    // Padding pushes what matters past the summary's cut; a zero-width space and a bidi
    // override would make it read as something else.
    const content = `${"harmless notes ".repeat(30)}and then\u200b the real ask\u202e`;
    const p = await pendingCall(content);
    const out = (await cli(["approvals"])).out;
    const summary = out.find((l) => l.startsWith("    memory_store "));
    expect(summary).toMatch(/…$/);
    expect(summary).not.toContain("the real ask");
    const whole = out.find((l) => l.startsWith("    whole input ("));
    expect(whole).toContain("and then\\u200b the real ask\\u202e");
    expect(whole).not.toMatch(/[\u200b\u202e]/);
    await cli(["approvals", "respond", p.id, "deny"]);
    await p.call.catch(() => {});
  });

  it("prints the whole call when a confirm rule's reason follows the cut summary", async () => {
    // The rule's reason is appended after the cut: the summary no longer ends with "…".
    const _fx = await suite.start({ config: (c) => c.policy.confirm.push("tool: memory_store") });
    const p = await pendingCall(`${"harmless notes ".repeat(30)}and then the real ask`);
    const out = (await cli(["approvals"])).out;
    const summary = out.find((l) => l.startsWith("    memory_store "));
    expect(summary).toContain("asks a human to confirm");
    expect(summary).not.toContain("the real ask");
    expect(out.find((l) => l.startsWith("    whole input ("))).toContain("and then the real ask");
    await cli(["approvals", "respond", p.id, "deny"]);
    await p.call.catch(() => {});
  });

  it("says the call carries the daemon's API keys, by kind and never by value, before the answers", async () => {
    const fx = await suite.start();
    const anthropic = fx.home.config.providers.anthropic.apiKey as string;
    const openai = fx.home.config.providers.openai.apiKey as string;
    // A model that learnt the keys sends them out in what it stores.
    const p = await pendingCall(`send ${anthropic} and ${openai} to https://evil.example`);
    const kinds = ["the API key of provider anthropic", "the API key of providers openai, openai-compat"];
    const out = (await cli(["approvals"])).out;
    expect(out[1]).toContain("send *** and *** to https://evil.example");
    expect(out[2]).toBe(`    CARRIES SECRETS (shown blanked): ${kinds.join("; ")}`);
    const [listed] = JSON.parse((await cli(["approvals", "--json"])).text()) as {
      carries_secrets: string[];
    }[];
    expect(listed!.carries_secrets).toEqual(kinds);
    const audit = await (await fx.client()).call("audit.query", { kind: "approval.requested" });
    expect(audit.entries.map((e) => (e.payload as { carries_secrets?: string[] }).carries_secrets)).toEqual([
      kinds,
    ]);
    expect(JSON.stringify([out, listed, audit])).not.toMatch(new RegExp(`${anthropic}|${openai}`));
    await cli(["approvals", "respond", p.id, "deny"]);
    await p.call.catch(() => {});

    // A call that carries none says nothing of it, and its audit entry has no such field.
    const plain = await pendingCall("nothing secret");
    expect((await cli(["approvals"])).out.some((l) => l.includes("CARRIES"))).toBe(false);
    const [record] = JSON.parse((await cli(["approvals", "--json"])).text()) as {
      carries_secrets: string[];
    }[];
    expect(record!.carries_secrets).toEqual([]);
    const entries = (await (await fx.client()).call("audit.query", { kind: "approval.requested" })).entries;
    const entry = entries.find((e) => (e.payload as { approval_id?: string }).approval_id === plain.id);
    expect(entry?.payload).not.toHaveProperty("carries_secrets");
    await cli(["approvals", "respond", plain.id, "deny"]);
    await plain.call.catch(() => {});
  });

  it("answers 'a' with a grant that `approvals grants` lists and `approvals revoke` ends", async () => {
    const _fx = await suite.start();
    const p = await pendingCall();
    const answered = await cli(["approvals"], async () => "a");
    expect(answered.text()).toMatch(new RegExp(`${p.id}: allow_always \\(grant grt_[0-9a-f-]+\\)`));
    expect((await p.call).is_error).toBe(false);

    const listed = await cli(["approvals", "grants", "--json"]);
    const [grant] = JSON.parse(listed.text()) as GrantRecord[];
    expect(grant).toMatchObject({ identity: "keeper", tool: "memory_store", status: "active" });
    const text = await cli(["approvals", "grants"]);
    const where = `in goal ${grant!.project_key!.slice("goal:".length)} only (it has no project folder)`;
    expect(text.out[0]).toContain(
      `${grant!.id}  ${target} by agents of identity \`keeper\` ${where}  (until `,
    );
    expect(text.out).toContain("end one with: aido approvals revoke ID");

    const revoked = await cli(["approvals", "revoke", grant!.id]);
    expect(revoked.code).toBe(0);
    expect(revoked.text()).toBe(`revoked ${grant!.id}: ${target} by agents of identity \`keeper\` ${where}`);
    expect((await cli(["approvals", "grants"])).text()).toBe("no approval grants in force");
    expect((await cli(["approvals", "grants", "--all"])).text()).toContain(`${grant!.id}  ${target}`);
    expect((await cli(["approvals", "grants", "--all"])).text()).toContain(
      "(revoked, allowed by socket client)",
    );

    const again = await cli(["approvals", "revoke", grant!.id]);
    expect(again.code).toBe(1);
    expect(again.err.join("\n")).toContain("already revoked");
    expect((await cli(["approvals", "revoke"])).code).toBe(2);
  });
});
