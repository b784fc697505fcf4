// test/ui/events-bounds.test.ts — /api/events never buffers for a reader that does not
// read: once more than its cap piles up unread (past what the kernel's socket buffers
// hold), the daemon drops that stream and logs it, while a reader that reads gets every
// event.

import { type IncomingMessage, request } from "node:http";
import { describe, expect, it } from "vitest";
import { manifest, rpcError, useDaemonPerTest } from "../daemon/fixture.js";
import { eventually, openStream, openUi, signIn } from "./fixture.js";

const suite = useDaemonPerTest();

describe("the event stream", () => {
  it("drops a reader that lets more than its cap pile up unread, and only that one", async () => {
    const fx = await suite.start();
    const ui = await openUi(fx);
    const session = await signIn(ui);
    // A reader that takes the headers and then stops reading.
    let dropped = false;
    let slowBytes = 0;
    const slow = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port: ui.port,
          path: "/api/events",
          headers: { Host: ui.host, ...session },
          setHost: false,
        },
        (res) => {
          expect(res.statusCode).toBe(200);
          res.pause();
          res.socket.pause();
          res.on("data", (c: Buffer) => {
            slowBytes += c.length;
          });
          res.on("close", () => {
            dropped = true;
          });
          resolve(res);
        },
      );
      req.on("error", (e) => {
        dropped = true;
        reject(e);
      });
      req.end();
    });
    const reading = await openStream(ui, session, "/api/events");
    // Refused calls, each with a long program name in its tool.denied reason: megabytes of
    // events in seconds, and no container (exec's needs are stated by its command, so the
    // capability stage refuses a program no grant names before any container is asked for).
    const socket = await fx.client();
    const agent = await socket.call("agent.spawn", {
      manifest: manifest("runner", { capabilities: ["tool: exec", "exec: ls"] }),
    });
    const command = `/workspace/${"p".repeat(3000)}`;
    const first = await rpcError(
      socket.call("tool.invoke", { agent_id: agent.agent_id, tool: "exec", input: { command } }),
    );
    expect(first.details.stage, first.message).toBe("capability");
    expect(first.message).toContain(command);
    const before = reading.events.length;
    const droppedLogged = () => fx.logs.some((l) => l.includes("dropping an event stream"));
    // Until the daemon drops the slow reader: how much that takes depends on how much the
    // kernel buffers for an unread socket (tcp_rmem's maximum was 6 MiB, 32 MiB since Linux
    // 6.16), so the loop is bounded by time, not by a count tuned to one kernel.
    let sent = 0;
    const until = Date.now() + 60_000;
    while (!droppedLogged() && Date.now() < until) {
      await Promise.all(
        Array.from({ length: 50 }, () =>
          socket
            .call("tool.invoke", { agent_id: agent.agent_id, tool: "exec", input: { command } })
            .catch(() => undefined),
        ),
      );
      sent += 50;
    }
    expect(droppedLogged()).toBe(true);
    // Reading again, the slow reader finds its stream cut short: the daemon closed it.
    slow.socket.resume();
    slow.resume();
    await eventually(async () => (dropped ? true : undefined), 30_000);
    // The reader that reads got every call's tool.called and tool.denied.
    await eventually(async () => (reading.events.length - before >= 2 * sent ? true : undefined), 30_000);
    const readingBytes = reading.events.reduce((n, e) => n + JSON.stringify(e.data).length, 0);
    expect(slowBytes).toBeLessThan(readingBytes);
    reading.close();
  }, 120_000);
});
