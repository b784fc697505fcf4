// sandbox/engine.ts — the connection to the Docker engine and the reading of its JSON
// progress streams (build, pull, import). dockerode finds the engine the way the docker
// CLI does; an engine that does not answer becomes one clear sandbox_unavailable error.

import Docker from "dockerode";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";

export function connectDocker(): Docker {
  return new Docker();
}

/** Fails with the command that starts an engine when none answers. */
export async function assertEngine(docker: Docker): Promise<void> {
  try {
    await docker.ping();
  } catch (e) {
    throw new AidoError(
      ErrorCode.sandboxUnavailable,
      `no Docker engine answers (${errorMessage(e)}): run \`bash scripts/ensure-docker.sh\` to install and start one`,
      {},
      { cause: e },
    );
  }
}

interface ProgressEvent {
  stream?: string;
  status?: string;
  progress?: string;
  id?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: unknown;
}

/**
 * Follow a newline-delimited JSON progress stream to its end. Each human-readable line
 * goes to onLine; an event carrying an error rejects (the engine reports build failures
 * in-band, with HTTP 200).
 */
export function followBuild(stream: NodeJS.ReadableStream, onLine: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = "";
    let failed: string | undefined;
    const handle = (line: string): void => {
      if (line.trim() === "") return;
      let ev: ProgressEvent;
      try {
        ev = JSON.parse(line) as ProgressEvent;
      } catch {
        onLine(line);
        return;
      }
      if (ev.error || ev.errorDetail?.message) {
        failed ??= ev.errorDetail?.message ?? ev.error;
        return;
      }
      const text = (ev.stream ?? (ev.status ? `${ev.status}${ev.id ? ` ${ev.id}` : ""}` : "")).trimEnd();
      if (text !== "" && !ev.progress) onLine(text);
    };
    stream.on("data", (chunk: Buffer) => {
      buf += chunk.toString("utf8");
      let nl = buf.indexOf("\n");
      while (nl >= 0) {
        handle(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        nl = buf.indexOf("\n");
      }
    });
    stream.on("error", (e: Error) => reject(e));
    stream.on("end", () => {
      handle(buf);
      if (failed !== undefined) reject(new Error(failed));
      else resolve();
    });
  });
}
