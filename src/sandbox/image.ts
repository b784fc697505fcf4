// sandbox/image.ts — builds the sandbox image (`config.sandbox.image`) from the recipe in
// sandbox-image/ and the in-container executor. Two layers, each cached by a SHA-256 label
// of its recipe so that a rebuild happens only when the recipe changes:
//   base: Debian bookworm + packages.txt. From a registry (base.Dockerfile) when one
//         answers quickly, otherwise offline: debootstrap from the host's Debian mirror,
//         then `docker import` of the root filesystem (see debootstrap.ts).
//   top:  sandbox-image/Dockerfile FROM the base: user 1000, mount points, the executor
//         bundle, the Landlock helper (aido-landlock.c, compiled there) and the egress
//         relay (aido-relay.js).
// The executor is TypeScript (src/sandbox/executor/) bundled by esbuild into the one
// CommonJS file the image carries: at `npm run build` (scripts/postbuild.mjs, into dist/)
// and, when running from src/ (tsx, vitest), on demand here.
// Concurrent builds of the same recipe (several processes on one engine) wait on a lock.

import { createHash } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type Docker from "dockerode";
import type { Config } from "../config.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { buildRootfsImage } from "./debootstrap.js";
import { connectDocker, followBuild } from "./engine.js";

export const RECIPE_LABEL = "aido.recipe";
export const REGISTRY_BASE = "debian:bookworm-slim";
/** The Landlock helper's C source in sandbox-image/, compiled in the top layer. */
const HELPER_SOURCE = "aido-landlock.c";
/** The egress relay in sandbox-image/, copied next to the executor (see aido-relay.js). */
const RELAY_SOURCE = "aido-relay.js";

export interface EnsureImageOptions {
  onProgress?: (message: string) => void;
  /** Rebuild both layers even when the labels match. */
  force?: boolean;
  /** Debian mirror for the offline path; default: read from the host's apt sources. */
  mirror?: string;
  /** Skip the registry probe and build offline. */
  offline?: boolean;
  /** How long the registry probe (a pull of the base image) may take. */
  registryTimeoutMs?: number;
  docker?: Docker;
}

export interface EnsureImageResult {
  image: string;
  /** "cached": nothing built; otherwise how the base layer was obtained this time. */
  source: "cached" | "registry" | "offline" | "base-cached";
  recipeHash: string;
  durationMs: number;
}

export interface Recipe {
  dir: string;
  executorPath: string;
  packages: string[];
  baseHash: string;
  hash: string;
}

/** Options of the one esbuild call that makes the executor bundle (postbuild.mjs uses them too). */
export const EXECUTOR_BUNDLE_OPTIONS = {
  bundle: true,
  platform: "node",
  target: "node18",
  format: "cjs",
  legalComments: "none",
  logLevel: "silent",
} as const;

let bundled: string | undefined;

/**
 * The executor as the image carries it: in dist/, the bundle postbuild.mjs wrote next to
 * this module; from src/, bundled now with esbuild (a devDependency) into
 * <package>/.cache/executor.cjs, so a human sandbox can bind-mount it too.
 */
export function executorSourcePath(): string {
  const built = fileURLToPath(new URL("./executor/executor.cjs", import.meta.url));
  if (!import.meta.url.endsWith(".ts")) {
    if (existsSync(built)) return built;
    throw new AidoError(
      ErrorCode.sandboxUnavailable,
      `the executor bundle ${built} is missing: build with \`npm run build\` (tsc alone does not make it)`,
      { path: built },
    );
  }
  const entry = fileURLToPath(new URL("./executor/main.ts", import.meta.url));
  const root = join(dirname(entry), "..", "..", "..");
  const out = join(root, ".cache", "executor.cjs");
  if (bundled === undefined) {
    const esbuild = createRequire(import.meta.url)("esbuild") as typeof import("esbuild");
    // From the package's root, whatever the process's cwd: the bundle names its sources by
    // paths relative to it, and an `aido` run in a project folder made another bundle (and
    // recipe hash: the image rebuilt), written over .cache/ (refused to a user who does not
    // own it).
    const r = esbuild.buildSync({
      ...EXECUTOR_BUNDLE_OPTIONS,
      absWorkingDir: root,
      entryPoints: [entry],
      write: false,
    });
    bundled = r.outputFiles[0]?.text ?? "";
  }
  if (!existsSync(out) || readFileSync(out, "utf8") !== bundled) {
    mkdirSync(dirname(out), { recursive: true });
    const tmp = `${out}.${process.pid}.tmp`;
    writeFileSync(tmp, bundled);
    renameSync(tmp, out);
  }
  return out;
}

export function readRecipe(config: Pick<Config, "packageRoot">): Recipe {
  const dir = join(config.packageRoot, "sandbox-image");
  const executorPath = executorSourcePath();
  const read = (p: string): string => {
    try {
      return readFileSync(p, "utf8");
    } catch (e) {
      throw new AidoError(
        ErrorCode.sandboxUnavailable,
        `sandbox image recipe file missing: ${p}`,
        { path: p },
        { cause: e },
      );
    }
  };
  const packagesText = read(join(dir, "packages.txt"));
  const packages = packagesText
    .split("\n")
    .map((l) => l.replace(/#.*/, "").trim())
    .filter(Boolean);
  const sha = (...parts: string[]): string => {
    const h = createHash("sha256");
    for (const p of parts) h.update(`${Buffer.byteLength(p)}:${p}`);
    return h.digest("hex");
  };
  const baseHash = sha("base/v1", packages.join("\n"), read(join(dir, "base.Dockerfile")));
  const hash = sha(
    "top/v2",
    baseHash,
    read(join(dir, "Dockerfile")),
    read(executorPath),
    read(join(dir, HELPER_SOURCE)),
    read(join(dir, RELAY_SOURCE)),
  );
  return { dir, executorPath, packages, baseHash, hash };
}

async function imageLabel(docker: Docker, name: string): Promise<string | undefined> {
  try {
    const info = await docker.getImage(name).inspect();
    return info.Config?.Labels?.[RECIPE_LABEL] ?? "";
  } catch {
    return undefined;
  }
}

/** Build (or find) the sandbox image. A missing image is built on first need. */
export async function ensureImage(config: Config, opts: EnsureImageOptions = {}): Promise<EnsureImageResult> {
  const started = Date.now();
  const progress = opts.onProgress ?? (() => {});
  const docker = opts.docker ?? connectDocker();
  const recipe = readRecipe(config);
  const image = config.sandbox.image;
  if (!opts.force && (await imageLabel(docker, image)) === recipe.hash) {
    return { image, source: "cached", recipeHash: recipe.hash, durationMs: Date.now() - started };
  }
  return withBuildLock(recipe.hash, progress, async () => {
    if (!opts.force && (await imageLabel(docker, image)) === recipe.hash) {
      return { image, source: "cached" as const, recipeHash: recipe.hash, durationMs: Date.now() - started };
    }
    const baseTag = `aido-sandbox-base:${recipe.baseHash.slice(0, 16)}`;
    let source: EnsureImageResult["source"] = "base-cached";
    if (opts.force || (await imageLabel(docker, baseTag)) !== recipe.baseHash) {
      const viaRegistry =
        !opts.offline && (await registryAnswers(docker, opts.registryTimeoutMs ?? 8000, progress));
      if (viaRegistry) {
        progress(`building base layer ${baseTag} from ${REGISTRY_BASE}`);
        await buildFromDir(docker, recipe, "base.Dockerfile", baseTag, recipe.baseHash, {}, progress);
        source = "registry";
      } else {
        progress(`registry not reachable: building base layer ${baseTag} offline with debootstrap`);
        await buildRootfsImage(docker, {
          packages: recipe.packages,
          suite: "bookworm",
          tag: baseTag,
          labels: { [RECIPE_LABEL]: recipe.baseHash },
          ...(opts.mirror ? { mirror: opts.mirror } : {}),
          onProgress: progress,
        });
        source = "offline";
      }
    } else progress(`base layer ${baseTag} is up to date`);
    progress(`building ${image} on ${baseTag}`);
    await buildFromDir(docker, recipe, "Dockerfile", image, recipe.hash, { BASE: baseTag }, progress);
    progress(`built ${image} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return { image, source, recipeHash: recipe.hash, durationMs: Date.now() - started };
  });
}

/** True when the registry base is present or can be pulled within the time limit. */
async function registryAnswers(
  docker: Docker,
  timeoutMs: number,
  progress: (m: string) => void,
): Promise<boolean> {
  if ((await imageLabel(docker, REGISTRY_BASE)) !== undefined) return true;
  progress(`checking whether a registry serves ${REGISTRY_BASE} (up to ${timeoutMs} ms)`);
  try {
    const stream = (await withTimeout(docker.pull(REGISTRY_BASE), timeoutMs)) as NodeJS.ReadableStream & {
      destroy?: () => void;
    };
    try {
      await withTimeout(
        followBuild(stream, () => {}),
        Math.max(timeoutMs * 20, 120_000),
      );
    } finally {
      stream.destroy?.();
    }
    return true;
  } catch (e) {
    progress(`no registry: ${errorMessage(e).split("\n")[0]}`);
    return false;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

async function buildFromDir(
  docker: Docker,
  recipe: Recipe,
  dockerfile: string,
  tag: string,
  hash: string,
  buildargs: Record<string, string>,
  progress: (m: string) => void,
): Promise<void> {
  const ctx = mkdtempSync(join(tmpdir(), "aido-image-ctx-"));
  try {
    copyFileSync(join(recipe.dir, dockerfile), join(ctx, "Dockerfile"));
    copyFileSync(join(recipe.dir, "packages.txt"), join(ctx, "packages.txt"));
    copyFileSync(recipe.executorPath, join(ctx, "executor.js"));
    copyFileSync(join(recipe.dir, HELPER_SOURCE), join(ctx, HELPER_SOURCE));
    copyFileSync(join(recipe.dir, RELAY_SOURCE), join(ctx, RELAY_SOURCE));
    const stream = await docker.buildImage(
      { context: ctx, src: ["Dockerfile", "packages.txt", "executor.js", HELPER_SOURCE, RELAY_SOURCE] },
      { t: tag, labels: { [RECIPE_LABEL]: hash }, buildargs, rm: true },
    );
    await followBuild(stream, (line) => progress(line));
  } catch (e) {
    throw new AidoError(
      ErrorCode.sandboxUnavailable,
      `building ${tag} failed: ${errorMessage(e)}`,
      { tag },
      { cause: e },
    );
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}

/**
 * One build per recipe at a time on this machine: a lock folder in the temp dir holding
 * the builder's pid. A lock whose pid is gone is stale and taken over.
 */
async function withBuildLock<T>(
  hash: string,
  progress: (m: string) => void,
  fn: () => Promise<T>,
): Promise<T> {
  const lock = join(tmpdir(), `aido-image-build-${hash.slice(0, 16)}.lock`);
  let announced = false;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, "pid"), String(process.pid));
      break;
    } catch {
      if (lockIsStale(lock)) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (!announced) progress("another process is building this image; waiting for it");
      announced = true;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function lockIsStale(lock: string): boolean {
  try {
    const pid = Number(readFileSync(join(lock, "pid"), "utf8"));
    if (!Number.isInteger(pid) || pid <= 0) return Date.now() - statSync(lock).mtimeMs > 10_000;
    process.kill(pid, 0);
    return false;
  } catch (e) {
    // ESRCH: the builder is gone. A lock without a pid file yet is fresh unless old.
    if ((e as NodeJS.ErrnoException).code === "ESRCH") return true;
    if ((e as NodeJS.ErrnoException).code === "EPERM") return false;
    try {
      return Date.now() - statSync(lock).mtimeMs > 10_000;
    } catch {
      return true;
    }
  }
}
