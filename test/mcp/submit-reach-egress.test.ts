// A goal an MCP session submits reaches no further than the session, also through a human's
// question: under a confirm rule on every host (`policy.confirm: ["network: *"]`) the egress
// relay asks a human about a host no grant of the goal covers, and with `aido mcp serve
// --allow-approve` the session's model may answer its own goals' questions (aido_approve).
// Answering "allow" to a host the session's own grants do not reach would let the model send
// the project out through its goal to anywhere; aido_approve refuses it (audited as
// session.call_refused) and leaves the question to a human, while a question about a host
// the session reaches is answered as before. The goal's command is a Python script handed in
// as an input (the gate sees no host in `python3 FILE`, so only the relay judges its
// connections); plain.test and other.test are one Docker upstream of this file's own.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { manifest } from "../daemon/fixture.js";
import { UPSTREAM_NETS } from "../egress/docker-upstream.js";
import { turn } from "../support/provider-server.js";
import { SESSION, useEgressSession } from "./egress-session.js";
import { textOf, until } from "./fixture.js";

const { suite, start, sessionFile } = useEgressSession(UPSTREAM_NETS.mcpSubmitReach);

const json = (r: unknown) => JSON.parse(textOf(r)) as Record<string, unknown>;

/** The egress session reaching plain.test only. */
const PLAIN_ONLY = SESSION.replace('  - "network: other.test:8080"\n', "");

/** Fetches each host named on its command line through the proxy the exec hands it, in turn. */
const FETCH = [
  "import sys, urllib.request",
  "for host in sys.argv[1:]:",
  "    try:",
  "        r = urllib.request.urlopen(f'http://{host}:8080/reach', timeout=60)",
  "        print(host, 'status', r.status)",
  "    except Exception as e:",
  "        print(host, 'refused', e)",
].join("\n");

interface Listed {
  id: string;
  goal_id: string;
  tool: string;
  summary: string;
}

describe("aido_approve holds a goal's egress to the session's reach", () => {
  it("answers a question about a host the session reaches, refuses one about a host it does not", async () => {
    await start();
    const client = await suite.connect({ args: ["--manifest", sessionFile(PLAIN_ONLY), "--allow-approve"] });
    writeFileSync(join(suite.project, "fetch.py"), FETCH);
    const reacher = manifest("reacher", {
      capabilities: [
        "tool: exec",
        "exec: python3 *",
        "file_read: /inputs/**",
        "file_read: /workspace/**",
        "network: plain.test:8080", // within the session's: aido_submit takes it
      ],
    });
    suite.server.script('manifest "reacher"', [
      turn.toolUse("exec", { command: "python3 /inputs/fetch.py plain.test other.test" }),
      turn.text("fetched"),
    ]);
    const { goal_id } = json(
      await client.callTool({
        name: "aido_submit",
        arguments: { goal: "fetch both", manifest: reacher, inputs: ["fetch.py"] },
      }),
    ) as { goal_id: string };

    /** The goal's open egress question about `host`, as aido_approvals lists it. */
    const question = async (host: string) => {
      let found: Listed | undefined;
      await until(async () => {
        const { approvals } = json(await client.callTool({ name: "aido_approvals", arguments: {} })) as {
          approvals: Listed[];
        };
        found = approvals.find((a) => a.tool === "egress" && a.summary.includes(`egress to ${host} `));
        return found !== undefined;
      }, 90_000);
      expect(found?.goal_id).toBe(goal_id);
      return found as Listed;
    };

    // plain.test: the session reaches it, so its model may answer the goal's question.
    const plain = await question("plain.test");
    const allowed = await client.callTool({
      name: "aido_approve",
      arguments: { id: plain.id, decision: "allow_once" },
    });
    expect(allowed.isError).toBeFalsy();

    // other.test: no grant of the session reaches it; the model may not let its goal there.
    const other = await question("other.test");
    const refused = await client.callTool({
      name: "aido_approve",
      arguments: { id: other.id, decision: "allow_once" },
    });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toContain(
      `approval ${other.id} asks for egress to other.test port 8080, which this session's network grants [network: plain.test:8080] do not reach`,
    );
    const human = await suite.fx.client();
    const audited = (await human.call("audit.query", { kind: "session.call_refused" })).entries.map(
      (e) => e.payload as { tool: string; reason: string },
    );
    expect(audited.some((p) => p.tool === "aido_approve" && p.reason.includes("egress to other.test"))).toBe(
      true,
    );
    // Still the human's to answer: pending, and denied by them.
    const [open] = (await human.call("approval.list", {})).approvals.filter((a) => a.id === other.id);
    expect(open?.status).toBe("pending");
    await human.call("approval.respond", { id: other.id, decision: "deny" });
    expect((await human.call("goal.wait", { goal_id, timeout_ms: 90_000 })).state).toBe("succeeded");
    const hosts = async (kind: string) =>
      (await human.call("audit.query", { goal_id, kind })).entries.map(
        (e) => (e.payload as { host?: string }).host,
      );
    expect(await hosts("egress.open")).toEqual(["plain.test"]);
    expect(await hosts("egress.denied")).toContain("other.test");
  }, 240_000);
});
