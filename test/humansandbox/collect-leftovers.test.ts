// A collection killed mid-copy (SIGKILL of `aido run`) leaves its temp in the person's
// project: `.aido-output-<sandbox id>-…` next to where the output goes. The next collection
// of that sandbox, or its `destroy`, removes it, and nothing else: not the person's files
// of a like name, not a link of that very name (nor what it points at). Against the real
// engine, with a real kill of a real `aido run` process mid-copy.

import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeProject, type Project, startRun } from "./fixture.js";

let p: Project;
let outside: string;

beforeAll(async () => {
  p = await makeProject();
  outside = mkdtempSync(join(tmpdir(), "aido-hs-outside-"));
  writeFileSync(join(outside, "keep.txt"), "the host's file");
}, 120_000);
afterAll(async () => {
  await p?.cleanup();
  rmSync(outside, { recursive: true, force: true });
});

const temps = (dir: string) => readdirSync(dir).filter((n) => n.startsWith(".aido-output-"));

/**
 * `aido run` writing a 768 MiB output, killed (SIGKILL) as soon as its temp shows in the
 * project's results/: what it leaves there.
 */
async function killMidCopy(id: string): Promise<string[]> {
  const results = join(p.dir, "results");
  const { child, exited } = startRun(p, [
    "--sandbox",
    id,
    "sh",
    "-c",
    "dd if=/dev/zero of=/output/results/big.bin bs=1M count=768 2>/dev/null",
  ]);
  const deadline = Date.now() + 90_000;
  let seen: string[] = [];
  while (Date.now() < deadline && child.exitCode === null) {
    seen = existsSync(results) ? temps(results) : [];
    if (seen.length > 0) {
      child.kill("SIGKILL");
      break;
    }
    await new Promise((r) => setImmediate(r));
  }
  expect(await exited).toBe("SIGKILL");
  expect(seen, "the collection's temp was seen before the kill").not.toEqual([]);
  return temps(results);
}

describe("a collection killed mid-copy", () => {
  it("leaves a temp named as the sandbox's, which its next run removes, and nothing else", async () => {
    p.write("sb.yaml", "runtime: python:3.11\noutputs: [results/]\n");
    const up = await p.aido("sandbox", "up", "-f", "sb.yaml");
    expect(up.code, up.err.join("\n")).toBe(0);
    const id = up.out[0] as string;
    const left = await killMidCopy(id);
    expect(left).toEqual([
      expect.stringMatching(new RegExp(`^\\.aido-output-${id}-[0-9a-f]{8}-[0-9a-f]{8}$`)),
    ]);
    // The person's files of like names, and a link of the temp's very name to a host file.
    const results = join(p.dir, "results");
    writeFileSync(join(results, ".aido-output-notes"), "mine");
    writeFileSync(join(results, ".aido-output-0123456789ab-00000000-00000000"), "another sandbox's");
    const decoy = `${(left[0] as string).slice(0, -8)}ffffffff`;
    symlinkSync(join(outside, "keep.txt"), join(results, decoy));
    const run = await p.aido("run", "--sandbox", id, "true");
    expect(run.code, run.err.join("\n")).toBe(0);
    expect(temps(results).sort()).toEqual(
      [".aido-output-0123456789ab-00000000-00000000", ".aido-output-notes", decoy].sort(),
    );
    expect(readFileSync(join(outside, "keep.txt"), "utf8")).toBe("the host's file");
    expect(
      readdirSync(join(p.dir, ".aido", "sandboxes", id)).filter((n) => n.startsWith("collecting-")),
    ).toEqual([]);
    expect((await p.aido("sandbox", "destroy", id)).code).toBe(0);
    for (const n of temps(results)) rmSync(join(results, n));
  }, 240_000);

  it("leaves a temp that `aido sandbox destroy` removes", async () => {
    p.write("sb.yaml", "runtime: python:3.11\noutputs: [results/]\n");
    const up = await p.aido("sandbox", "up", "-f", "sb.yaml");
    expect(up.code, up.err.join("\n")).toBe(0);
    const id = up.out[0] as string;
    expect(await killMidCopy(id)).toHaveLength(1);
    const destroy = await p.aido("sandbox", "destroy", id);
    expect(destroy.code, destroy.err.join("\n")).toBe(0);
    expect(temps(join(p.dir, "results"))).toEqual([]);
    execFileSync("rm", ["-rf", join(p.dir, "results")]);
  }, 240_000);
});
