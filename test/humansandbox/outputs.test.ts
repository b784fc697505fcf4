// Staging a task into a human sandbox, end to end against the real engine: a script that
// plants a symlink where the next task is staged, aimed at a host file.

import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeProject, type Project } from "./fixture.js";

let p: Project;

beforeAll(async () => {
  p = await makeProject();
  p.write("data/users.csv", "id,name\n1,ada\n2,linus\n");
  execFileSync("git", ["-C", p.dir, "add", "."]);
  execFileSync("git", ["-C", p.dir, "commit", "-qm", "start"]);
});
afterAll(async () => {
  await p?.cleanup();
});

describe("staging a task into a writable working folder", () => {
  it("never writes through a symlink a script left where the next task goes", async () => {
    const victim = join(p.dir, "victim.txt");
    writeFileSync(victim, "host file\n");
    p.write("sandbox.yaml", "permissions: { filesystem: readwrite }\n");
    const up = await p.aido("sandbox", "up", "--json");
    expect(up.code, up.err.join("\n")).toBe(0);
    const folder = join(p.dir, ".aido", "sandboxes", up.json<{ id: string }>().id);
    // A glob in the first segment gets no link, and the evidence says so.
    expect(readFileSync(join(folder, "events.log"), "utf8")).toContain(
      "output *.log has no link in /workspace",
    );
    const plant = await p.aido("run", "sh", "-c", `ln -s ${victim} /workspace/task.sh`);
    expect(plant.code, plant.err.join("\n")).toBe(0);
    p.write("task.sh", "echo staged and ran\n");
    const run = await p.aido("run", "task.sh");
    expect(run.code, run.err.join("\n")).toBe(0);
    expect(run.out).toEqual(["staged and ran"]);
    expect(readFileSync(victim, "utf8")).toBe("host file\n");
    expect((await p.aido("sandbox", "destroy")).code).toBe(0);
  });
});
