// `sudo aido sandbox …` in a project a person owns: what aido makes there (collected
// outputs, the folders made for them, the evidence store) is the project owner's, not
// root's, or the person's editor and git could not rewrite or remove it. What existed
// before keeps its owner: a folder outputs go in, a file an output replaces, the person's
// other files. Run as root (as the tests are) against the real engine, the project owned
// by uid 4242.

import { execFileSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeProject, type Project } from "./fixture.js";

const asRoot = process.getuid?.() === 0;
const PERSON = 4242;
const OTHER = 5151;
let p: Project;

const owner = (rel: string) => {
  const st = lstatSync(join(p.dir, rel));
  return `${st.uid}:${st.gid}`;
};

beforeAll(async () => {
  p = await makeProject();
  chownSync(p.dir, PERSON, PERSON);
  chmodSync(p.dir, 0o755);
  mkdirSync(join(p.dir, "results"));
  writeFileSync(join(p.dir, "results", "prior.txt"), "the person's, as root made it");
  writeFileSync(join(p.dir, "old.csv"), "old");
  chownSync(join(p.dir, "old.csv"), OTHER, OTHER);
}, 120_000);
afterAll(async () => {
  await p?.cleanup();
});

describe.runIf(asRoot)("a sandbox run as root in a project owned by someone else", () => {
  it("gives what it makes to the project's owner, and leaves what was there with its own", async () => {
    p.write("sb.yaml", "runtime: python:3.11\noutputs: [results/, old.csv, made/deep/]\n");
    chownSync(join(p.dir, "sb.yaml"), PERSON, PERSON);
    // The project is the person's git repository: outputs.diff is made with
    // their rights (outputs-diff.ts), so git trusts it without SUDO_UID and reads only what they can.
    const asPerson = { uid: PERSON, gid: PERSON, env: { PATH: process.env.PATH, HOME: p.dir } };
    const git = (...args: string[]) =>
      execFileSync("git", ["-c", "user.name=p", "-c", "user.email=p@example.com", ...args], {
        cwd: p.dir,
        ...asPerson,
      });
    execFileSync("chown", ["-R", `${PERSON}:${PERSON}`, join(p.dir, ".git")]);
    git("add", "old.csv");
    git("commit", "-qm", "start");
    const up = await p.aido("sandbox", "up", "-f", "sb.yaml");
    expect(up.code, up.err.join("\n")).toBe(0);
    const id = up.out[0] as string;
    const run = await p.aido(
      "run",
      "--json",
      "sh",
      "-c",
      "echo new > /output/results/new.txt && echo replaced > /output/old.csv && echo x > /output/made/deep/x.txt",
    );
    expect(run.code, run.err.join("\n")).toBe(0);
    const s = run.json<{ run_id: string; outputs: { collected: string[] } }>();
    expect(s.outputs.collected.sort()).toEqual(["made/deep/x.txt", "old.csv", "results/new.txt"]);
    const person = `${PERSON}:${PERSON}`;
    // Made by the collection: the person's.
    for (const rel of ["results/new.txt", "made", "made/deep", "made/deep/x.txt"])
      expect(owner(rel), rel).toBe(person);
    // There before: their owners kept (a replaced file's too).
    expect(owner("results")).toBe("0:0");
    expect(owner("results/prior.txt")).toBe("0:0");
    expect(owner("old.csv")).toBe(`${OTHER}:${OTHER}`);
    expect(readFileSync(join(p.dir, "old.csv"), "utf8")).toBe("replaced\n");
    // The evidence store: the person's, all of it but the task's working folders.
    const sb = `.aido/sandboxes/${id}`;
    const runDir = `${sb}/runs/${s.run_id}`;
    for (const rel of [
      ".aido",
      ".aido/sandboxes",
      sb,
      `${sb}/sandbox.json`,
      `${sb}/events.log`,
      `${sb}/runs`,
      runDir,
    ])
      expect(owner(rel), rel).toBe(person);
    for (const name of readdirSync(join(p.dir, runDir)))
      expect(owner(`${runDir}/${name}`), name).toBe(person);
    const diff = readFileSync(join(p.dir, runDir, "outputs.diff"), "utf8");
    expect(diff).toContain("-old\n\\ No newline at end of file\n+replaced");
    expect(diff).toContain("+++ b/made/deep/x.txt");
    for (const rel of [`${sb}/work`, `${sb}/output`, `${sb}/stream`])
      expect(owner(rel), rel).toBe("1000:1000");
    const destroy = await p.aido("sandbox", "destroy", id);
    expect(destroy.code, destroy.err.join("\n")).toBe(0);
    expect(owner(`${sb}/events.log`)).toBe(person);
  }, 180_000);
});
