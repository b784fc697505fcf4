// No setuid or setgid bit outlives a goal in its folders. A goal in a real container tries
// to leave a setuid copy of a program in /workspace, a setgid folder in /output and a link
// to a setuid file of the host's; files a container could have made are also planted on
// the host while the goal runs. When the goal ends every bit is cleared (audited), and the
// host file behind the link keeps its own: the sweep never follows a link.

import { chmodSync, copyFileSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { daemonBuiltinTools } from "../../src/daemon/tools.js";
import { requireDocker } from "../support/docker.js";
import { turn } from "../support/provider-server.js";
import { manifest, useDaemonPerTest } from "./fixture.js";

let outside: string;

beforeAll(() => {
  requireDocker();
  outside = mkdtempSync(join(tmpdir(), "aido-host-"));
});
const suite = useDaemonPerTest();
afterAll(() => {
  rmSync(outside, { recursive: true, force: true });
});

/** Every entry under `root` (lstat, links not followed) that still has setuid or setgid. */
function setidUnder(root: string, rel = ""): string[] {
  const found: string[] = [];
  for (const name of readdirSync(join(root, rel))) {
    const r = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(root, r));
    if (!st.isSymbolicLink() && (st.mode & 0o6000) !== 0) found.push(r);
    if (st.isDirectory()) found.push(...setidUnder(root, r));
  }
  return found;
}

describe("setuid and setgid bits at goal end", () => {
  it("are cleared under the goal's folder, never through a link to the host", async () => {
    const hostSuid = join(outside, "host-suid");
    copyFileSync("/bin/true", hostSuid);
    chmodSync(hostSuid, 0o4755);
    const fx = await suite.start({ runtime: { backend: undefined, builtinTools: daemonBuiltinTools } });
    const goalsDir = fx.home.config.goalsDir;
    const js = [
      "const fs = require('fs');",
      "fs.copyFileSync('/bin/true', '/workspace/suid');",
      "fs.chmodSync('/workspace/suid', 0o6755);",
      "fs.mkdirSync('/output/sgid');",
      "fs.chmodSync('/output/sgid', 0o2775);",
      `fs.symlinkSync(${JSON.stringify(hostSuid)}, '/workspace/host-link');`,
    ].join(" ");
    suite.server.script('manifest "setter"', [
      (req) => {
        // The goal's folders exist once its agent makes its first call: plant what a
        // container could have written there, in case exec cannot set the bits itself.
        const goalId = readdirSync(goalsDir)[0] as string;
        const root = join(goalsDir, goalId);
        copyFileSync("/bin/true", join(root, "workspace", "planted"));
        chmodSync(join(root, "workspace", "planted"), 0o4755);
        mkdirSync(join(root, "output", "deep", "er"), { recursive: true });
        chmodSync(join(root, "output", "deep", "er"), 0o2755);
        expect(req.system).toContain('manifest "setter"');
        return turn.toolUse("exec", { command: `node -e ${JSON.stringify(js)}` });
      },
      turn.text("left my marks"),
    ]);
    const c = await fx.client();
    const setter = manifest("setter", {
      capabilities: ["tool: exec", "exec: node *", "file_read: /workspace/**", "file_write: /workspace/**"],
    });
    const { goal_id } = await c.call("goal.submit", { goal: "set bits", manifest: setter });
    const end = await c.call("goal.wait", { goal_id, timeout_ms: 60_000 }, { timeoutMs: 70_000 });
    expect(end.state).toBe("succeeded");
    const root = join(goalsDir, goal_id);
    expect(setidUnder(root)).toEqual([]);
    expect(lstatSync(join(root, "workspace", "planted")).mode & 0o7777).toBe(0o755);
    expect(lstatSync(join(root, "output", "deep", "er")).mode & 0o7777).toBe(0o755);
    // The host's own setuid file behind the goal's link is untouched.
    expect(lstatSync(hostSuid).mode & 0o7777).toBe(0o4755);
    const cleared = await c.call("audit.query", { goal_id, kind: "sandbox.setid_cleared" });
    const payload = cleared.entries[0]?.payload as { paths: string[] } | undefined;
    expect(payload?.paths).toEqual(expect.arrayContaining(["workspace/planted", "output/deep/er"]));
  }, 120_000);
});
