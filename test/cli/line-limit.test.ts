// A request line longer than the daemon reads (daemon.max_line_bytes): the daemon drops it
// with an error that names no request (id null). A socket client (the CLI too) refuses such
// a line before sending it, naming both sizes, and an id-null error reply fails the
// requests in flight on its connection: nobody waits for an answer that never comes.
// Real agentd on a temp AIDO_HOME, its real socket, the CLI in process.

import { describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { AidoClient, DEFAULT_MAX_LINE_BYTES } from "../../src/client/client.js";
import { DEFAULTS } from "../../src/config-schema.js";
import { useDaemonPerTest } from "../daemon/fixture.js";
import { captureIo } from "./io.js";

const suite = useDaemonPerTest();

/** `p`, or "hung" when it has not settled within `ms`. */
const within = <T>(p: Promise<T>, ms = 5_000) =>
  Promise.race([p, new Promise<"hung">((r) => setTimeout(() => r("hung"), ms))]);

describe("a request line over daemon.max_line_bytes", () => {
  it("is refused by the socket client at once, naming both sizes, and nothing is sent", async () => {
    const fx = await suite.start();
    const c = await AidoClient.connect(fx.home.config.socketPath);
    try {
      const goal = "x".repeat(2 * 1024 * 1024);
      const r = await within(c.call("goal.submit", { goal }).catch((e: Error) => e));
      if (r === "hung") throw new Error("no answer within 5 s");
      expect(r).toBeInstanceOf(Error);
      expect((r as Error).message).toMatch(
        /^goal\.submit: the request is \d+ bytes, more than the Aido daemon reads in one line \(daemon\.max_line_bytes 1048576\); nothing was sent$/,
      );
      expect((await c.call("goal.list", {})).goals).toEqual([]);
    } finally {
      c.close();
    }
  });

  it("answered by the daemon with an id-null error fails the requests in flight on that connection", async () => {
    // The daemon reads less than this client believes (its limit configured lower).
    const fx = await suite.start({ config: (c) => (c.daemon.maxLineBytes = 4096) });
    const c = await AidoClient.connect(fx.home.config.socketPath);
    try {
      const r = await within(c.call("goal.submit", { goal: "x".repeat(8192) }).catch((e: Error) => e));
      if (r === "hung") throw new Error("no answer within 5 s");
      expect((r as Error).message).toContain(
        "the Aido daemon refused a request on this connection without naming it: invalid request: line longer than 4096 bytes (daemon.max_line_bytes)",
      );
      // The connection lives on.
      expect((await c.call("goal.list", {})).goals).toEqual([]);
    } finally {
      c.close();
    }
  });

  it("`aido submit` with a goal too large for a line exits 1 at once saying why", async () => {
    const fx = await suite.start();
    const io = captureIo();
    const code = await within(runCli(["submit", "y".repeat(2 * 1024 * 1024)], io.io, fx.home.env));
    if (code === "hung") throw new Error("aido submit got no answer within 5 s");
    expect(code).toBe(1);
    expect(io.err.join("\n")).toMatch(
      /goal\.submit: the request is \d+ bytes, more than the Aido daemon reads in one line \(daemon\.max_line_bytes 1048576\)/,
    );
  });

  it("`aido submit` to a daemon that reads less than the CLI's configuration says exits 1 at once", async () => {
    const fx = await suite.start({ config: (c) => (c.daemon.maxLineBytes = 4096) });
    const io = captureIo();
    const code = await within(runCli(["submit", "z".repeat(8192)], io.io, fx.home.env));
    if (code === "hung") throw new Error("aido submit got no answer within 5 s");
    expect(code).toBe(1);
    expect(io.err.join("\n")).toContain("line longer than 4096 bytes (daemon.max_line_bytes)");
  });

  it("the client's default is the setting's default (guard)", () => {
    expect(DEFAULT_MAX_LINE_BYTES).toBe(DEFAULTS.daemon.maxLineBytes);
  });
});
