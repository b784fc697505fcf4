// daemon/ui/files.ts — files into goals through the dashboard. POST /api/goals carries the
// input files in its JSON body. They are written into a fresh folder under $AIDO_HOME/inbox/
// (the one place goal.submit takes inputs from inside AIDO_HOME) and submitted with
// goal.submit, so they pass the same checks, caps and audit as `aido submit --input`. The
// folder is removed once the goal has copied them (goal.started), ended, or the submit was
// refused; at the next daemon start when this process ended first (sweepUploads). What a
// goal delivers goes out through outputs.ts.

import { randomBytes } from "node:crypto";
import { closeSync, constants, mkdirSync, openSync, readdirSync, realpathSync, writeSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { dirname, join } from "node:path";
import { z } from "zod";
import type { Runtime } from "../../kernel/runtime.js";
import { removeTreeNoFollow } from "../../sandbox/folders.js";
import { INBOX } from "../../sandbox/inputs.js";
import { ensurePrivateDir } from "../../security/private-home.js";
import { toRpcError } from "../errors.js";
import type { MethodRunner } from "../methods.js";
import { parseParams } from "../schemas.js";
import { sendError, sendInvalid, sendJson } from "./http.js";
import { DECIDED_BY, httpClient } from "./rpc.js";

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** Staging folders under inbox/: ui-<random>. */
const STAGING_PREFIX = "ui-";
const MAX_INPUTS = 256;

const UploadBody = z.strictObject({
  goal: z.string(),
  manifest: z.string().optional(),
  inputs: z
    .array(z.strictObject({ name: z.string(), content_base64: z.string().regex(BASE64, "must be base64") }))
    .max(MAX_INPUTS)
    .optional(),
});

interface UploadDeps {
  config: { home: string };
  rt: Runtime;
  run: MethodRunner;
  log(m: string): void;
}

/** Why `name` cannot be an input's name, or undefined when it can (a plain file name). */
export function badInputName(name: string): string | undefined {
  if (name === "" || name === "." || name === "..") return "must be a file name";
  if (Buffer.byteLength(name) > 255) return "longer than 255 bytes";
  if (name.includes("/")) return "must not contain /";
  if (/[\u0000-\u001f\u007f]/.test(name)) return "must not contain control characters";
  return undefined;
}

export async function submitWithUploads(body: unknown, deps: UploadDeps, res: ServerResponse): Promise<void> {
  const parsed = UploadBody.safeParse(body);
  if (!parsed.success) {
    return sendInvalid(res, parsed.error);
  }
  const { goal, manifest, inputs = [] } = parsed.data;
  const seen = new Set<string>();
  for (const [n, input] of inputs.entries()) {
    const why =
      badInputName(input.name) ?? (seen.has(input.name) ? "a second input of that name" : undefined);
    if (why) return sendError(res, 400, "invalid_input", `inputs.${n}.name: ${why}`);
    seen.add(input.name);
  }
  // The goal's own checks first (goal text, manifest), so a bad submit writes nothing.
  try {
    parseParams("goal.submit", { goal, ...(manifest !== undefined ? { manifest } : {}) });
  } catch (e) {
    return sendJson(res, 400, { error: toRpcError(e, deps.log) });
  }
  const staged = inputs.length > 0 ? stage(deps.config.home, inputs) : undefined;
  const params = {
    goal,
    ...(manifest !== undefined ? { manifest } : {}),
    ...(staged ? { inputs: staged.paths } : {}),
  };
  // Listening from before the submit: the goal may copy its inputs and start at once.
  const cleanup = staged ? removeOnceCopied(deps.rt, staged.dir) : undefined;
  let goalId: string;
  try {
    const r = (await deps.run("goal.submit", params, httpClient(res), () => {}, DECIDED_BY)) as {
      goal_id: string;
    };
    goalId = r.goal_id;
  } catch (e) {
    cleanup?.(undefined);
    return sendJson(res, 400, { error: toRpcError(e, deps.log) });
  }
  cleanup?.(goalId);
  sendJson(res, 200, { goal_id: goalId });
}

function stage(
  home: string,
  inputs: { name: string; content_base64: string }[],
): { dir: string; paths: string[] } {
  const inbox = join(home, INBOX);
  ensurePrivateDir(inbox);
  const dir = join(inbox, `${STAGING_PREFIX}${randomBytes(8).toString("hex")}`);
  mkdirSync(dir, { mode: 0o700 });
  try {
    const paths = inputs.map((input) => {
      const path = join(dir, input.name);
      const fd = openSync(
        path,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        0o600,
      );
      try {
        writeSync(fd, Buffer.from(input.content_base64, "base64"));
      } finally {
        closeSync(fd);
      }
      return path;
    });
    return { dir, paths };
  } catch (e) {
    removeTreeNoFollow(dir);
    throw e;
  }
}

/**
 * Remove the staging folder once its goal has copied it (goal.started comes after the
 * copy) or ended (a failed copy, a cancel while queued). Listens from before the submit;
 * the returned function names the goal (undefined: the submit was refused).
 */
function removeOnceCopied(rt: Runtime, dir: string): (goalId: string | undefined) => void {
  const past = new Set<string>();
  let goal: string | undefined;
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    off();
    removeTreeNoFollow(dir);
  };
  const off = rt.events.subscribe({ types: ["goal.started", "goal.finished"] }, (ev) => {
    if (ev.goalId === null) return;
    if (goal === undefined) past.add(ev.goalId);
    else if (ev.goalId === goal) finish();
  });
  return (goalId) => {
    goal = goalId;
    if (goalId === undefined || past.has(goalId)) finish();
  };
}

/**
 * At daemon start: staging folders a previous process left. One that a goal which has not
 * ended may still copy from (queued goals start as the Runtime opens) stays until that
 * goal has started or ended (as above); any other is removed.
 */
export function sweepUploads(home: string, rt: Runtime): void {
  let inbox: string;
  let names: string[];
  try {
    inbox = realpathSync(join(home, INBOX)); // the goals' rows hold resolved paths
    names = readdirSync(inbox).filter((n) => n.startsWith(STAGING_PREFIX));
  } catch {
    return; // no inbox yet
  }
  const waiting = new Map<string, string>(); // staging folder -> the goal that copies from it
  for (const [goalId, paths] of rt.goals.unfinishedInputs())
    for (const p of paths) if (dirname(p) !== p) waiting.set(dirname(p), goalId);
  for (const n of names) {
    const dir = join(inbox, n);
    const goalId = waiting.get(dir);
    if (goalId === undefined) removeTreeNoFollow(dir);
    else removeOnceCopied(rt, dir)(goalId);
  }
}
