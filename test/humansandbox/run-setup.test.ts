// `aido run` setting a run up in a sandbox whose earlier tasks left things in the stream
// folder (mounted at /aido/stream, the task's to write): what will not go never fails the
// run, and a setup that fails anyway is recorded, with a signal that came meanwhile still
// ending `aido run` by that signal. Real engine, `aido` in-process or as its own process.

import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canMakeUndeletable, freezeFolder, makeUndeletable } from "../support/undeletable.js";
import { makeProject, type Project, startRun } from "./fixture.js";

let p: Project;
beforeAll(async () => {
  p = await makeProject();
}, 120_000);
afterAll(async () => {
  await p?.cleanup();
});

async function up(name: string): Promise<{ id: string; root: string }> {
  p.write("sandbox.yaml", `name: ${name}\nruntime: python:3.11\n`);
  const r = await p.aido("sandbox", "up", "--json");
  expect(r.code, r.err.join("\n")).toBe(0);
  const id = r.json<{ id: string }>().id;
  return { id, root: join(p.dir, ".aido", "sandboxes", id) };
}

const events = (root: string) =>
  readFileSync(join(root, "events.log"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe("what a task left at the next runs' stream names", () => {
  it("never stops a run: folders holding names that are not UTF-8", async () => {
    // A folder holding a file named "\xff" at each of the next names failed each run that
    // came to it (the removal "kept being written to"), with a stack trace.
    const { id } = await up("not-utf8");
    p.write(
      "plant.py",
      [
        "import os",
        "for n in range(2, 5):",
        "    d = f'/aido/stream/run-{n:03d}.out'.encode()",
        "    os.mkdir(d)",
        "    open(d + b'/\\xff', 'w').close()",
        "print('planted')",
      ].join("\n"),
    );
    const planted = await p.aido("run", "plant.py");
    expect(planted.out, planted.err.join("\n")).toEqual(["planted"]);
    for (const n of [2, 3, 4]) {
      const r = await p.aido("run", "--json", "sh", "-c", `echo run ${n}`);
      expect(r.code, r.err.join("\n")).toBe(0);
      expect(r.json<{ run_id: string }>().run_id).toBe(`run-00${n}`);
    }
    expect((await p.aido("sandbox", "destroy", id)).code).toBe(0);
  }, 120_000);

  it.skipIf(!canMakeUndeletable)(
    "never stops a run: what cannot be removed is left, the run writes elsewhere, and says so",
    async () => {
      // A leftover the host cannot remove at the next stream name failed every run that came
      // to that name; a task could plant one at each name to come.
      const { id, root } = await up("stuck-name");
      const r1 = await p.aido("run", "sh", "-c", "mkdir /aido/stream/run-002.out && echo made");
      expect(r1.out, r1.err.join("\n")).toEqual(["made"]);
      const release = makeUndeletable(join(root, "stream", "run-002.out", "stuck"));
      try {
        const r2 = await p.aido("run", "--json", "sh", "-c", "echo out; echo err >&2");
        expect(r2.code, r2.err.join("\n")).toBe(0);
        expect(r2.json<{ run_id: string }>().run_id).toBe("run-002");
        const warning = r2.err.find((l) => l.includes("stream/run-002.out could not be made"));
        expect(warning).toMatch(
          /^warning: stream\/run-002\.out could not be made \(cannot remove .*\); the run writes to stream\/run-002-[0-9a-f]{12}\.out instead/,
        );
        const logs = await p.aido("logs", "--json", "--run", "run-002");
        expect(logs.json<{ stdout: string; stderr: string }>()).toMatchObject({
          stdout: "out\n",
          stderr: "err\n",
        });
        expect(
          events(root).some((e) => e.event === "warning" && String(e.message).includes("run-002.out")),
        ).toBe(true);
        // The run's own stream files are gone; the leftover stays for destroy.
        expect(readdirSync(join(root, "stream"))).toEqual(["run-002.out"]);
      } finally {
        release();
      }
      expect((await p.aido("sandbox", "destroy", id)).code).toBe(0);
    },
    120_000,
  );
});

describe("the warnings about what a task left", () => {
  it.skipIf(!canMakeUndeletable)(
    "pass the env scrubber, as every line of the run does",
    async () => {
      // The name of what would not go is the task's to choose, and the task knows the env
      // values: a leftover named after one put it, unscrubbed, on the terminal and in
      // events.log (the evidence), where every other line of the run is scrubbed.
      const secret = "s3cr3t-value-4f9a2c";
      p.write(
        "sandbox.yaml",
        `name: scrubbed-warning\nruntime: python:3.11\nenv: { API_TOKEN: ${secret} }\n`,
      );
      const upped = await p.aido("sandbox", "up", "--json");
      expect(upped.code, upped.err.join("\n")).toBe(0);
      const id = upped.json<{ id: string }>().id;
      const root = join(p.dir, ".aido", "sandboxes", id);
      const r1 = await p.aido("run", "sh", "-c", "mkdir /aido/stream/run-002.out && echo made");
      expect(r1.out, r1.err.join("\n")).toEqual(["made"]);
      const release = makeUndeletable(join(root, "stream", "run-002.out", `x-${secret}`));
      try {
        const r2 = await p.aido("run", "sh", "-c", "echo ok");
        expect(r2.code, r2.err.join("\n")).toBe(0);
        const warning = r2.err.find((l) => l.includes("stream/run-002.out could not be made"));
        expect(warning).toContain("x-[env:API_TOKEN]");
        expect(r2.err.join("\n")).not.toContain(secret);
        expect(readFileSync(join(root, "events.log"), "utf8")).not.toContain(secret);
      } finally {
        release();
      }
      expect((await p.aido("sandbox", "destroy", id)).code).toBe(0);
    },
    120_000,
  );
});

describe("what a task leaves at its own run's stream names", () => {
  it.skipIf(!canMakeUndeletable)(
    "never costs the run its summary: the leftover stays, and the run says so",
    async () => {
      // The run's end removes its stream files; a task that put at its own name something the
      // host cannot remove (or a process it left kept filling) made that removal throw: `aido
      // run` ended 1 with an unexpected error, no summary.json, no run_completed, the outputs
      // never collected. A task could so erase the record of what it did.
      const { id, root } = await up("stuck-own-name");
      const own = join(root, "stream", "run-001.out");
      const run = p.aido(
        "run",
        "--json",
        "sh",
        "-c",
        "rm /aido/stream/run-001.out && mkdir /aido/stream/run-001.out && sleep 2 && echo done",
      );
      // What the task made there is made undeletable from the host, standing for whatever a
      // task can leave that will not go.
      let release: (() => void) | undefined;
      for (let i = 0; i < 1_000 && !release; i++) {
        if (lstatSync(own, { throwIfNoEntry: false })?.isDirectory())
          release = makeUndeletable(join(own, "stuck"));
        else await new Promise((r) => setTimeout(r, 5));
      }
      try {
        expect(release, "the task made its folder").toBeDefined();
        const r = await run;
        expect(r.err.join("\n")).not.toMatch(/unexpected error| {4}at /);
        expect(r.code, r.err.join("\n")).toBe(0);
        expect(r.json<{ run_id: string; exit_code: number }>()).toMatchObject({
          run_id: "run-001",
          exit_code: 0,
        });
        expect(r.err.find((l) => l.includes("stream/run-001.out"))).toMatch(
          /^warning: stream\/run-001\.out could not be removed at the run's end \(cannot remove .*\)/,
        );
        const summary = JSON.parse(readFileSync(join(root, "runs", "run-001", "summary.json"), "utf8"));
        expect(summary).toMatchObject({ run_id: "run-001", exit_code: 0, stdout_bytes: 5 });
        expect(readFileSync(join(root, "runs", "run-001", "stdout.log"), "utf8")).toBe("done\n");
        expect(events(root).at(-1)).toMatchObject({
          event: "run_completed",
          run_id: "run-001",
          exit_code: 0,
        });
        expect(readdirSync(join(root, "stream"))).toEqual(["run-001.out"]);
      } finally {
        release?.();
      }
      expect((await p.aido("sandbox", "destroy", id)).code).toBe(0);
    },
    120_000,
  );
});

describe("a setup that fails", () => {
  it("is recorded with why, and says what to do", async () => {
    const { id, root } = await up("setup-fails");
    mkdirSync(join(root, "stream", "run-001.out"));
    const thaw = freezeFolder(join(root, "stream"));
    try {
      const r = await p.aido("run", "echo", "never");
      expect(r.code).toBe(1);
      expect(r.err.join("\n")).toMatch(
        new RegExp(`run run-001 in sandbox ${id} could not be set up: .*aido sandbox destroy ${id}`),
      );
      expect(r.err.join("\n")).not.toMatch(/unexpected error| {4}at /);
      const summary = JSON.parse(readFileSync(join(root, "runs", "run-001", "summary.json"), "utf8"));
      expect(summary).toMatchObject({ run_id: "run-001", exit_code: null, stopped_by: null });
      expect(summary.error).toMatch(/^the run could not be set up; the task did not start: /);
      expect(events(root).at(-1)).toMatchObject({ event: "run_failed", run_id: "run-001" });
    } finally {
      thaw();
    }
    expect((await p.aido("sandbox", "destroy", id)).code).toBe(0);
  }, 120_000);

  it("still ends `aido run` by a stop signal that came during it, with a summary that says both", async () => {
    // The signal came during the synchronous setup, whose error then removed the listener
    // before the signal was handled: it was lost, `aido run` ended 1, and no summary was left.
    const { id, root } = await up("setup-fails-stopped");
    // A large folder at the run's stdout name (made from the host, for speed), in a stream
    // folder where nothing can be made: its removal takes a while, then the setup fails.
    for (let d = 0; d < 20; d++) {
      mkdirSync(join(root, "stream", "run-001.out", String(d)), { recursive: true });
      for (let f = 0; f < 100; f++)
        writeFileSync(join(root, "stream", "run-001.out", String(d), String(f)), "");
    }
    const thaw = freezeFolder(join(root, "stream"));
    const runDir = join(root, "runs", "run-001");
    try {
      const run = startRun(p, ["echo", "never"]);
      let stderr = "";
      run.child.stderr.on("data", (d) => {
        stderr += String(d);
      });
      await new Promise<void>((resolve, reject) => {
        const poll = setInterval(() => {
          if (existsSync(join(runDir, "run.json"))) {
            clearInterval(poll);
            resolve();
          }
        }, 2);
        run.child.once("exit", () => {
          clearInterval(poll);
          reject(new Error(`aido run ended before it wrote run.json: ${stderr}`));
        });
      });
      run.child.kill("SIGINT");
      expect(await run.exited, stderr).toBe("SIGINT");
      const summary = JSON.parse(readFileSync(join(runDir, "summary.json"), "utf8"));
      expect(summary).toMatchObject({
        run_id: "run-001",
        stopped_by: "signal",
        stop_signal: "SIGINT",
        exit_code: null,
      });
      expect(summary.error).toMatch(
        /^aido run was stopped by SIGINT while it set the run up, which failed: .*; the task did not start$/,
      );
      expect(events(root).at(-1)).toMatchObject({
        event: "run_stopped",
        run_id: "run-001",
        signal: "SIGINT",
      });
    } finally {
      thaw();
    }
    expect((await p.aido("sandbox", "destroy", id)).code).toBe(0);
  }, 120_000);
});
