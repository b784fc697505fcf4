// sandbox/input-reader.ts — the reads of the MCP session that hands a goal its inputs
// (goal.submit `inputs_as`, sandbox/inputs.ts): the host folder bound as its /workspace and
// what it may read there. The daemon copies inputs with its own rights into a goal whose
// manifest the client's model chose, so every entry copied must be one the session itself
// may read: seen as its /workspace path, matched by a read glob and by no deny glob, exactly
// as its grep and file_list judge (sandbox/executor/grep.ts mayReadFile).

import { posix, relative, sep } from "node:path";
import { isWithin } from "../fs/within.js";
import { mayReadFile } from "./executor/grep.js";
import { WORKSPACE } from "./executor/realpath.js";
import type { ReadView } from "./types.js";

/** Its file_read grants less the operator's path rules (as /workspace paths), and the folder bound there. */
export interface InputReader extends ReadView {
  root: string;
}

/** undefined when the session may read the host path `real`; else the /workspace path it may not. */
export function unreadableBy(reader: InputReader, real: string): string | undefined {
  const rel = relative(reader.root, real);
  const seen = rel === "" ? WORKSPACE : posix.join(WORKSPACE, ...rel.split(sep));
  return isWithin(reader.root, real) && mayReadFile(reader, seen) ? undefined : seen;
}
