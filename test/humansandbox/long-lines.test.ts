// A line past 64 KiB is passed on in pieces (humansandbox/scrub.ts LineStream): the piece
// border fell where it fell, and an env value printed across it was blanked in neither piece,
// half of it in each, on the terminal and in the run's evidence. Through `aido run` in a
// real sandbox: the cut now goes before the value. A line is cut only where it was read
// without its end (a writer pausing mid-line, or the last line with no newline).

import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, expect, it } from "vitest";
import { MAX_LINE_CHARS } from "../../src/humansandbox/scrub.js";
import { makeProject, type Project } from "./fixture.js";

const KEY = "sk-live-0123456789abcdef";
let p: Project;

beforeAll(async () => {
  p = await makeProject();
  p.write("sandbox.yaml", `name: long-lines\nruntime: python:3.11\nenv: { API_KEY: ${KEY} }\n`);
  execFileSync("git", ["-C", p.dir, "add", "."]);
  execFileSync("git", ["-C", p.dir, "commit", "-qm", "start"]);
  const up = await p.aido("sandbox", "up");
  expect(up.code, up.err.join("\n")).toBe(0);
});
afterAll(async () => {
  await p?.cleanup();
});

it("blanks an env value a 70 KiB line holds across the 64 KiB cut, on the terminal and in the evidence", async () => {
  // A line is cut when it is read without its end: here it has none (the run's last line).
  const before = MAX_LINE_CHARS - 10; // the value's 11th character is the first past the cut
  const after = 70 * 1024 - before - KEY.length;
  const script = `import os, sys; sys.stdout.write("x" * ${before} + os.environ["API_KEY"] + "y" * ${after})`;
  const r = await p.aido("run", "python3", "-c", script);
  expect(r.code, r.err.join("\n")).toBe(0);
  const shown = `${"x".repeat(before)}[env:API_KEY]${"y".repeat(after)}`;
  expect(r.out.length).toBeGreaterThan(1); // it was cut
  expect(r.out.join("")).toBe(shown);
  const log = p.evidenceFiles().find((f) => f.path.endsWith("stdout.log"));
  expect(log?.text.replace(/\n/g, "")).toBe(shown);
  for (const f of p.evidenceFiles()) expect(f.text.replace(/\n/g, ""), f.path).not.toContain(KEY);
}, 120_000);
