// `sudo aido …` and the project folder itself: one command resolves it once. The person can
// swap their project folder for a link to a folder of root's between two steps of a command;
// had a later step looked the folder up again, it took the project for root's own and
// skipped its checks (read a task file root must refuse, made the store in root's folder).
// Swaps are timed with the real engine's requests (test/support/engine-proxy.ts). Also the
// share folder `up` makes, and a folder of root's that others can write, whose .aido and
// .aido/sandboxes anyone could have made links. Run as root (as the tests are), the person
// uid 4242.

import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import type Docker from "dockerode";
import { describe, expect, it } from "vitest";
import { openSandboxNetwork } from "../../src/humansandbox/egress.js";
import { withProject } from "../../src/humansandbox/project.js";
import { runTask } from "../../src/humansandbox/run.js";
import { sandboxPaths, storePaths } from "../../src/humansandbox/state.js";
import { sandboxDir } from "../../src/humansandbox/store-dirs.js";
import { sandboxUp } from "../../src/humansandbox/up.js";
import { connectDocker } from "../../src/sandbox/engine.js";
import { fdPath } from "../../src/sandbox/untrusted-files.js";
import { engineProxy } from "../support/engine-proxy.js";
import { makeProject, PERSON, type Project, usePersonProject } from "./fixture.js";

const asRoot = process.getuid?.() === 0;
const SECRET = "root-only-secret-7731";
let p: Project;
let box: string;
usePersonProject({ spec: "runtime: python:3.11\n", boxPrefix: "aido-hs-rootproject-" }, (person) => {
  ({ p, box } = person);
});

/** A folder of root's (0755) only root can write, with root's `steal.sh` (0600) in it. */
function rootsFolder(): string {
  const r = mkdtempSync(join(box, "roots-"));
  chmodSync(r, 0o755);
  writeFileSync(join(r, "steal.sh"), `${SECRET}\n`, { mode: 0o600 });
  return r;
}

/** The person's swap: the project folder renamed away, a link to `to` at its name. */
function swapProject(to: string): void {
  renameSync(p.dir, `${p.dir}-moved`);
  symlinkSync(to, p.dir);
}

function putProjectBack(): void {
  unlinkSync(p.dir);
  renameSync(`${p.dir}-moved`, p.dir);
}

/**
 * `command` with the engine behind a proxy: the project is swapped for a link to `to` at the
 * first request whose line has `at` in it, and put back once the command is done. Resolves
 * with whether the swap happened and what the command resolved or threw.
 */
async function swappedAtRequest(
  at: string,
  to: string,
  command: (docker: Docker) => Promise<unknown>,
): Promise<{ swapped: boolean; outcome: unknown }> {
  let swapped = false;
  const engine = await engineProxy((line) => {
    if (!swapped && line.includes(at)) {
      swapped = true;
      swapProject(to);
    }
    return undefined;
  });
  let outcome: unknown;
  try {
    outcome = await command(engine.docker).catch((e: unknown) => e);
  } finally {
    await engine.close();
    if (swapped) putProjectBack();
  }
  return { swapped, outcome };
}

describe.runIf(asRoot)("root resolves the person's project folder once per command", () => {
  it("run stages no task file of a folder of root's the project was swapped for mid-run", async () => {
    const up = await p.aido("sandbox", "up", "-f", "sb.yaml");
    expect(up.code, up.err.join("\n")).toBe(0);
    const id = up.out[0] as string;
    const r = rootsFolder();
    // Swapped as soon as the run asks the engine for its container (after its first checks).
    const { swapped, outcome } = await swappedAtRequest("/containers/", r, (docker) =>
      runTask({ cwd: p.dir, config: p.home.config, sandboxId: id, task: ["steal.sh"], docker }),
    );
    expect(swapped).toBe(true);
    // Before: taken for root's own project, root's steal.sh was copied into work/ and run,
    // its first line in the run's errors.
    expect(existsSync(join(storePaths(p.dir, id).work, "steal.sh"))).toBe(false);
    expect(JSON.stringify(outcome) + String(outcome)).not.toContain(SECRET);
    const runs = storePaths(p.dir, id).runs;
    for (const run of readdirSync(runs))
      for (const f of readdirSync(join(runs, run)))
        expect(readFileSync(join(runs, run, f), "utf8"), `${run}/${f}`).not.toContain(SECRET);
    expect(readdirSync(r)).toEqual(["steal.sh"]);
  }, 180_000);

  it("up makes no store in a folder of root's the project was swapped for while it asked the engine", async () => {
    const r = rootsFolder();
    const { swapped, outcome } = await swappedAtRequest("/images/", r, (docker) =>
      sandboxUp({ cwd: p.dir, config: p.home.config, file: join(p.dir, "sb.yaml"), docker }),
    );
    expect(swapped).toBe(true);
    // Before: root made .aido/sandboxes/<id>/{runs,work,output,stream} in root's folder
    // (following links there), and gave work/ and output/ to the container's user.
    expect(readdirSync(r)).toEqual(["steal.sh"]);
    // Made in the project held open: the folders its path no longer reaches are bound to nothing
    // (the engine refuses a bind whose source is not there; one swapped in later is refused
    // before the start).
    expect(String(outcome)).toMatch(/bind source path does not exist|is no longer the sandbox's work folder/);
  }, 180_000);

  it("up opens the folder it runs in, not the path Node keeps for it (renamed, a link at its name)", async () => {
    const r = rootsFolder();
    const was = process.cwd();
    process.chdir(p.dir);
    let outcome: unknown;
    try {
      // The CLI reads process.cwd() as it starts (its config): Node keeps that path.
      expect(process.cwd()).toBe(p.dir);
      swapProject(r);
      try {
        outcome = await sandboxUp({
          cwd: process.cwd(),
          config: p.home.config,
          file: join(`${p.dir}-moved`, "sb.yaml"),
        }).catch((e: unknown) => e);
      } finally {
        putProjectBack();
      }
    } finally {
      process.chdir(was);
    }
    // Before: the path Node kept led to root's folder, taken for root's own project: the
    // store was made there (links followed) and the person's sandbox file read for root.
    expect(readdirSync(r)).toEqual(["steal.sh"]);
    // Made in the folder it runs in (the person's), bound by the path that no longer
    // leads there: nothing is started.
    expect(String(outcome)).toMatch(/bind source path does not exist|is no longer the sandbox's work folder/);
  }, 180_000);

  it("up's share folder: the network is made over no folder a link at the sandbox folder's name reaches", async () => {
    const up = await p.aido("sandbox", "up", "-f", "sb.yaml");
    expect(up.code, up.err.join("\n")).toBe(0);
    const id = up.out[0] as string;
    const root = storePaths(p.dir, id).root;
    const v = mkdtempSync(join(box, "victim-"));
    await withProject(p.dir, async (project) => {
      const held = sandboxDir(project, id);
      // The person's planted link: the sandbox folder renamed away, a link to root's folder there.
      renameSync(root, `${root}-moved`);
      symlinkSync(v, root);
      try {
        await expect(
          openSandboxNetwork(connectDocker(), p.home.config, sandboxPaths(project, id), fdPath(held)),
        ).rejects.toThrow(/egress (cannot be opened|is not a folder)/);
      } finally {
        unlinkSync(root);
        renameSync(`${root}-moved`, root);
      }
    });
    // Before: root made egress/ (0700, its own) in the folder linked to, and bound it into a relay.
    expect(readdirSync(v)).toEqual([]);
  }, 180_000);
});

describe.runIf(asRoot)("root reads no sandbox file at up but the project owner's own", () => {
  it("up reads no sandbox.yaml made a link to a file of root's, nor a file of root's -f names", async () => {
    const r = rootsFolder();
    const roots = join(r, "keys.yaml");
    writeFileSync(roots, `${SECRET}: 1\n`, { mode: 0o600 });
    writeFileSync(join(p.dir, "root.yaml"), `${SECRET}: 1\n`);
    const store = join(p.dir, ".aido", "sandboxes");
    const before = existsSync(store) ? readdirSync(store).length : 0;
    symlinkSync(roots, join(p.dir, "sandbox.yaml"));
    try {
      for (const [argv, why] of [
        [[], /cannot read sandbox file .*sandbox\.yaml: it is a link/],
        [["-f", roots], /cannot read sandbox file .*keys\.yaml: it is not the project owner's \(uid 0\)/],
        [
          ["-f", "root.yaml"],
          /cannot read sandbox file .*root\.yaml: it is not the project owner's \(uid 0\)/,
        ],
      ] as const) {
        const up = await p.aido("sandbox", "up", ...argv);
        // Before: read as root by its path, its parse error printed its lines (the key).
        expect([...up.out, ...up.err].join("\n"), argv.join(" ")).not.toContain(SECRET);
        expect(up.code, argv.join(" ")).not.toBe(0);
        expect(up.err.join("\n"), argv.join(" ")).toMatch(why);
      }
    } finally {
      unlinkSync(join(p.dir, "sandbox.yaml"));
      unlinkSync(join(p.dir, "root.yaml"));
    }
    // Nothing was made.
    expect(existsSync(store) ? readdirSync(store).length : 0).toBe(before);
    // The person's own sandbox.yaml, in the project, is read as before.
    writeFileSync(join(p.dir, "sandbox.yaml"), "runtime: python:3.11\nname: own-file\n");
    chownSync(join(p.dir, "sandbox.yaml"), PERSON, PERSON);
    try {
      const ok = await p.aido("sandbox", "up", "--json");
      expect(ok.code, ok.err.join("\n")).toBe(0);
      const made = ok.json<{ id: string; name: string }>();
      expect(made.name).toBe("own-file");
      expect((await p.aido("sandbox", "destroy", made.id)).code).toBe(0);
    } finally {
      unlinkSync(join(p.dir, "sandbox.yaml"));
    }
  }, 180_000);
});

describe.runIf(asRoot)("root in a folder of root's that others can write", () => {
  it("makes no store through a .aido or .aido/sandboxes anyone could have made a link there", async () => {
    const shared = await makeProject();
    try {
      chmodSync(shared.dir, 0o1777);
      shared.write("sb.yaml", "runtime: python:3.11\n");
      for (const link of [".aido", ".aido/sandboxes"]) {
        const v = mkdtempSync(join(box, "victim-"));
        if (link !== ".aido") mkdirSync(join(shared.dir, ".aido"));
        symlinkSync(v, join(shared.dir, link));
        const up = await shared.aido("sandbox", "up", "-f", "sb.yaml");
        // Before: taken for root's own store, followed: the store made in the folder linked to.
        expect(readdirSync(v), link).toEqual([]);
        expect(up.code, link).not.toBe(0);
        expect(up.err.join("\n"), link).toMatch(/is not a folder of the evidence store/);
        rmSync(join(shared.dir, ".aido"), { recursive: true, force: true });
      }
      // A real store there is used.
      const ok = await shared.aido("sandbox", "up", "-f", "sb.yaml");
      expect(ok.code, ok.err.join("\n")).toBe(0);
      expect((await shared.aido("sandbox", "destroy", ok.out[0] as string)).code).toBe(0);
    } finally {
      await shared.cleanup();
    }
  }, 180_000);
});
