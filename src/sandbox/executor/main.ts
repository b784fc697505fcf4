// sandbox/executor/main.ts — the long-lived program inside a goal's container that carries
// out every built-in tool call, so that a call costs a frame on an open stream instead of
// a `docker exec` (~100 ms). This file is the entry point of the bundle the image carries
// at /opt/aido/executor.js (esbuild, CommonJS, Debian bookworm's Node 18; see image.ts);
// the host starts it with one `docker exec` session and speaks protocol.ts to it.
//
// The session secret arrives as the first frame on stdin. Until it has, nothing else is
// read; afterwards a frame without it, an oversized or a malformed one ends the executor
// (and with it every command it runs): whoever wrote it is not the host.
// grep runs in a worker thread of this same file, so a pathological regex can be stopped.

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { systemRules } from "./confinement.js";
import { type ExecEnvironment, HELPER, mountedSkills, opExec } from "./exec.js";
import { opEdit, opList, opRead, opStat, opWrite } from "./files.js";
import { type GrepArgs, grepArgs, grepWork } from "./grep.js";
import { Running } from "./lifetime.js";
import { errorBody, fail, OpError } from "./op-error.js";
import {
  encodeFrame,
  FrameDecoder,
  FrameError,
  MAX_FRAME_TO_EXECUTOR,
  MAX_FRAME_TO_HOST,
  openFrame,
  PROTOCOL_VERSION,
  parseRequest,
  type Request,
  SECRET_BYTES,
} from "./protocol.js";
import { realpathOf } from "./realpath.js";

const GREP_TIMEOUT_MS = 30_000;

function landlockAbi(): number {
  const r = spawnSync(HELPER, ["--abi"], { encoding: "utf8", timeout: 5000 });
  const abi = Number(r.stdout?.trim());
  return r.status === 0 && Number.isInteger(abi) && abi >= 0 ? abi : 0;
}

function opGrep(a: Record<string, unknown>): Promise<unknown> {
  const args = grepArgs(a);
  const timeoutMs = typeof a.timeoutMs === "number" && a.timeoutMs > 0 ? a.timeoutMs : GREP_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const worker = new Worker(__filename, { workerData: args });
    const timer = setTimeout(() => {
      void worker.terminate();
      reject(new OpError("timeout", `grep took longer than ${timeoutMs} ms and was stopped`));
    }, timeoutMs);
    worker.once(
      "message",
      (m: { ok: boolean; result?: unknown; error?: { code: string; message: string } }) => {
        clearTimeout(timer);
        void worker.terminate();
        if (m.ok) resolve(m.result);
        else
          reject(
            new OpError((m.error?.code ?? "io_error") as OpError["code"], m.error?.message ?? "grep failed"),
          );
      },
    );
    worker.once("error", (e) => {
      clearTimeout(timer);
      reject(new OpError("io_error", `grep failed: ${e.message}`));
    });
  });
}

type Op = (args: Record<string, unknown>, id: number) => unknown;

function operations(env: ExecEnvironment, running: Running): Record<string, Op> {
  return {
    ping: () => ({ pong: true, pid: process.pid }),
    exec: (a, id) => opExec(a, id, env, running),
    cancel: (a) => {
      if (typeof a.id !== "number") fail("invalid_input", "cancel needs the id of the call");
      return { cancelled: running.stop(a.id, "cancel") };
    },
    read: opRead,
    write: opWrite,
    edit: opEdit,
    list: opList,
    stat: opStat,
    grep: opGrep,
    realpath: (a) => realpathOf(a.path),
  };
}

function main(): void {
  let secret: Buffer | undefined;
  const running = new Running();
  const helper = existsSync(HELPER);
  const abi = helper ? landlockAbi() : 0;
  const env: ExecEnvironment = {
    helper,
    landlockAbi: abi,
    reaper: abi >= 6,
    systemRules: systemRules(),
    mountedSkills: mountedSkills(),
  };
  const ops = operations(env, running);
  let quitting = false;
  const send = (body: unknown) => {
    if (!secret || quitting) return;
    let frame: Buffer;
    try {
      frame = encodeFrame(secret, body, MAX_FRAME_TO_HOST);
    } catch (e) {
      const id = (body as { id: number }).id;
      frame = encodeFrame(secret, { id, ok: false, error: errorBody(e) }, MAX_FRAME_TO_HOST);
    }
    process.stdout.write(frame);
  };
  const quit = (why: string) => {
    if (quitting) return;
    quitting = true;
    process.stderr.write(`executor: ${why}; exiting\n`);
    void running.stopAll().finally(() => process.exit(2));
  };
  const handle = async (req: Request) => {
    const op = ops[req.op];
    try {
      if (!op) fail("invalid_input", `unknown op ${JSON.stringify(req.op)}`);
      const result = await op(req.args, req.id);
      send({ id: req.id, ok: true, result: result === undefined ? null : result });
    } catch (e) {
      send({ id: req.id, ok: false, error: errorBody(e) });
    }
  };
  const decoder = new FrameDecoder(MAX_FRAME_TO_EXECUTOR, (payload) => {
    if (!secret) {
      if (payload.length !== SECRET_BYTES)
        throw new FrameError("malformed", "the first frame must be the secret");
      secret = Buffer.from(payload);
      send({
        id: 0,
        ok: true,
        result: {
          hello: "aido-executor",
          version: PROTOCOL_VERSION,
          pid: process.pid,
          landlockAbi: env.landlockAbi,
        },
      });
      return;
    }
    void handle(parseRequest(openFrame(secret, payload)));
  });
  process.stdin.on("data", (chunk: Buffer) => {
    if (quitting) return;
    try {
      decoder.push(chunk);
    } catch (e) {
      quit(e instanceof FrameError ? `${e.problem} frame from the host: ${e.message}` : String(e));
    }
  });
  // The host went away: take every running command with us.
  process.stdin.on("end", () => {
    quitting = true;
    void running.stopAll().finally(() => process.exit(0));
  });
  process.on("uncaughtException", (e) => {
    process.stderr.write(`executor: ${e?.stack ? e.stack : String(e)}\n`);
  });
}

function grepWorker(): void {
  try {
    parentPort?.postMessage({ ok: true, result: grepWork(workerData as GrepArgs) });
  } catch (e) {
    parentPort?.postMessage({ ok: false, error: errorBody(e) });
  }
}

if (isMainThread) main();
else grepWorker();
