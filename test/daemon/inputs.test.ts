// goal.submit `inputs` over the socket, as an attacker who can submit goals would use them:
// the runtime's own key, a link that leads into AIDO_HOME, a folder that contains it, a
// fifo that would hang the copy, trees too big or too many, a tree that grows after it was
// accepted. Each refusal names the input and the path, is audited, and leaves no goal and
// no copied file; an accepted folder arrives with its inner links copied as links (never
// followed to the host file behind them) and plain modes.

import { execFileSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { turn } from "../support/provider-server.js";
import { manifest, rpcError, useInputsDaemon } from "./fixture.js";

const suite = useInputsDaemon("aido-inputs-");
const open = (limits: { files?: number; mb?: number; goals?: number } = {}): Promise<AidoClient> =>
  suite.open({ files: limits.files ?? 20, mb: limits.mb ?? 1, goals: limits.goals ?? 4 });

const reader = manifest("reader");
const submit = (c: AidoClient, inputs: unknown[]) =>
  c.call("goal.submit", { goal: "read the inputs", manifest: reader, inputs } as never);

/** A project folder: files, a nested folder, an unreadable-to-others file, a link to a host secret. */
function project(): string {
  const dir = join(suite.outside, "project");
  mkdirSync(join(dir, "sub"), { recursive: true });
  writeFileSync(join(dir, "a.txt"), "alpha\n");
  writeFileSync(join(dir, "sub", "b.txt"), "beta\n", { mode: 0o600 });
  writeFileSync(join(suite.outside, "secret"), "host secret\n");
  symlinkSync(join(suite.outside, "secret"), join(dir, "sub", "escape"));
  return dir;
}

describe("goal.submit inputs", () => {
  it("copies a folder with its links as links, plain modes, and lists it in the first message", async () => {
    const c = await open();
    suite.server.script('manifest "reader"', [turn.text("read")]);
    const dir = project();
    const alias = join(suite.outside, "alias"); // the named path may itself be a link: it is the user's choice
    symlinkSync(dir, alias);
    const staged = join(suite.fx.home.dir, "inbox", "1-1", "notes.md"); // run-aido.sh stages here
    mkdirSync(dirname(staged), { recursive: true });
    writeFileSync(staged, "# notes\n");
    const { goal_id } = await submit(c, [alias, staged]);
    const end = await c.call("goal.wait", { goal_id, timeout_ms: 30_000 });
    expect(end.state).toBe("succeeded");
    const inputs = join(suite.fx.home.config.goalsDir, goal_id, "inputs");
    expect(readdirSync(inputs).sort()).toEqual(["alias", "notes.md"]);
    expect(readFileSync(join(inputs, "alias", "a.txt"), "utf8")).toBe("alpha\n");
    expect(readFileSync(join(inputs, "alias", "sub", "b.txt"), "utf8")).toBe("beta\n");
    expect((lstatSync(join(inputs, "alias", "sub", "b.txt")).mode & 0o7777).toString(8)).toBe("644");
    const link = join(inputs, "alias", "sub", "escape");
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe(join(suite.outside, "secret"));
    const first = suite.server.requestsMatching('manifest "reader"')[0]!.body.messages[0].content;
    expect(JSON.stringify(first)).toContain("/inputs/alias");
    expect(JSON.stringify(first)).toContain("/inputs/notes.md");
  });

  it("refuses AIDO_HOME, links into it and folders holding it, naming the path, creating nothing", async () => {
    const c = await open();
    const home = suite.fx.home.config.home;
    const viaLink = join(suite.outside, "innocent");
    symlinkSync(join(home, "keys"), viaLink);
    const cases: Array<[unknown, number, RegExp]> = [
      [
        join(home, "keys", "runtime.ed25519.pem"),
        -32001,
        /inputs\.0: .*keys\/runtime\.ed25519\.pem is inside AIDO_HOME/,
      ],
      [join(home, "aido.db"), -32001, /aido\.db is inside AIDO_HOME/],
      [join(home, "inbox", "..", "keys"), -32001, /is inside AIDO_HOME/],
      [viaLink, -32001, /innocent \(.*\/keys\) is inside AIDO_HOME/],
      [dirname(home), -32001, /contains AIDO_HOME/],
      ["relative/path", -32602, /inputs\.0: must be an absolute path/],
      [join(suite.outside, "missing"), -32003, /inputs\.0: .*missing does not exist/],
    ];
    for (const [input, code, message] of cases) {
      const e = await rpcError(submit(c, [input]));
      expect({ input, code: e.rpcCode }).toEqual({ input, code });
      expect(e.message).toMatch(message);
    }
    expect((await c.call("goal.list", {})).goals).toEqual([]);
    expect(existsSync(suite.fx.home.config.goalsDir)).toBe(false);
    const refused = await c.call("audit.query", { kind: "goal.refused" });
    expect(refused.entries).toHaveLength(cases.length);
  });

  it("blanks a config's API key that an input path or a manifest's grant quotes in goal.refused and agent.spawn_denied", async () => {
    // The daemon's config holds the providers' keys (test/agent/harness.ts providerEnv).
    const fx = await suite.start({
      config: (cfg) => {
        cfg.grantCeilings = [["tool: *", "file_read: /workspace/**", "spawn_child: [*]"]];
      },
    });
    const apiKey = String(fx.home.config.providers.openai.apiKey);
    expect(apiKey.length).toBeGreaterThanOrEqual(4);
    const c = await fx.client();
    // An input path holding it: refused (it does not exist), the reason quoting the path.
    const e1 = await rpcError(submit(c, [`/nowhere/${apiKey}/x`]));
    expect(e1.message).toMatch(/does not exist/);
    // A manifest whose grant holds it, beyond the operator's ceiling.
    const e2 = await rpcError(
      c.call("goal.submit", {
        goal: "read",
        manifest: manifest("wide", { capabilities: [`file_read: /${apiKey}/**`] }),
      }),
    );
    expect(e2.message).toMatch(/ceiling/);
    // A child manifest a model wrote, wider than its parent: refused at spawn.
    suite.server.script('manifest "spawner"', [
      turn.toolUse("spawn_agent", {
        manifest: { name: "kid", system_prompt: "kid", capabilities: [`file_read: /${apiKey}/**`] },
        message: "go",
      }),
      turn.text("done"),
    ]);
    const { goal_id } = await c.call("goal.submit", {
      goal: "spawn",
      manifest: manifest("spawner", {
        capabilities: ["tool: spawn_agent", "file_read: /workspace/**", "spawn_child: [*]"],
      }),
    });
    const end = await c.call("goal.wait", { goal_id, timeout_ms: 60_000 });
    expect(end.error ?? "").toBe("");
    const refused = (await c.call("audit.query", { kind: "goal.refused" })).entries;
    const denied = [
      ...(await c.call("audit.query", { kind: "agent.spawn_denied" })).entries,
      ...(await c.call("audit.query", { goal_id, kind: "agent.spawn_denied" })).entries,
    ];
    expect(refused).toHaveLength(1);
    expect(denied).toHaveLength(2);
    const audited = JSON.stringify([...refused, ...denied]);
    expect(audited).not.toContain(apiKey);
    expect(audited).toContain("/nowhere/***/x");
    expect(audited).toContain("file_read: /***/**");
  });

  it("refuses a fifo, too many entries and too many bytes, naming where, before copying anything", async () => {
    const c = await open({ files: 6, mb: 1 });
    const withFifo = project();
    execFileSync("mkfifo", [join(withFifo, "sub", "pipe")]);
    const e1 = await rpcError(submit(c, [withFifo]));
    expect(e1.rpcCode).toBe(-32602);
    expect(e1.message).toMatch(/inputs\.0: .*sub\/pipe is a fifo/);

    const many = join(suite.outside, "many");
    mkdirSync(many);
    for (let i = 0; i < 6; i++) writeFileSync(join(many, `f${i}`), "x");
    const e2 = await rpcError(submit(c, [join(suite.outside, "secret"), many]));
    expect(e2.rpcCode).toBe(-32002);
    expect(e2.message).toMatch(
      /inputs\.1: the inputs hold more than 6 files, folders and links \(sandbox\.inputs_max_files\); .*many\/f\d is past it/,
    );

    const big = join(suite.outside, "big.bin");
    writeFileSync(big, Buffer.alloc(1024 * 1024 + 1));
    const e3 = await rpcError(submit(c, [big]));
    expect(e3.rpcCode).toBe(-32002);
    expect(e3.message).toMatch(/more than 1 MiB \(sandbox\.inputs_max_mb\); .*big\.bin goes past it/);
    expect((await c.call("goal.list", {})).goals).toEqual([]);
    expect(existsSync(suite.fx.home.config.goalsDir)).toBe(false);
  });

  it("fails a goal whose input grew past the cap after it was accepted, with nothing copied", async () => {
    const c = await open({ files: 6, goals: 1 });
    suite.server.script('manifest "blocker"', [turn.hang()]);
    suite.server.script('manifest "reader"', [turn.text("never asked")]);
    const blocker = await c.call("goal.submit", { goal: "block", manifest: manifest("blocker") });
    const grows = join(suite.outside, "grows");
    mkdirSync(grows);
    writeFileSync(join(grows, "one"), "1");
    const { goal_id } = await submit(c, [grows]);
    expect((await c.call("goal.status", { goal_id })).state).toBe("queued");
    for (let i = 0; i < 10; i++) writeFileSync(join(grows, `more${i}`), "x");
    chmodSync(grows, 0o755);
    await c.call("goal.cancel", { goal_id: blocker.goal_id });
    const end = await c.call("goal.wait", { goal_id, timeout_ms: 30_000 });
    expect(end.state).toBe("failed");
    expect(end.error).toMatch(/inputs\.0: the inputs hold more than 6 files.*grows\/more\d is past it/);
    const root = join(suite.fx.home.config.goalsDir, goal_id);
    expect(readdirSync(join(root, "inputs"))).toEqual([]);
    expect(readdirSync(root).filter((n) => n.startsWith(".inputs-"))).toEqual([]);
    expect(suite.server.requestsMatching('manifest "reader"')).toEqual([]);
  });
});
