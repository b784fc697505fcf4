// test/ui/output-open.test.ts — an output file the listing found but the open then could
// not have (a goal still running holds it, swaps it, removes it): the dashboard refuses it
// as it refuses any other output it will not send, and audits the refusal as ui.denied.
// Over real HTTP against a real daemon; the open is made to fail by a real lease a process
// holds on the file (what a goal's task can take on a file it wrote), never by a mock.

import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { turn } from "../support/provider-server.js";
import { openUi, raw, signIn } from "./fixture.js";

const suite = useDaemonPerTest();
let holder: ChildProcessWithoutNullStreams | undefined;
afterEach(() => {
  holder?.kill("SIGKILL");
  holder = undefined;
});

/**
 * A write lease on `file` (fcntl F_SETLEASE, F_WRLCK), held until killed: while it is held,
 * another process's O_NONBLOCK open of the file fails at once with EWOULDBLOCK.
 */
async function holdLease(file: string): Promise<void> {
  const script = [
    "import fcntl, os, signal, sys, time",
    "signal.signal(signal.SIGIO, signal.SIG_IGN)",
    "fd = os.open(sys.argv[1], os.O_RDWR)",
    "fcntl.fcntl(fd, 1024, fcntl.F_WRLCK)",
    "print('leased', flush=True)",
    "time.sleep(120)",
  ].join("\n");
  const child = spawn("python3", ["-c", script, file]);
  holder = child;
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d) => String(d).includes("leased") && resolve());
    child.once("exit", (code) =>
      reject(new Error(`the lease holder ended (${code}) before it held the lease`)),
    );
  });
}

describe("an output file whose open fails after the listing found it", () => {
  it("is refused with 404 and audited as ui.denied, as every refused output is", async () => {
    const fx = await suite.start();
    const ui = await openUi(fx);
    const session = await signIn(ui);
    suite.server.script('manifest "writer"', [turn.text("done")]);
    const c = await fx.client();
    const { goal_id } = await c.call("goal.submit", { goal: "write", manifest: manifest("writer") });
    const g = await c.call("goal.wait", { goal_id, timeout_ms: 20_000 }, { timeoutMs: 25_000 });
    const file = join(g.output_dir, "report.md");
    writeFileSync(file, "# Report\n");
    const get = (path: string) => raw(ui.port, { path, headers: { Host: ui.host, ...session } });
    const path = `/api/goals/${goal_id}/outputs/report.md`;
    expect((await get(path)).status).toBe(200);

    await holdLease(file);
    const r = await get(path);
    expect(r.status).toBe(404);
    const { entries } = await c.call("audit.query", { kind: "ui.denied" });
    expect(entries.map((e) => e.payload)).toEqual([
      expect.objectContaining({ reason: "path", method: "GET", path }),
    ]);
  });
});
