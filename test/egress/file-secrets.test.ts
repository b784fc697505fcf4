// Proxy credentials in files, attacked through the daemon, the real tools and a goal's
// container (tools/hide-secrets.ts, egress/plumbing.ts access): an agent of a goal with a
// network writes its proxy URL (user, password) to the workspace, whole and padded so that
// each tool's cut falls inside the password — file_read's byte cap, file_read_many's share of
// it, grep's 500-character line cut — and reads it back; then a child without network grants,
// and one with grants of its own, read the parent's file. Every output shows "[hidden]" where
// the password was, and no piece of it.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import { MIN_SECRET_LENGTH } from "../../src/security/blank-secrets.js";
import { type DaemonFixture, manifest } from "../daemon/fixture.js";
import { requireDocker } from "../support/docker.js";
import { type ProviderServer, startProviderServer, turn } from "../support/provider-server.js";
import { resultBefore, startGoalDaemon } from "./goal-daemon.js";

/** The cap on what the model sees: file_read keeps CAP - 120 bytes of a file (tools/files.ts roomFor). */
const CAP = 900;
/** `http://` + an agent id (a_ + 18) + `:`: where the password starts in the proxy URL. */
const BEFORE_PASSWORD = 7 + 20 + 1;
/** Pads putting each tool's cut 12 characters into the password. */
const READ_PAD = CAP - 120 - BEFORE_PASSWORD - 12;
const MANY_PAD = Math.floor(CAP / 2) - 120 - BEFORE_PASSWORD - 12; // file_read_many of 2 files
const GREP_PAD = 500 - BEFORE_PASSWORD - 12;

const write = (file: string, pad: number) =>
  `printf '%0${pad}d' 0 > /workspace/${file}; printf '%s\\n' "$HTTP_PROXY" >> /workspace/${file}`;

let server: ProviderServer;
let fx: DaemonFixture;
let c: AidoClient;

/** Every piece of `secret` as long as a blanked piece may be (MIN_SECRET_LENGTH), starts and ends. */
function piecesOf(secret: string): string[] {
  const n = MIN_SECRET_LENGTH + 4;
  return [secret, secret.slice(0, n), secret.slice(-n)];
}

beforeAll(async () => {
  requireDocker();
  server = await startProviderServer();
  fx = await startGoalDaemon(server, (cfg) => {
    cfg.limits.toolOutputMaxBytes = CAP;
  });
  c = await fx.client();
}, 120_000);

afterAll(async () => {
  await fx?.close();
  await server?.close();
});

describe("proxy credentials an agent wrote to a file", () => {
  it("are blanked where file_read, file_read_many and grep cut inside them, and from every other agent of the goal", async () => {
    const files = ["cut", "many", "line"].map((f) => `/workspace/${f}`);
    const parent = server.script('manifest "fs-parent"', [
      turn.toolUse("exec", {
        command: [
          `printf '%s\\n' "$HTTP_PROXY" > /workspace/p-proxy`,
          write("cut", READ_PAD),
          write("many", MANY_PAD),
          write("line", GREP_PAD),
        ].join("; "),
      }),
      turn.toolUse("file_read", { path: files[0] }),
      turn.toolUse("file_read_many", { paths: [files[1], "/workspace/p-proxy"] }),
      turn.toolUse("grep", { pattern: "http", path: "/workspace", glob: "line" }),
      turn.toolUse("spawn_agent", {
        manifest: {
          name: "fs-child",
          system_prompt: "You are fs-child, under test.",
          capabilities: ["tool: file_read", "tool: grep", "file_read: /workspace/**"],
        },
        message: "Read what your parent left.",
      }),
      turn.toolUse("spawn_agent", {
        manifest: {
          name: "fs-netchild",
          system_prompt: "You are fs-netchild, under test.",
          capabilities: [
            "tool: file_read",
            "tool: exec",
            "exec: *",
            "file_read: /workspace/**",
            "network: plain.test:8080",
          ],
        },
        message: "Read what your parent left.",
      }),
      turn.text("done"),
    ]);
    const child = server.script('manifest "fs-child"', [
      turn.toolUse("file_read", { path: "/workspace/p-proxy" }),
      turn.toolUse("grep", { pattern: "http", path: "/workspace", glob: "p-proxy" }),
      turn.text("read"),
    ]);
    const netChild = server.script('manifest "fs-netchild"', [
      turn.toolUse("file_read", { path: "/workspace/p-proxy" }),
      turn.toolUse("exec", { command: 'cat /workspace/p-proxy; echo "own=$HTTP_PROXY"' }),
      turn.text("read"),
    ]);
    const { goal_id } = await c.call("goal.submit", {
      goal: "leave credentials about",
      manifest: manifest("fs-parent", {
        capabilities: [
          "tool: exec",
          "tool: file_read",
          "tool: file_read_many",
          "tool: grep",
          "tool: spawn_agent",
          "file_read: /workspace/**",
          "file_write: /workspace/**",
          "exec: *",
          "network: plain.test:8080",
          "spawn_child: [fs-child, fs-netchild]",
        ],
      }),
    });
    const end = await c.call("goal.wait", { goal_id, timeout_ms: 150_000 });
    expect(end.state).toBe("succeeded");

    // The parent's proxy URL as its file holds it, read on the host.
    const url = readFileSync(join(fx.home.config.goalsDir, goal_id, "workspace", "p-proxy"), "utf8").trim();
    const { username, password } = new URL(url);
    expect(password.length).toBeGreaterThan(20);
    expect(url.indexOf(password)).toBe(BEFORE_PASSWORD);

    const shown = {
      read: resultBefore(parent.requests, 2),
      many: resultBefore(parent.requests, 3),
      grep: resultBefore(parent.requests, 4),
      childRead: resultBefore(child.requests, 1),
      childGrep: resultBefore(child.requests, 2),
      netChildRead: resultBefore(netChild.requests, 1),
      netChildCat: resultBefore(netChild.requests, 2),
    };
    // Each cut fell inside the password, and where it was stands "[hidden]".
    expect
      .soft(shown.read)
      .toMatch(
        /0{20}http:\/\/a_\w+:\[hidden\]\n\[file truncated: showed \d+ of \d+ bytes\]\n<\/tool_output>/,
      );
    expect
      .soft(shown.many)
      .toMatch(/0{20}http:\/\/a_\w+:\[hidden\]\n\[file truncated: showed \d+ of \d+ bytes\]\n/);
    expect.soft(shown.many).toMatch(/=== \/workspace\/p-proxy ===\nhttp:\/\/a_\w+:\[hidden\]@/);
    expect.soft(shown.grep).toMatch(/\/workspace\/line:1: 0+http:\/\/a_\w+:\[hidden\]…\n/);
    // The children read their parent's whole URL: blanked for both.
    for (const text of [shown.childRead, shown.childGrep, shown.netChildRead, shown.netChildCat])
      expect.soft(text).toContain(`http://${username}:[hidden]@`);
    // The child with grants of its own sees its own blanked as well.
    expect.soft(shown.netChildCat).toMatch(/own=http:\/\/a_\w+:\[hidden\]@/);
    const all = JSON.stringify(shown);
    for (const piece of piecesOf(password)) expect(all).not.toContain(piece);
  }, 200_000);
});
