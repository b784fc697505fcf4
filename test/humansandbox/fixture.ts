// test/humansandbox/fixture.ts — a throwaway project (a git repository with data files)
// and a temp AIDO_HOME, with `aido` run in-process from inside the project. cleanup()
// removes every container and network the project's sandboxes made, then the folders.
// usePersonProject() is the same project as `sudo aido` meets it: the person's, root's
// files in a folder of its own beside it.

import { execFileSync, spawn } from "node:child_process";
import {
  chmodSync,
  chownSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import Docker from "dockerode";
import { afterAll, beforeAll } from "vitest";
import type { CliIo } from "../../src/cli/command.js";
import { runCli } from "../../src/cli/main.js";
import { LABEL, projectLabelOf } from "../../src/humansandbox/container.js";
import { ensureImage } from "../../src/sandbox/image.js";
import { requireDocker } from "../support/docker.js";
import { makeTempHome, type TempHome } from "../support/home.js";

export interface CliResult {
  code: number;
  out: string[];
  err: string[];
  json<T = Record<string, unknown>>(): T;
}

export interface Project {
  dir: string;
  home: TempHome;
  aido(...argv: string[]): Promise<CliResult>;
  /** `aido ARGV` with these variables over the home's (another AIDO_HOME, say). */
  aidoWith(env: Record<string, string>, ...argv: string[]): Promise<CliResult>;
  write(rel: string, text: string): void;
  read(rel: string): string;
  /** Every evidence file under .aido/sandboxes (not the work/, output/, stream/, egress/ working folders), with its text. */
  evidenceFiles(): Array<{ path: string; text: string }>;
  cleanup(): Promise<void>;
}

export async function makeProject(): Promise<Project> {
  requireDocker();
  const home = makeTempHome();
  await ensureImage(home.config);
  const dir = mkdtempSync(join(tmpdir(), "aido-hs-project-"));
  const git = (...a: string[]) => execFileSync("git", ["-C", dir, ...a], { stdio: "pipe" });
  git("init", "-q");
  git("config", "user.email", "t@example.invalid");
  git("config", "user.name", "t");
  const project: Project = {
    dir,
    home,
    aido: (...argv) => project.aidoWith({}, ...argv),
    async aidoWith(env, ...argv) {
      const out: string[] = [];
      const err: string[] = [];
      const io: CliIo = { out: (l) => out.push(l), err: (l) => err.push(l), interactive: false };
      const before = process.cwd();
      process.chdir(dir);
      try {
        const code = await runCli(argv, io, { ...home.env, ...env });
        return { code, out, err, json: <T>() => JSON.parse(out.join("\n")) as T };
      } finally {
        process.chdir(before);
      }
    },
    write(rel, text) {
      execFileSync("mkdir", ["-p", join(dir, rel, "..")]);
      writeFileSync(join(dir, rel), text);
    },
    read: (rel) => readFileSync(join(dir, rel), "utf8"),
    evidenceFiles() {
      const out: Array<{ path: string; text: string }> = [];
      const walk = (p: string) => {
        for (const n of readdirSync(p)) {
          const q = join(p, n);
          const st = statSync(q, { throwIfNoEntry: false });
          if (!st) continue;
          if (st.isDirectory()) {
            if (!["work", "output", "stream", "egress"].includes(n)) walk(q);
          } else out.push({ path: q, text: readFileSync(q, "utf8") });
        }
      };
      walk(join(dir, ".aido", "sandboxes"));
      return out;
    },
    async cleanup() {
      const docker = new Docker();
      const list = await docker.listContainers({
        all: true,
        filters: { label: [`${LABEL.project}=${projectLabelOf(dir)}`] },
      });
      for (const c of list) await docker.getContainer(c.Id).remove({ force: true });
      // A host list's internal networks (their relays went with the containers above).
      const nets = await docker.listNetworks({
        filters: { label: [`${LABEL.project}=${projectLabelOf(dir)}`] },
      });
      for (const n of nets) await docker.getNetwork(n.Id).remove();
      rmSync(dir, { recursive: true, force: true });
      home.cleanup();
    },
  };
  return project;
}

/** `aido run ARGV` as its own process, as a person runs it; `exited` has the signal that ended it. */
export function startRun(p: Project, argv: string[]) {
  return startAido(p, ["run", ...argv]);
}

/** `aido ARGV` as its own process (one that may hang is then no hang of the test's). */
export function startAido(p: Project, argv: string[]) {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
  const child = spawn(process.execPath, ["--import", tsx, join(process.cwd(), "src/cli/main.ts"), ...argv], {
    cwd: p.dir,
    env: { ...process.env, ...p.home.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, s) => resolve(s)));
  return { child, exited };
}

/** The person whose project root works in, in the tests run as root (`sudo aido`). */
export const PERSON = 4242;

export interface PersonProject {
  p: Project;
  /** Root's folder outside the project (0700, from mkdtemp): what the person must never reach. */
  box: string;
}

/**
 * The file's project, made before its first test and removed after its last: the person's
 * (PERSON owns the folder, 0755, and its sandbox file sb.yaml, `spec`), with root's `files`
 * in it and, in `box`, root's `secret` file (0600) when one is given.
 */
export function usePersonProject(
  opts: { spec: string; boxPrefix: string; files?: Record<string, string>; secret?: string },
  made: (person: PersonProject) => void,
): void {
  let p: Project | undefined;
  let box: string | undefined;
  beforeAll(async () => {
    p = await makeProject();
    chownSync(p.dir, PERSON, PERSON);
    chmodSync(p.dir, 0o755);
    p.write("sb.yaml", opts.spec);
    chownSync(join(p.dir, "sb.yaml"), PERSON, PERSON);
    for (const [rel, text] of Object.entries(opts.files ?? {})) p.write(rel, text);
    box = mkdtempSync(join(tmpdir(), opts.boxPrefix));
    if (opts.secret !== undefined) writeFileSync(join(box, "secret"), opts.secret, { mode: 0o600 });
    made({ p, box });
  }, 120_000);
  afterAll(async () => {
    await p?.cleanup();
    if (box) rmSync(box, { recursive: true, force: true });
  });
}
