// An Allow Always answer given in one `aido mcp serve` session covers the project that
// session works on, not the same container path in another project. Two sessions of the
// shipped mcp-session manifest (one identity) in two project folders both see their folder
// as /workspace: "always allow `cat /workspace/deploy.sh`" answered in A must ask again in
// B (another file), and still be honoured by a new session in A after a daemon restart.
// Real CLI, real SDK client with elicitation, real daemon and Docker.

import { chownSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { requireDocker } from "../support/docker.js";
import { answering, textOf, useMcpSuite } from "./fixture.js";

beforeAll(() => requireDocker());
const suite = useMcpSuite();

/** A project folder the container user can read, with a deploy.sh saying `text`. */
function projectWith(dir: string, text: string): void {
  writeFileSync(join(dir, "deploy.sh"), text);
  if (process.getuid?.() === 0) {
    chownSync(dir, 1000, 1000);
    chownSync(join(dir, "deploy.sh"), 1000, 1000);
  }
}

const cat = { name: "exec", arguments: { command: "cat /workspace/deploy.sh" } };

describe("Allow Always in an MCP session", () => {
  it("covers the session's project: a new session there runs unasked, another project's session asks", async () => {
    await suite.start();
    const scratch = mkdtempSync(join(tmpdir(), "aido-mcp-other-"));
    const other = join(scratch, "repo");
    mkdirSync(other);
    try {
      projectWith(suite.project, "project A\n");
      projectWith(other, "project B\n");

      const askedA: string[] = [];
      const a1 = await suite.connect({ elicit: answering(askedA, "allow_always") });
      const r1 = await a1.callTool(cat, undefined, { timeout: 60_000 });
      expect(textOf(r1)).toContain("project A");
      expect(askedA).toHaveLength(1);
      expect(askedA[0]).toContain(
        `by agents of identity \`mcp-session\` in project ${realpathSync(suite.project)} for`,
      );

      // Another project, the same identity, the same container path: another file, so asked.
      const askedB: string[] = [];
      const b = await suite.connect({ workspace: other, elicit: answering(askedB, "deny") });
      const rb = await b.callTool(cat, undefined, { timeout: 60_000 });
      expect(askedB).toHaveLength(1);
      expect(askedB[0]).toContain(`in project ${realpathSync(other)} for`);
      expect(rb.isError).toBe(true);
      expect(textOf(rb)).not.toContain("project B");

      // A new session in project A, after a daemon restart: the grant covers it, nobody is asked.
      await a1.close();
      await b.close();
      await suite.fx.restart();
      const askedA2: string[] = [];
      const a2 = await suite.connect({ elicit: answering(askedA2, "deny") });
      const r2 = await a2.callTool(cat, undefined, { timeout: 60_000 });
      expect(askedA2).toEqual([]);
      expect(r2.isError ?? false).toBe(false);
      expect(textOf(r2)).toContain("project A");
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }, 180_000);
});
