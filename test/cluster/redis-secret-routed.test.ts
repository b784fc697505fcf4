// A routed command's error never carries the secret of the node's Redis URL (cluster/
// command-sender.ts). A goal.cancel for a goal another node runs goes out through the command
// sender, which handed the socket client the text of the owner's answer (written through
// Redis, by the owner or whoever can write there) and of Redis's refusals as given; every
// other path of the node blanked the secret (withoutRedisSecret). The owner blanks its own
// URL's secret in the error it answers with (serveCommands), a short one only where it
// stands as a word (security/blank-secrets.ts).

import type { Redis } from "ioredis";
import { expect, it, vi } from "vitest";
import { providerEnv } from "../agent/harness.js";
import { failureOf } from "../llm/harness.js";
import type { ProviderServer } from "../support/provider-server.js";
import { connectRedis, type RedisServer, startNode } from "./fixture.js";
import { withCluster } from "./support/file-cluster.js";
import { nextCommand, plantGoal } from "./support/owner-asker.js";

let redisServer: RedisServer;
let raw: Redis;
let server: ProviderServer;
withCluster((c) => {
  ({ redis: redisServer, raw, server } = c);
});

/** `node` heartbeating (as far as Redis says) and running `goalId`. */
async function goalOn(node: string, goalId: string): Promise<void> {
  await raw.set(`aido:node:${node}:alive`, "1", "PX", 60_000);
  await plantGoal(raw, node, goalId);
}

/** Redis's URL as ACL user `user` (made here with `+@all`), its password `password` if any. */
async function userUrl(user: string, password?: string): Promise<string> {
  await raw.call("ACL", "SETUSER", user, "on", password ? `>${password}` : "nopass", "~*", "&*", "+@all");
  const url = new URL(redisServer.url);
  url.username = user;
  if (password) url.password = encodeURIComponent(password);
  return url.toString();
}

it("an owner's answer that carries the asker's Redis password reaches the client without it", async () => {
  const password = "routed.pw/5ecret";
  const asker = await startNode(server, await userUrl("aido-routed-asker", password), "secret-asker");
  const owner = "secret-owner";
  const goalId = "g_secretanswer";
  await goalOn(owner, goalId);
  const reader = connectRedis(redisServer.url);
  reader.on("error", () => {});
  const asked = failureOf((await asker.client()).call("goal.cancel", { goal_id: goalId }));
  // The owner takes the command and answers with an error whose text holds the password, as
  // given and URL-encoded (an owner's Redis error, or a text anyone who writes to Redis put there).
  const cmd = await nextCommand(reader, owner, "0-0");
  expect(cmd.command).toMatchObject({ type: "goal.cancel", goal_id: goalId });
  await raw.set(`aido:request:${cmd.request_id}`, "taken", "EX", 60);
  const said = `Redis said ${password} (${encodeURIComponent(password)})`;
  await raw.xadd(
    `aido:node:${cmd.reply_to}:replies`,
    "*",
    "r",
    JSON.stringify({ request_id: cmd.request_id, ok: false, error: { code: "internal", message: said } }),
  );
  const e = await asked;
  expect(e.message).toBe(`node ${owner}: Redis said *** (***)`);
}, 60_000);

it("a routed goal.cancel Redis refuses says NOPERM, never the URL's token", async () => {
  // A hosted Redis's token as the URL's user, no password: the token is the URL's secret.
  const token = "hosted-token-5ecret";
  const asker = await startNode(server, await userUrl(token), "secret-token-asker");
  const goalId = "g_secretrefused";
  await goalOn("secret-token-owner", goalId);
  // Sending the command (XADD to the owner's stream) is refused from now on.
  await raw.call("ACL", "SETUSER", token, "-xadd");
  const e = await failureOf((await asker.client()).call("goal.cancel", { goal_id: goalId }));
  expect(e.code).toBe("cluster_unavailable");
  expect(e.message).toMatch(/the cluster's Redis refused a command \(sending it for goal\.cancel.*NOPERM/);
  expect(e.message).not.toContain(token);
}, 60_000);

/**
 * The answer `owner` appends for `command`, written onto its stream as a sender would; sent
 * again until answered (a node just started reads its stream from the tip it finds first).
 */
async function ownerAnswer(
  owner: string,
  command: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const replyTo = "secret-probe";
  const replies = `aido:node:${replyTo}:replies`;
  const reader = connectRedis(redisServer.url);
  reader.on("error", () => {});
  try {
    // Only an answer to a request sent here: an earlier test's may still be on the stream.
    const sent = new Set<string>();
    let last = "0-0";
    await raw.del(replies);
    for (let attempt = 0; attempt < 15; attempt++) {
      const requestId = `r-owner-${attempt}-${Date.now()}`;
      sent.add(requestId);
      await raw.set(`aido:request:${requestId}`, "pending", "EX", 60);
      const envelope = { request_id: requestId, reply_to: replyTo, command };
      await raw.xadd(`aido:node:${owner}:commands`, "*", "c", JSON.stringify(envelope));
      const r = (await reader.xread("BLOCK", 1_000, "STREAMS", replies, last)) as
        | [string, [string, string[]][]][]
        | null;
      for (const [id, fields] of r?.[0]?.[1] ?? []) {
        last = id;
        const reply = JSON.parse(fields[1] ?? "{}") as Record<string, unknown>;
        if (sent.has(String(reply.request_id))) return reply;
      }
    }
    throw new Error(`${owner} did not answer`);
  } finally {
    reader.disconnect();
  }
}

it("an owner's error answer blanks its own short Redis password, and leaves the words holding it", async () => {
  // A two-letter password: before, the owner blanked "no" inside every word ("node" read "***de").
  const owner = "secret-short-owner";
  await startNode(server, await userUrl("aido-routed-owner", "no"), owner);
  // Whoever writes to Redis can put a command here; the owner refuses it, quoting what it was given.
  const reply = await ownerAnswer(owner, {
    type: "approval.respond",
    id: "a_x",
    decision: "approve",
    via: "no",
  });
  expect(reply).toMatchObject({ ok: false, error: { code: "invalid_input" } });
  const message = (reply.error as { message: string }).message;
  expect(message).toBe(
    'a routed approval answer must come "socket client via node <node id>" or "dashboard via node <node id>"; refused "***"',
  );
}, 60_000);

it("an owner audits the commands it refuses without its Redis password or provider key", async () => {
  // Before, cluster.command_refused quoted a routed approval's `via` and a command's `type` as
  // written to Redis: the Redis password reached the audit log (and the dashboard) as given.
  const password = "audit.pw/5ecret";
  const providerKey = providerEnv(server).ANTHROPIC_API_KEY as string;
  const owner = "secret-audit-owner";
  const node = await startNode(server, await userUrl("aido-audit-owner", password), owner);
  await ownerAnswer(owner, {
    type: "approval.respond",
    id: "a_x",
    decision: "approve",
    via: `${password} ${providerKey}`,
  });
  // A command naming no node to answer, its type the password: refused before it is read.
  await raw.xadd(
    `aido:node:${owner}:commands`,
    "*",
    "c",
    JSON.stringify({ request_id: "r-audit", command: { type: encodeURIComponent(password) } }),
  );
  const client = await node.client();
  const refusals = async () =>
    JSON.stringify(
      (await client.call("audit.query", { kind: "cluster.command_refused" })).entries.map((e) => e.payload),
    );
  await vi.waitFor(async () => expect(await refusals()).toContain("it names no node to answer"), {
    timeout: 10_000,
  });
  const logged = await refusals();
  expect(logged).toContain('refused \\"*** ***\\"');
  expect(logged).toContain('"type":"***"');
  for (const secret of [password, encodeURIComponent(password), providerKey])
    expect(logged).not.toContain(secret);
}, 60_000);
