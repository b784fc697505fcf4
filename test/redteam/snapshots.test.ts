// Red team: snapshots through the paths a model and a socket client take. On by default
// and covering /workspace and /output; a restore that stays inside the caller's write
// grants and the operator's path rules; snapshot_create and snapshot_list that give no
// more than the grants allow; and a setuid program that a restore never brings back.

import { chmodSync, chownSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AidoError } from "../../src/errors.js";
import { goalFolders } from "../../src/sandbox/folders.js";
import { type RecordedRequest, turn } from "../support/provider-server.js";
import { type Bench, expectDenied, expectOk, openBench } from "./fixture.js";

let b: Bench;

beforeAll(async () => {
  // The default config: snapshots are not switched on here.
  b = await openBench();
}, 180_000);
afterAll(async () => {
  await b?.close();
});

const BROAD = [
  "tool: *",
  "file_read: /workspace/**",
  "file_write: /workspace/**",
  "file_read: /output/**",
  "file_write: /output/**",
];
const host = (goalId: string, path: string) => {
  const f = goalFolders(b.home.config.goalsDir, goalId);
  return path.startsWith("/output/") ? join(f.output, path.slice(8)) : join(f.workspace, path.slice(11));
};
const read = (goalId: string, path: string) => readFileSync(host(goalId, path), "utf8");
const created = (agentId: string) =>
  b.rt.audit.query({ agent_id: agentId, kind: "snapshot.created", limit: 1000 });
const write = async (agentId: string, path: string, content: string) =>
  expectOk(await b.call(agentId, "file_write", { path, content }));

/** The text of the last tool result the model was sent. */
function lastToolResult(req: RecordedRequest): string {
  const content = req.body.messages.at(-1).content;
  const block = content.find((c: { type: string }) => c.type === "tool_result");
  return typeof block.content === "string" ? block.content : block.content[0].text;
}

describe("snapshots before mutation", () => {
  it("are on by default, cover /workspace and /output, are taken once per turn, and the model can restore one", async () => {
    expect(b.home.config.policy.snapshotBeforeMutation).toBe(true);
    const w = b.agent("restorer", BROAD);
    await write(w.id, "/workspace/a.txt", "v1");
    await write(w.id, "/output/b.md", "v1");
    const before = created(w.id).length;
    const s = b.server.script("red team agent restorer", [
      turn.toolUses([
        { name: "file_write", input: { path: "/workspace/a.txt", content: "v2" } },
        { name: "file_write", input: { path: "/output/b.md", content: "v2" } },
      ]),
      turn.toolUse("snapshot_list", {}),
      (req) => {
        const id = /^(snap_\w+) .*before turn/m.exec(lastToolResult(req))?.[1];
        return turn.toolUse("snapshot_restore", { id });
      },
      turn.text("undone"),
    ]);
    await b.rt.runAgent(w.id, "write, then undo it");
    expect(s.requests).toHaveLength(4);
    // One snapshot for the turn with two writes, one before the restore (itself a mutation).
    const mine = created(w.id).slice(0, created(w.id).length - before);
    expect(mine.map((e) => (e.payload as { label: string }).label)).toEqual([
      expect.stringMatching(/^before turn/),
      expect.stringMatching(/^before turn/),
    ]);
    expect(lastToolResult(b.server.requests.at(-1)!)).toMatch(/restored snap_\w+: 2 paths changed, 0 failed/);
    expect(read(w.goalId, "/workspace/a.txt")).toBe("v1");
    expect(read(w.goalId, "/output/b.md")).toBe("v1");
  });

  it("fail the call when they cannot be taken: recorded as tool.failed, and the tool does not run", async () => {
    const w = b.agent("unsnapshotable", BROAD);
    await write(w.id, "/workspace/f.txt", "v1");
    const dir = join(b.home.config.goalsDir, w.goalId, "snapshots");
    rmSync(dir, { recursive: true });
    writeFileSync(dir, "not a folder"); // the next snapshot cannot be stored
    const r = await b.call(w.id, "file_write", { path: "/workspace/f.txt", content: "v2" });
    expect(r).toBeInstanceOf(AidoError);
    expect(read(w.goalId, "/workspace/f.txt")).toBe("v1");
    const failed = b.rt.audit.query({ agent_id: w.id, kind: "tool.failed", limit: 1 })[0];
    expect(failed?.payload).toMatchObject({
      tool: "file_write",
      error: expect.stringMatching(/ENOTDIR|not a directory/),
    });
    rmSync(dir);
    await write(w.id, "/workspace/f.txt", "v2");
    expect(read(w.goalId, "/workspace/f.txt")).toBe("v2");
  });

  it("takes none for a call that is refused", async () => {
    const r = b.agent("refused-writer", ["tool: file_write", "file_write: /output/**"]);
    const n = created(r.id).length;
    expectDenied(
      b,
      await b.call(r.id, "file_write", { path: "/workspace/x", content: "x" }),
      "capability_denied",
      r.id,
      "file_write",
    );
    expect(created(r.id)).toHaveLength(n);
  });
});

describe("snapshot_restore", () => {
  it("changes only what the caller may write and path rules allow, leaves the rest, reports and audits it", async () => {
    // Its own runtime: an operator path rule refuses every file tool there, snapshot_create included.
    const pb = await openBench({}, (c) => {
      c.policy.deny.push("path: /workspace/pub/locked/**");
    });
    try {
      const owner = pb.agent("owner", [...BROAD, "spawn_child: *"]);
      const at = (path: string) => {
        const f = goalFolders(pb.home.config.goalsDir, owner.goalId);
        return path.startsWith("/output/")
          ? join(f.output, path.slice(8))
          : join(f.workspace, path.slice(11));
      };
      // Files another agent of the goal made (put there directly: the rule refuses file tools).
      const put = (path: string, text: string) => {
        const made = mkdirSync(dirname(at(path)), { recursive: true });
        writeFileSync(at(path), text);
        // Owned by the container's user, as if an exec had written them.
        for (let p = at(path); made !== undefined && p.length >= made.length; p = dirname(p))
          chownSync(p, 1000, 1000);
        chownSync(at(path), 1000, 1000);
      };
      const files = [
        "/workspace/pub/a.txt",
        "/workspace/pub/locked/l.txt",
        "/workspace/secret/k.txt",
        "/output/o.md",
      ];
      for (const f of files) put(f, "v1");
      // The owner's write makes the runtime snapshot everything first (v1), then changes a.txt.
      expectOk(await pb.call(owner.id, "file_write", { path: "/workspace/pub/a.txt", content: "v2" }));
      for (const f of files.slice(1)) put(f, "v2");
      put("/workspace/secret/new.txt", "new");

      // A child in the same goal that may read and write /workspace/pub only, restoring all of it.
      const s = pb.server.script("narrow child", [
        turn.toolUse("snapshot_list", {}),
        (req) => turn.toolUse("snapshot_restore", { id: /^(snap_\w+)/m.exec(lastToolResult(req))?.[1] }),
        turn.text("done"),
      ]);
      const spawned = expectOk(
        await pb.call(owner.id, "spawn_agent", {
          manifest: {
            name: "narrow",
            system_prompt: "narrow child",
            capabilities: [
              "tool: snapshot_list",
              "tool: snapshot_restore",
              "file_read: /workspace/pub/**",
              "file_write: /workspace/pub/**",
            ],
            budget: { max_tokens: 50_000 },
          },
          message: "put everything back",
        }),
      );
      expect(spawned.output).toContain('stop="complete"');
      const told = lastToolResult(s.requests[2]!);
      // The path rule refuses reading there too, so like the paths outside its grants the
      // locked one is counted, not named.
      expect(told).toMatch(/\nrestored snap_\w+: 1 paths changed, 2 failed/);
      expect(told).toContain(
        "/workspace: 3 path(s) under /workspace that your grants and the policy let you neither read nor write were left as they are",
      );
      expect(told).toContain("/output: 1 path(s) under /output that your grants and the policy let you");
      expect(told).not.toMatch(/secret|locked/); // names it could not list are not listed now either
      expect(readFileSync(at("/workspace/pub/a.txt"), "utf8")).toBe("v1");
      expect(readFileSync(at("/workspace/pub/locked/l.txt"), "utf8")).toBe("v2");
      expect(readFileSync(at("/workspace/secret/k.txt"), "utf8")).toBe("v2");
      expect(readFileSync(at("/workspace/secret/new.txt"), "utf8")).toBe("new");
      expect(readFileSync(at("/output/o.md"), "utf8")).toBe("v2");
      const denied = pb.rt.audit
        .query({ kind: "tool.denied", limit: 50 })
        .map((e) => e.payload as { tool: string; stage: string; reason: string })
        .filter((p) => p.tool === "snapshot_restore");
      expect(denied.map((p) => p.stage).sort()).toEqual(["capability", "policy"]);
      expect(denied.find((p) => p.stage === "capability")!.reason).toMatch(
        /^3 path\(s\) left untouched: file_write /,
      );
      expect(denied.find((p) => p.stage === "policy")!.reason).toMatch(
        /^1 path\(s\) left untouched: file_write \/workspace\/pub\/locked\/l\.txt/,
      );
    } finally {
      await pb.close();
    }
  });

  it("never brings back a setuid bit a program had when the snapshot was taken", async () => {
    const a = b.agent("setuid", [...BROAD, "exec: cp *", "exec: python3 *"]);
    expectOk(await b.call(a.id, "exec", { command: "cp /usr/bin/id /workspace/myid" }));
    // However the bit got there (other defences strip it after each exec), the snapshot sees it.
    chmodSync(host(a.goalId, "/workspace/myid"), 0o4755);
    const snap = expectOk(await b.call(a.id, "snapshot_create", {})).data as { id: string };
    expectOk(
      await b.call(a.id, "exec", { command: "python3 -c \"open('/workspace/myid','w').write('x')\"" }),
    );
    expect(statSync(host(a.goalId, "/workspace/myid")).size).toBe(1);
    const r = expectOk(await b.call(a.id, "snapshot_restore", { id: snap.id }));
    expect(r.data).toMatchObject({ files_restored: 1, files_failed: [] });
    const st = statSync(host(a.goalId, "/workspace/myid"));
    expect(st.size).toBeGreaterThan(1000); // the program came back...
    expect(st.mode & 0o7777).toBe(0o755); // ...without its setuid bit
  });
});

describe("snapshot_create and snapshot_list", () => {
  it("need read grants over everything a snapshot copies; a list shows counts only to who may read it all", async () => {
    const broad = b.agent("lister-broad", BROAD);
    await write(broad.id, "/workspace/w.txt", "w");
    expectOk(await b.call(broad.id, "snapshot_create", { label: "mine" }));
    const full = expectOk(await b.call(broad.id, "snapshot_list", {}));
    expect((full.data as { files?: number }[]).every((x) => typeof x.files === "number")).toBe(true);

    const narrow = b.agent("lister-narrow", [
      "tool: snapshot_create",
      "tool: snapshot_list",
      "tool: file_write",
      "file_read: /workspace/**",
      "file_write: /workspace/**",
    ]);
    const e = expectDenied(
      b,
      await b.call(narrow.id, "snapshot_create", {}),
      "capability_denied",
      narrow.id,
      "snapshot_create",
    );
    expect(e.message).toContain("no capability grants file_read on /output/**");
    await write(narrow.id, "/workspace/n.txt", "n"); // the runtime's own snapshot before it
    const bare = expectOk(await b.call(narrow.id, "snapshot_list", {}));
    const listed = bare.data as Record<string, unknown>[];
    expect(listed).toHaveLength(1);
    expect(listed[0]).toEqual({
      id: expect.stringMatching(/^snap_/),
      created_at: expect.any(String),
      label: "before a mutating call",
    });
    expect(bare.output).not.toMatch(/files|bytes/);
  });
});
