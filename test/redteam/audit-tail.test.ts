// Red team: the audit tail, attacked by a local user with write access to $AIDO_HOME (not
// to the runtime key) after the daemon died. The signed head file has two slots and a
// reader falls back to the other one when the newest is unreadable (a write torn by a
// crash). If the slot a head goes to follows the parity of its seq, a run of commits that
// each add two entries (every spawn: token.issued + agent.spawned) keeps writing the same
// slot while the other keeps a head from long before. Blanking the newest slot then
// "tears" the file back to that old head, and every entry after it can be deleted without
// `aido audit verify` or the next daemon start noticing. docs/audit.md allows the last
// commit to go unvouched (a kill between a commit and its head write), not more.

import { readFileSync, writeFileSync } from "node:fs";
import Database from "better-sqlite3";
import { afterEach, beforeAll, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { AidoClient } from "../../src/client/client.js";
import { killChildren, startDaemonChild } from "../daemon/process.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import { type ProviderServer, startProviderServer } from "../support/provider-server.js";

let server: ProviderServer;
let home: TempHome | undefined;

beforeAll(async () => {
  server = await startProviderServer();
  return () => server.close();
});
afterEach(() => {
  killChildren();
  home?.cleanup();
  home = undefined;
});

const SLOT = 512;

/** The seq each slot of the head file names (null when it holds none). */
function slotSeqs(path: string): (number | null)[] {
  const text = readFileSync(path, "utf8");
  return [0, 1].map((i) => {
    try {
      return (JSON.parse(text.slice(i * SLOT, (i + 1) * SLOT).trim()) as { seq: number }).seq;
    } catch {
      return null;
    }
  });
}

async function verify(h: TempHome): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  const io = { out: (l: string) => out.push(l), err: (l: string) => out.push(l), interactive: false };
  const code = await runCli(["audit", "verify"], io, h.env);
  return { code, out: out.join("\n") };
}

it("blanking the newest head slot after a crash hides no more than the last commit", async () => {
  const h = makeTempHome();
  home = h;
  const first = await startDaemonChild(h, server);
  const c = await AidoClient.connect(h.config.socketPath);
  // What a busy daemon writes: a refused call (one entry), then agents spawned one after
  // another (two entries per commit).
  const spawn = (name: string) =>
    c.call("agent.spawn", { manifest: { name, system_prompt: "x", capabilities: ["tool: file_read"] } });
  const { agent_id } = await spawn("w0");
  await c.call("tool.invoke", { agent_id, tool: "exec", input: { command: "id" } }).catch(() => {});
  for (let i = 1; i < 7; i++) await spawn(`w${i}`);
  c.close();
  first.child.kill("SIGKILL");
  await first.exited;
  expect((await verify(h)).code).toBe(0);

  // The attack: "tear" the newest slot, cut the log back to the seq the other slot names,
  // and drop any checkpoint past it.
  const seqs = slotSeqs(h.config.auditHeadPath);
  const newest = Math.max(...seqs.map((s) => s ?? -1));
  const slot = seqs.indexOf(newest);
  const older = seqs[1 - slot] ?? 0;
  const bytes = readFileSync(h.config.auditHeadPath);
  bytes.fill(0x20, slot * SLOT, (slot + 1) * SLOT);
  writeFileSync(h.config.auditHeadPath, bytes);
  const a = new Database(h.config.dbPath);
  const removed = a.prepare("DELETE FROM audit WHERE seq > ?").run(older).changes;
  a.prepare("DELETE FROM audit_checkpoints WHERE seq > ?").run(older);
  a.close();

  const r = await verify(h);
  // A torn write may cost the previous commit (one spawn: two entries), never more.
  if (r.code === 0) {
    expect(
      removed,
      `verify passed with ${removed} entries cut (slots ${seqs}): ${r.out}`,
    ).toBeLessThanOrEqual(2);
  } else expect(r.out).toMatch(/head/);
}, 60_000);
