// Parallel worlds on a real Docker engine, through the agent loop with the real SDK against
// the scripted provider: a parent spawns three worlds whose children change different
// files in their own copies (each its own container), reads the receipts, adopts one; the
// real workspace is untouched until then and gets exactly that world's diff; the other
// worlds' containers and folders are gone. An adoption that would write a path the caller
// may not write without a human writes nothing.

import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Runtime } from "../../src/kernel/runtime.js";
import { providerEnv } from "../agent/harness.js";
import { requireDocker } from "../support/docker.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import {
  type ProviderServer,
  type RecordedRequest,
  startProviderServer,
  type Turn,
  turn,
} from "../support/provider-server.js";

let server: ProviderServer;
let home: TempHome;
let rt: Runtime;

beforeAll(async () => {
  requireDocker();
  server = await startProviderServer();
  home = makeTempHome(providerEnv(server));
  // Writes under /output/vault need a human (a confirm path under /workspace would shut
  // /workspace itself to exec's Landlock domain, and the first test removes a file there).
  home.config.policy.confirm = ["path: /output/vault/**"];
  rt = await Runtime.open(home.config);
}, 120_000);
afterAll(async () => {
  await rt?.close();
  await server?.close();
  home?.cleanup();
});

const FILES = [
  "tool: file_write",
  "tool: file_read",
  "tool: exec",
  "file_read: /workspace/**",
  "file_write: /workspace/**",
  "file_write: /output/**",
  "exec: rm *",
];
const lead = (name: string) => ({
  name,
  system_prompt: "You lead.",
  capabilities: [...FILES, "tool: spawn_worlds", "tool: adopt_world", "spawn_child: explorer"],
  budget: { max_tokens: 400_000 },
});
const explorer = { name: "explorer", system_prompt: "You explore.", capabilities: FILES };

type Msg = { role: string; content: unknown };
const lastResult = (req: RecordedRequest) =>
  (req.body.messages.at(-1).content as { content: string; is_error?: boolean }[])[0]!;
const worldFolders = () => readdirSync(home.config.goalsDir).filter((n) => n.startsWith("w_"));
const worldContainers = () =>
  execFileSync("docker", ["ps", "-a", "--format", "{{.Names}}"], { encoding: "utf8" })
    .split("\n")
    .filter((n) => /_goal_w_/.test(n));

/** Each receipt's world id and body. */
function receipts(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/<world_receipt world="(w_[0-9a-f]{16})"[^>]*>([\s\S]*?)<\/world_receipt>/g))
    out.set(m[1]!, m[2]!);
  return out;
}

function treeOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of readdirSync(dir, { recursive: true }) as string[]) {
    const p = join(dir, n);
    try {
      out[n] = readFileSync(p, "utf8");
    } catch {
      out[n] = "<dir>";
    }
  }
  return out;
}

describe("spawn_worlds and adopt_world in containers", () => {
  it("three worlds change different files; the real workspace changes only by the adopted world's diff", async () => {
    // Which child a request belongs to: its first tool call says (the first request takes the next role).
    let next = 0;
    const seenContainers = new Set<string>();
    const roles: Turn[] = [
      turn.toolUse("file_write", { path: "/workspace/a.txt", content: "from world one\n" }),
      turn.toolUses([
        { name: "file_write", input: { path: "/workspace/seed.txt", content: "seed v2\n" } },
        { name: "file_write", input: { path: "/workspace/b.txt", content: "from world two\n" } },
        { name: "exec", input: { command: "rm /workspace/old.txt" } },
      ]),
      turn.text("nothing worth changing"),
    ];
    server.script(
      'manifest "explorer"',
      [
        (req) => {
          const msgs = req.body.messages as Msg[];
          // After its calls ran: the worlds' own containers (never the parent's).
          if (msgs.length > 1) for (const c of worldContainers()) seenContainers.add(c);
          return msgs.length === 1
            ? roles[next++ % 3]!
            : turn.text(`done: ${JSON.stringify(msgs[1]!.content).length}`);
        },
      ],
      { repeatLast: true },
    );
    let seenBefore: Record<string, string> = {};
    let chosen = "";
    let others: string[] = [];
    const ws = () =>
      join(home.config.goalsDir, rt.listAgents().find((a) => a.manifest === "lead")!.goal_id, "workspace");
    const parent = server.script('manifest "lead"', [
      turn.toolUses([
        { name: "file_write", input: { path: "/workspace/seed.txt", content: "seed\n" } },
        { name: "file_write", input: { path: "/workspace/old.txt", content: "old\n" } },
      ]),
      turn.toolUse("spawn_worlds", { task: "Improve the workspace.", worlds: 3, manifest: explorer }),
      (req) => {
        const worlds = receipts(lastResult(req).content);
        chosen = [...worlds].find(([, body]) => body.includes("changed /workspace/seed.txt"))![0];
        others = [...worlds.keys()].filter((w) => w !== chosen);
        seenBefore = treeOf(ws());
        return turn.toolUse("adopt_world", { world_id: chosen });
      },
      turn.text("adopted the best world"),
    ]);

    const r = await rt.spawnAndRun(lead("lead"), "Improve it three ways, keep the best.");
    expect(r.stop_reason).toBe("complete");

    // The receipts: each world's diff, text diffs included; nothing reached the real workspace.
    const spawnResult = lastResult(parent.requests[2]!).content;
    expect(spawnResult).toContain("3 of 3 worlds completed.");
    const worlds = receipts(spawnResult);
    expect(worlds.size).toBe(3);
    const bodies = [...worlds.values()];
    expect(bodies.filter((b) => b.includes("added /workspace/a.txt (file, 15 bytes)"))).toHaveLength(1);
    const two = worlds.get(chosen)!;
    expect(two).toContain("files: 1 added, 1 changed, 1 deleted");
    expect(two).toContain("-seed\n+seed v2");
    expect(two).toContain("deleted /workspace/old.txt (file, 4 bytes)");
    expect(bodies.filter((b) => b.includes("files: 0 added, 0 changed, 0 deleted"))).toHaveLength(1);
    expect(seenBefore).toEqual({ "seed.txt": "seed\n", "old.txt": "old\n" });

    // Adopted: exactly world two's diff, through the gate as the parent.
    const adopted = lastResult(parent.requests[3]!);
    expect(adopted.is_error).toBeUndefined();
    expect(adopted.content).toContain(`adopted ${chosen}: 3 paths applied, 0 failed`);
    expect(adopted.content).toContain(`discarded: ${others.join(", ")}`);
    const goalId = rt.listAgents({ includeStopped: true }).find((a) => a.manifest === "lead")!.goal_id;
    const real = join(home.config.goalsDir, goalId, "workspace");
    expect(treeOf(real)).toEqual({ "seed.txt": "seed v2\n", "b.txt": "from world two\n" });
    expect(rt.audit.query({ kind: "world.adopted" }).map((e) => e.payload)).toEqual([
      { world_id: chosen, paths_applied: 3, paths_failed: 0 },
    ]);
    const adoptCall = rt.audit.query({ goal_id: goalId, kind: "tool.invoked" }).map((e) => e.payload);
    expect(adoptCall).toContainEqual(
      expect.objectContaining({ tool: "adopt_world", input: { world_id: chosen } }),
    );
    // A snapshot before the mutation: the gate's, in the parent's turn.
    expect(
      rt.audit
        .query({ goal_id: goalId, kind: "snapshot.created" })
        .map((e) => (e.payload as { label: string }).label),
    ).toContain("before turn 3");
    // The children's calls were audited under their worlds, not the real goal.
    const inWorld = rt.audit.query({ goal_id: chosen, kind: "tool.invoked" }).map((e) => e.payload);
    expect(inWorld.map((p) => (p as { tool: string }).tool).sort()).toEqual([
      "exec",
      "file_write",
      "file_write",
    ]);

    // The worlds that ran tools had containers of their own; every world is gone now:
    // containers and folders.
    expect([...seenContainers].some((c) => c.endsWith(`_goal_${chosen}`))).toBe(true);
    await vi.waitFor(() => expect(worldFolders()).toEqual([]), { timeout: 20_000 });
    await vi.waitFor(() => expect(worldContainers()).toEqual([]), { timeout: 20_000 });
    for (const w of worlds.keys()) expect(existsSync(join(home.config.goalsDir, w))).toBe(false);
  }, 180_000);

  it("asks no human in a world, and refuses an adoption with a path the caller may not write, writing nothing of it", async () => {
    // Writes under /output/vault need a human (policy confirm). A human answers the first
    // one, by the lead's child outside any world, with Allow Always: that standing
    // decision (bound to the child's identity, guarded/explorer) lets the worlds' children
    // write there too. adopt_world, as the lead, cannot stop to ask: refused, nothing written.
    server.reset();
    const asked: string[] = [];
    const stop = rt.approvals.on("requested", (rec) => {
      asked.push(rec.goal_id ?? "");
      setImmediate(() => rt.approvals.respond(rec.id, "allow_always", "test"));
    });
    try {
      server.script(
        'manifest "explorer"',
        [
          (req) => {
            const msgs = req.body.messages as Msg[];
            if (msgs.length > 1) return turn.text("wrote");
            return msgs[0]!.content === "Write the key."
              ? turn.toolUse("file_write", { path: "/output/vault/key.txt", content: "k\n" })
              : turn.toolUses([
                  { name: "file_write", input: { path: "/workspace/ok.txt", content: "fine\n" } },
                  { name: "file_write", input: { path: "/output/vault/key.txt", content: "k2\n" } },
                ]);
          },
        ],
        { repeatLast: true },
      );
      let world = "";
      const parent = server.script('manifest "guarded"', [
        turn.toolUse("spawn_agent", { manifest: explorer, message: "Write the key." }),
        turn.toolUse("spawn_worlds", { task: "Rewrite the key.", worlds: 2, manifest: explorer }),
        (req) => {
          world = [...receipts(lastResult(req).content).keys()][0]!;
          return turn.toolUse("adopt_world", { world_id: world });
        },
        turn.text("refused"),
      ]);
      const guarded = lead("guarded");
      const r = await rt.spawnAndRun(
        { ...guarded, capabilities: [...guarded.capabilities, "tool: spawn_agent"] },
        "Write the key.",
      );
      expect(r.stop_reason).toBe("complete");
      const goalId = rt.listAgents({ includeStopped: true }).find((a) => a.manifest === "guarded")!.goal_id;
      // One human answer, for the real child; none asked from a world.
      expect(asked).toEqual([goalId]);
      const spawned = lastResult(parent.requests[2]!).content;
      expect(spawned).toContain("2 of 2 worlds completed.");
      // The lead may not read /output: the receipts list the change without its text.
      expect(receipts(spawned).get(world) ?? [...receipts(spawned).values()][0]).toContain(
        "changed /output/vault/key.txt (file, 3 bytes)",
      );
      expect(spawned).not.toContain("+k2");
      const res = lastResult(parent.requests[3]!);
      expect(res.is_error).toBe(true);
      expect(res.content).toContain(`${world} not adopted, nothing was written`);
      expect(res.content).toContain("/output/vault/key.txt:");
      expect(res.content).toMatch(/which this call cannot stop to ask/);
      const real = join(home.config.goalsDir, goalId, "workspace");
      expect(existsSync(join(real, "ok.txt"))).toBe(false);
      expect(readFileSync(join(home.config.goalsDir, goalId, "output", "vault", "key.txt"), "utf8")).toBe(
        "k\n",
      );
      const refused = rt.audit.query({ goal_id: goalId, kind: "world.refused" }).map((e) => e.payload);
      expect(refused).toHaveLength(1);
      expect(refused[0]).toMatchObject({ world_id: world });
      expect((refused[0] as { paths: string[] }).paths).toContain("/output/vault/key.txt");
      const denied = rt.audit
        .query({ goal_id: goalId, kind: "tool.denied" })
        .map((e) => e.payload as { tool: string; stage: string; reason: string });
      expect(denied).toContainEqual(
        expect.objectContaining({
          tool: "adopt_world",
          stage: "policy",
          reason: expect.stringContaining("/output/vault/key.txt"),
        }),
      );
      expect(rt.audit.query({ goal_id: goalId, kind: "world.adopted" })).toEqual([]);
      await vi.waitFor(() => expect(worldFolders()).toEqual([]), { timeout: 20_000 });
      await vi.waitFor(() => expect(worldContainers()).toEqual([]), { timeout: 20_000 });
    } finally {
      stop();
    }
  }, 180_000);
});
