// test/ui/events-bounds.test.ts — /api/events never buffers for a reader that does not
// read: once more than its cap piles up unread (past what the kernel's socket buffers
// hold), the daemon drops that stream and logs it, while a reader that reads gets every
// event.

import { type IncomingMessage, request } from "node:http";
import { describe, expect, it } from "vitest";
import { manifest, useDaemonPerTest } from "../daemon/fixture.js";
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
    // Refused calls, each with a long path in its tool.denied reason: megabytes of events
    // in seconds, and no container (the capability stage refuses before any).
    const socket = await fx.client();
    const agent = await socket.call("agent.spawn", {
      manifest: manifest("writer", { capabilities: ["tool: file_write", "file_write: /workspace/ok/**"] }),
    });
    const path = `/workspace/${"p".repeat(3000)}`;
    const before = reading.events.length;
    const droppedLogged = () => fx.logs.some((l) => l.includes("dropping an event stream"));
    let sent = 0;
    while (!droppedLogged() && sent < 20_000) {
      await Promise.all(
        Array.from({ length: 50 }, () =>
          socket
            .call("tool.invoke", {
              agent_id: agent.agent_id,
              tool: "file_write",
              input: { path, content: "x" },
            })
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
