// The project an Allow Always grant binds to (src/security/approval-project.ts), as someone
// who wants a standing answer to outlive its folder sees it: a project folder deleted and
// made anew at the same path gets the freed inode number back on this filesystem (ext4, and
// most others), so the new folder (another checkout, another person's files) must still be
// another project; a session's mounted folder and the goals submitted from it are not one
// project; a folder that is gone, is a file, or has a name with terminal escapes is refused,
// the error naming it inertly. The queue is the real one over a real SQLite file.

import { mkdirSync, mkdtempSync, realpathSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Db, openDatabase } from "../../src/db/database.js";
import { folderProject, type ProjectBinding, submittedProject } from "../../src/security/approval-project.js";
import { approvalScopeOf } from "../../src/security/approval-scope.js";
import { ApprovalQueue, type ApprovalRequest } from "../../src/security/approvals.js";
import { AuditLog } from "../../src/security/audit.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import { makeSigner } from "./signer-fixture.js";

let home: TempHome;
let db: Db;
let queue: ApprovalQueue;
let scratch: string;

beforeEach(() => {
  home = makeTempHome();
  db = openDatabase(home.config.dbPath);
  const signer = makeSigner();
  const audit = new AuditLog({ db, signer });
  queue = new ApprovalQueue({
    db,
    audit,
    signer,
    timeoutMs: 60_000,
    allowAlwaysTtlSeconds: 3600,
    pollMs: 20,
  });
  scratch = realpathSync(mkdtempSync(join(tmpdir(), "aido-grant-project-")));
});

afterEach(() => {
  queue.close();
  db.close();
  home.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

const request = (project: ProjectBinding): ApprovalRequest => ({
  goalId: "g1",
  agentId: "a1",
  identity: "deployer",
  project,
  tool: "file_write",
  input: { path: "/workspace/deploy.sh", content: "x" },
  summary: "write deploy.sh",
  scope: approvalScopeOf("file_write", {}, [{ kind: "file_write", path: "/workspace/deploy.sh" }]),
  askedBy: { source: "approval_required", text: "file_write" },
});

/** Allow Always for a call in `project`. */
async function grantIn(project: ProjectBinding): Promise<void> {
  const outcome = queue.authorize(request(project));
  const [rec] = queue.list({ status: "pending" });
  queue.respond(rec!.id, "allow_always", "dana");
  await expect(outcome).resolves.toMatchObject({ allowed: true });
}

/** Whether a call in `project` is covered unasked (else the pending request is denied). */
async function coveredIn(project: ProjectBinding): Promise<boolean> {
  const outcome = queue.authorize(request(project));
  const [rec] = queue.list({ status: "pending" });
  if (rec) queue.respond(rec.id, "deny", "dana");
  await outcome;
  return rec === undefined;
}

const inode = (dir: string) => statSync(dir, { bigint: true }).ino;

describe("a project folder deleted and made anew at the same path", () => {
  for (const [kind, bind] of [
    ["an MCP session's folder", folderProject],
    ["a goal's submitted folder", submittedProject],
  ] as const) {
    it(`is another project although it got the old inode number back (${kind})`, async (ctx) => {
      const app = join(scratch, "app");
      mkdirSync(app);
      // Delete it and make it anew until the new folder gets the old one's inode number (at
      // once on ext4; a process creating files meanwhile may take the freed number first).
      let old: ProjectBinding | undefined;
      for (let i = 0; i < 50 && old === undefined; i++) {
        const before = inode(app);
        const made = bind(app);
        rmdirSync(app);
        await new Promise((r) => setTimeout(r, 20));
        mkdirSync(app);
        if (inode(app) === before) old = made;
      }
      if (old === undefined) return ctx.skip("this filesystem never handed the freed inode number back");
      await grantIn(old);
      expect(await coveredIn(old)).toBe(true);
      expect(await coveredIn(bind(app))).toBe(false);
    });
  }
});

describe("a session's mounted folder and the goals submitted from it", () => {
  it("are two projects: a grant given where /workspace was the folder does not cover a goal from it, nor the reverse", async () => {
    const app = join(scratch, "app");
    mkdirSync(app);
    await grantIn(folderProject(app));
    expect(await coveredIn(submittedProject(app))).toBe(false);
    expect(await coveredIn(folderProject(app))).toBe(true);
    expect(submittedProject(app).shown).toBe(`goals submitted from ${app}`);
    expect(folderProject(app).shown).toBe(`project ${app}`);
  });
});

describe("a folder that cannot be a project", () => {
  it("is refused, naming the path as inert text and what is wrong", () => {
    const gone = join(scratch, "gone\u001b[2K");
    expect(() => submittedProject(gone)).toThrow(
      /^workspace: .*gone\\x1b\[2K cannot be a project folder: ENOENT/,
    );
    expect(() => submittedProject(gone)).not.toThrow(/\u001b/);
    const file = join(scratch, "file");
    writeFileSync(file, "x");
    expect(() => folderProject(file)).toThrow(
      `workspace: ${file} cannot be a project folder: is not a folder`,
    );
  });
});
