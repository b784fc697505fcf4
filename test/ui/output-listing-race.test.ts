// test/ui/output-listing-race.test.ts — a goal still running swaps a folder of its output
// for a link to a host folder while the dashboard walks it. The walk went by path: it saw a
// folder (lstat), then listed what was at that path by then (the link's target, a host
// folder) and stat'ed each name through it, so the listing named host files with their
// sizes, and the download's check (the file opened is the one listed, by device and inode)
// compared the host file with itself and served it. The download then opened the listed
// file by its path, following a link swapped in on the way: it served no host file (not the
// one listed), but it opened one, as the daemon's user (a FIFO's writer then went on; a
// device acts on being opened). Over real HTTP against a real daemon; the swapping goal is
// a process of its own, renaming as fast as it can.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { turn } from "../support/provider-server.js";
import { openUi, raw, signIn } from "./fixture.js";

const suite = useDaemonPerTest();

/** `a` in `dir`: a real folder, then (renamed in and out) a link to the host folder, again and again. */
const SWAPPER = `
const { renameSync } = require("node:fs");
process.chdir(process.argv[1]);
for (;;) {
  renameSync("a", "real");
  renameSync("link", "a");
  renameSync("a", "link");
  renameSync("real", "a");
}`;

describe("the output listing while a goal swaps a folder for a link to a host folder", () => {
  it("never lists nor serves a file of the host folder", async () => {
    const fx = await suite.start();
    suite.server.script('manifest "writer"', [turn.text("done")]);
    const c = await fx.client();
    const { goal_id } = await c.call("goal.submit", { goal: "write", manifest: manifest("writer") });
    const g = await c.call("goal.wait", { goal_id, timeout_ms: 20_000 }, { timeoutMs: 25_000 });
    const host = mkdtempSync(join(tmpdir(), "aido-host-"));
    writeFileSync(join(host, "host-secret.txt"), "the host's secret\n");
    mkdirSync(join(g.output_dir, "a"));
    writeFileSync(join(g.output_dir, "a", "report.md"), "# Report\n");
    symlinkSync(host, join(g.output_dir, "link"));
    const ui = await openUi(fx);
    const session = await signIn(ui);
    const get = (path: string) => raw(ui.port, { path, headers: { Host: ui.host, ...session } });
    let swapper: ChildProcess | undefined;
    try {
      swapper = spawn(process.execPath, ["-e", SWAPPER, g.output_dir], { stdio: "ignore" });
      const leaked: string[] = [];
      let walked = 0; // listings that went into the real folder while it was swapped
      const until = Date.now() + 8_000;
      while (Date.now() < until && leaked.length === 0) {
        const listing = await get(`/api/goals/${goal_id}/outputs`);
        const names = (JSON.parse(String(listing.body)) as { files: { name: string }[] }).files.map(
          (f) => f.name,
        );
        leaked.push(...names.filter((n) => n.includes("host-secret")));
        if (names.includes("a/report.md")) walked++;
        const file = await get(`/api/goals/${goal_id}/outputs/a/host-secret.txt`);
        if (file.status === 200) leaked.push(`served: ${String(file.body)}`);
      }
      expect(leaked).toEqual([]);
      expect(walked).toBeGreaterThan(0);
    } finally {
      swapper?.kill("SIGKILL");
      rmSync(host, { recursive: true, force: true });
    }
  }, 60_000);

  it("never opens a file of the host folder for a download", async () => {
    const fx = await suite.start();
    suite.server.script('manifest "writer"', [turn.text("done")]);
    const c = await fx.client();
    const { goal_id } = await c.call("goal.submit", { goal: "write", manifest: manifest("writer") });
    const g = await c.call("goal.wait", { goal_id, timeout_ms: 20_000 }, { timeoutMs: 25_000 });
    // In the host folder, under the listed file's name: a FIFO whose writer waits for a reader.
    const host = mkdtempSync(join(tmpdir(), "aido-host-"));
    execFileSync("mkfifo", [join(host, "report.md")]);
    mkdirSync(join(g.output_dir, "a"));
    writeFileSync(join(g.output_dir, "a", "report.md"), "# Report\n");
    symlinkSync(host, join(g.output_dir, "link"));
    const ui = await openUi(fx);
    const session = await signIn(ui);
    const get = (path: string) => raw(ui.port, { path, headers: { Host: ui.host, ...session } });
    let swapper: ChildProcess | undefined;
    const writer = spawn(
      process.execPath,
      [
        "-e",
        'require("node:fs").openSync(process.argv[1], "w"); process.stdout.write("opened")',
        join(host, "report.md"),
      ],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    let opened = "";
    writer.stdout?.on("data", (b: Buffer) => {
      opened += b.toString();
    });
    try {
      swapper = spawn(process.execPath, ["-e", SWAPPER, g.output_dir], { stdio: "ignore" });
      let served = 0; // downloads of the goal's own file while it was swapped
      const until = Date.now() + 6_000;
      while (Date.now() < until && opened === "") {
        const file = await get(`/api/goals/${goal_id}/outputs/a/report.md`);
        if (file.status === 200 && String(file.body) === "# Report\n") served++;
      }
      await new Promise((r) => setTimeout(r, 200)); // the writer's word, if it was let go
      expect(opened).toBe("");
      expect(served).toBeGreaterThan(0);
    } finally {
      swapper?.kill("SIGKILL");
      writer.kill("SIGKILL");
      rmSync(host, { recursive: true, force: true });
    }
  }, 60_000);
});
