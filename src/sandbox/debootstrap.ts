// sandbox/debootstrap.ts — the offline base layer: a Debian root filesystem made by
// debootstrap (minbase + the recipe's packages) from the host's own Debian mirror, then
// streamed as a tar into `docker import`. Needs root and the debootstrap package; says how
// to get both when they are missing. Progress is reported per debootstrap stage.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import type Docker from "dockerode";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { findAptMirror } from "./apt-mirror.js";
import { followBuild } from "./engine.js";

export interface RootfsBuild {
  packages: string[];
  suite: string;
  tag: string;
  labels: Record<string, string>;
  mirror?: string;
  onProgress: (message: string) => void;
}

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export function findDebootstrap(): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/sbin"];
  for (const d of dirs) {
    if (d && existsSync(join(d, "debootstrap"))) return join(d, "debootstrap");
  }
  return undefined;
}

export async function buildRootfsImage(docker: Docker, b: RootfsBuild): Promise<void> {
  const bin = findDebootstrap();
  if (!bin) {
    throw new AidoError(
      ErrorCode.sandboxUnavailable,
      "building the sandbox image offline needs debootstrap: run `apt-get install -y debootstrap` " +
        "(or `bash scripts/ensure-docker.sh`), or build where a registry serves debian:bookworm-slim",
      {},
    );
  }
  if (process.getuid?.() !== 0) {
    throw new AidoError(
      ErrorCode.sandboxUnavailable,
      "building the sandbox image offline runs debootstrap, which needs root: run `aido image build` as root once",
      {},
    );
  }
  const mirror = b.mirror ?? findAptMirror(b.suite);
  const [repo, tag] = b.tag.split(":") as [string, string];
  const rootfs = mkdtempSync(join(tmpdir(), "aido-rootfs-"));
  try {
    b.onProgress(`debootstrap ${b.suite} (minbase + ${b.packages.length} packages) from ${mirror}`);
    await runDebootstrap(
      bin,
      [
        "--variant=minbase",
        "--components=main",
        `--include=${b.packages.join(",")}`,
        b.suite,
        rootfs,
        mirror,
      ],
      b.onProgress,
    );
    for (const junk of ["var/cache/apt/archives", "var/lib/apt/lists"]) {
      rmSync(join(rootfs, junk), { recursive: true, force: true });
    }
    b.onProgress(`importing the root filesystem as ${b.tag}`);
    const tar = spawn("tar", ["-C", rootfs, "--numeric-owner", "-c", "."], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let tarErr = "";
    tar.stderr.on("data", (d: Buffer) => {
      tarErr = (tarErr + d.toString()).slice(-2000);
    });
    const changes = [
      `ENV PATH=${DEFAULT_PATH}`,
      ...Object.entries(b.labels).map(([k, v]) => `LABEL ${k}=${v}`),
    ];
    const out = (await docker.importImage(tar.stdout, {
      repo,
      tag,
      changes,
    })) as unknown as NodeJS.ReadableStream;
    await followBuild(out, () => {});
    const code: number | null = tar.exitCode ?? (await new Promise((r) => tar.on("close", r)));
    if (code !== 0) throw new Error(`tar exited with ${code}: ${tarErr}`);
    b.onProgress(`imported ${b.tag}`);
  } catch (e) {
    if (e instanceof AidoError) throw e;
    throw new AidoError(
      ErrorCode.sandboxUnavailable,
      `offline image build failed: ${errorMessage(e)}`,
      { tag: b.tag },
      { cause: e },
    );
  } finally {
    rmSync(rootfs, { recursive: true, force: true });
  }
}

/** debootstrap's per-package lines, folded into one stage each. */
const PER_PACKAGE_STAGES: Record<string, string> = {
  Retrieving: "downloading packages",
  Validating: "downloading packages",
  Extracting: "extracting packages",
  Unpacking: "unpacking packages",
  Configuring: "configuring packages",
};

/**
 * Run debootstrap, turning its "I: <Verb> <thing>" lines into one progress line per stage
 * (downloading, extracting, unpacking, configuring) plus a running count every 40 packages, so the ~2 minute build shows where it is without flooding.
 */
function runDebootstrap(bin: string, args: string[], progress: (m: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
    const tail: string[] = [];
    let stage = "";
    let count = 0;
    let buf = "";
    const onLine = (line: string): void => {
      tail.push(line);
      if (tail.length > 40) tail.shift();
      const m = /^([IEW]): (\S+)(.*)$/.exec(line);
      if (!m) return;
      if (m[1] !== "I") {
        progress(`debootstrap: ${line}`);
        return;
      }
      const verb = m[2]!;
      const perPackage = PER_PACKAGE_STAGES[verb];
      if (!perPackage) {
        progress(`debootstrap: ${verb}${m[3]}`);
        return;
      }
      if (perPackage !== stage) {
        if (count > 0) progress(`debootstrap: ${stage} done (${count})`);
        stage = perPackage;
        count = 0;
        progress(`debootstrap: ${perPackage}`);
      }
      if (verb !== "Validating") count++;
      if (verb !== "Validating" && count % 40 === 0) progress(`debootstrap: ${stage} … ${count}`);
    };
    const feed = (d: Buffer): void => {
      buf += d.toString("utf8");
      const lines = buf.split("\n");
      buf = lines.pop() ?? "";
      for (const l of lines) onLine(l);
    };
    child.stdout.on("data", feed);
    child.stderr.on("data", feed);
    child.on("error", reject);
    child.on("close", (code) => {
      if (buf) onLine(buf);
      if (code === 0) resolve();
      else reject(new Error(`debootstrap exited with ${code}:\n${tail.join("\n")}`));
    });
  });
}
