// mcp/submit-inputs.ts — what `inputs` an MCP session may hand to a goal it submits
// (aido_submit). goal.submit copies `inputs` from the host with the daemon's rights, which is
// right for the person at the socket: they name their own files. An MCP session is a
// client's model, whose reach is its project folder (`--workspace`, its /workspace): passed
// through unchecked, its inputs were any host file the daemon could read (a user's
// ~/.ssh/id_rsa copied into the goal's /inputs, its content back in the goal's result). A
// session's inputs must lie in its project folder: a relative path is taken from there,
// every path is resolved (links included) and must stay inside it; the resolved path is what
// the daemon is given. A session without a project folder gives no inputs. Inside it, the
// session's reach is narrower still: its file_read grants less the operator's path rules
// (`path: /workspace/secrets/**`); the daemon holds every entry copied to those
// (`inputs_as`: the session's agent), or a goal whose manifest the model chose would read
// what its session may not.

import { realpathSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { isWithin } from "../fs/within.js";
import { RefusedHere } from "./daemon-tools.js";

/**
 * goal.submit's `inputs` (the host paths, resolved and checked to lie in the session's
 * workspace; refused naming inputs.N otherwise), `inputs_within` (the project folder: the
 * daemon checks each again, and once more on the entry it opens to copy, so a folder of the
 * project swapped for a link after this check, by a command the session runs, cannot lead
 * out of it) and `inputs_as` (the session's agent: every entry, at submit and as it is
 * copied, must be one the session may read).
 */
export function sessionInputs(
  inputs: readonly string[],
  session: { workspace: string | null; agent_id: string },
): { inputs: string[]; inputs_within: string; inputs_as: string } {
  const { workspace } = session;
  if (workspace === null) {
    throw new RefusedHere(
      "inputs: this session has no project folder to give inputs from (start the server with `aido mcp serve --workspace DIR`)",
    );
  }
  const root = realpathSync(workspace);
  const resolved = inputs.map((given, i) => {
    const named = isAbsolute(given) ? given : join(root, given);
    let real: string;
    try {
      real = realpathSync(named);
    } catch {
      throw new RefusedHere(
        `inputs.${i}: ${JSON.stringify(given)} does not exist in the session's project folder`,
      );
    }
    if (!isWithin(root, real)) {
      throw new RefusedHere(
        `inputs.${i}: ${JSON.stringify(given)} is outside the session's project folder (${root}); a session gives only its project's files`,
      );
    }
    return real;
  });
  return { inputs: resolved, inputs_within: root, inputs_as: session.agent_id };
}
