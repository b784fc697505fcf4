// aido_submit's inputs against what the session itself may read. The session's reach in its
// project is its file_read grants minus the operator's path rules (`policy.deny: ["path:
// /workspace/secrets/**"]` shuts secrets/ to its file tools, its execs' Landlock domain and
// grep). Inputs are copied by the daemon with its own rights into a goal whose manifest the
// client's model chooses: a project file the session may not read must not reach /inputs,
// named directly, through a folder that holds it, or through a link made in the project.

import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { manifest } from "../daemon/fixture.js";
import { requireDocker } from "../support/docker.js";
import { turn } from "../support/provider-server.js";
import { textOf, useMcpSuite } from "./fixture.js";

beforeAll(() => requireDocker());
const suite = useMcpSuite();

describe("aido_submit's inputs are held to the session's reads", () => {
  it("refuses a project file a path: deny rule shuts to the session, by any spelling, and audits it", async () => {
    const fx = await suite.start({ config: (c) => c.policy.deny.push("path: /workspace/secrets/**") });
    mkdirSync(join(suite.project, "secrets"));
    mkdirSync(join(suite.project, "pub"));
    writeFileSync(join(suite.project, "secrets", "key.txt"), "SECRET\n");
    writeFileSync(join(suite.project, "pub", "notes.txt"), "notes\n");
    symlinkSync("../secrets", join(suite.project, "pub", "s"));
    const client = await suite.connect();
    const c = await fx.client();

    const direct = await client.callTool({
      name: "file_read",
      arguments: { path: "/workspace/secrets/key.txt" },
    });
    expect(direct.isError, "the session itself reads secrets/").toBe(true);

    for (const given of ["secrets/key.txt", "secrets", ".", "pub/s", "pub/s/key.txt"]) {
      const r = await client.callTool({
        name: "aido_submit",
        arguments: { goal: "read it", manifest: manifest("reader"), inputs: [given] },
      });
      expect(r.isError, `${given} was handed in: ${textOf(r)}`).toBe(true);
      expect(textOf(r)).toContain("inputs.0");
      expect(textOf(r)).toContain("/secrets");
      expect(textOf(r)).toContain("not readable by the session");
    }
    expect((await c.call("goal.list", {})).goals).toHaveLength(0);
    const refused = (await c.call("audit.query", { kind: "goal.refused" })).entries;
    expect(refused.length).toBeGreaterThanOrEqual(5);

    // What the session may read is still handed in.
    suite.server.script('manifest "reader"', [turn.text("read")]);
    const ok = await client.callTool({
      name: "aido_submit",
      arguments: { goal: "read notes", manifest: manifest("reader"), inputs: ["pub/notes.txt"] },
    });
    expect(ok.isError, textOf(ok)).toBeFalsy();
  });

  // The daemon copies as itself; the session's container runs as 1000:1000 when the daemon is
  // root (as the person's uid otherwise), so a root-only file of the project is not its to read.
  it("refuses a project file or folder its container user may not read, though the daemon may", async () => {
    const fx = await suite.start();
    const asRoot = process.getuid?.() === 0;
    writeFileSync(join(suite.project, "root-only.txt"), "ROOT ONLY\n", { mode: asRoot ? 0o600 : 0o000 });
    mkdirSync(join(suite.project, "locked"), { mode: asRoot ? 0o700 : 0o000 });
    if (asRoot) writeFileSync(join(suite.project, "locked", "in.txt"), "LOCKED\n");
    chmodSync(join(suite.project, "locked"), asRoot ? 0o700 : 0o000);
    const client = await suite.connect();
    const c = await fx.client();
    const direct = await client.callTool({
      name: "file_read",
      arguments: { path: "/workspace/root-only.txt" },
    });
    expect(direct.isError, "the session itself reads root-only.txt").toBe(true);
    for (const given of ["root-only.txt", "locked", ...(asRoot ? ["locked/in.txt", "."] : [])]) {
      const r = await client.callTool({
        name: "aido_submit",
        arguments: { goal: "read it", manifest: manifest("reader"), inputs: [given] },
      });
      expect(r.isError, `${given} was handed in: ${textOf(r)}`).toBe(true);
      expect(textOf(r)).toContain("inputs.0");
      if (asRoot) expect(textOf(r)).toMatch(/its user 1000:1000 may not (read|list|enter)/);
    }
    expect((await c.call("goal.list", {})).goals).toHaveLength(0);
    chmodSync(join(suite.project, "locked"), 0o700);
  });

  it("checks again as a queued goal's inputs are copied: a folder swapped for a link to a shut one fails the goal", async () => {
    const fx = await suite.start({
      config: (c) => {
        c.policy.deny.push("path: /workspace/secrets/**");
        c.limits.maxConcurrentGoals = 1;
      },
    });
    mkdirSync(join(suite.project, "secrets"));
    mkdirSync(join(suite.project, "pub", "d"), { recursive: true });
    writeFileSync(join(suite.project, "secrets", "key.txt"), "SECRET\n");
    writeFileSync(join(suite.project, "pub", "d", "key.txt"), "public\n");
    const client = await suite.connect();
    const c = await fx.client();
    suite.server.script('manifest "blocker"', [turn.hang()]);
    suite.server.script('manifest "reader"', [turn.text("read")]);
    const blocker = await c.call("goal.submit", { goal: "block", manifest: manifest("blocker") });
    const sub = await client.callTool({
      name: "aido_submit",
      arguments: { goal: "read it", manifest: manifest("reader"), inputs: ["pub/d/key.txt"] },
    });
    expect(sub.isError, textOf(sub)).toBeFalsy();
    const goalId = (JSON.parse(textOf(sub)) as { goal_id: string }).goal_id;
    // What the session's model can do while the goal waits (a folder it may write).
    renameSync(join(suite.project, "pub", "d"), join(suite.project, "pub", "d0"));
    symlinkSync("../secrets", join(suite.project, "pub", "d"));
    await c.call("goal.cancel", { goal_id: blocker.goal_id });
    const end = await c.call("goal.wait", { goal_id: goalId, timeout_ms: 30_000 });
    const copied = join(fx.home.config.goalsDir, goalId, "inputs", "key.txt");
    const got = existsSync(copied) ? readFileSync(copied, "utf8") : undefined;
    expect(got, `goal ${end.state}: a file shut to the session was copied into /inputs`).not.toBe("SECRET\n");
    expect(end.state).toBe("failed");
    expect(end.error).toContain("not readable by the session");
  });
});
