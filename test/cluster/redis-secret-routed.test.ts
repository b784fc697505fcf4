// A routed command's error never carries the secret of the node's Redis URL (cluster/
// command-sender.ts). A goal.cancel for a goal another node runs goes out through the command
// sender, which handed the socket client the text of the owner's answer (written through
// Redis, by the owner or whoever can write there) and of Redis's refusals as given; every
// other path of the node blanked the secret (withoutRedisSecret).

import type { Redis } from "ioredis";
import { expect, it } from "vitest";
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
