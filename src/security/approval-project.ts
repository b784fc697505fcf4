// security/approval-project.ts — which project a standing answer was given in. Every
// goal's container mounts host folders at /workspace, /output and /inputs, and the same
// container path is another host file in another project: an Allow Always given for
// `/workspace/deploy.sh` while an agent worked on project A covered project B's deploy.sh
// too, with nobody asked. So an Allow Always grant is bound to the project of the call's
// goal as well as to its identity, tool and scope (approval-grants.ts signs it and `find`
// matches it), and every scope is bound, a web host or a spawn manifest too: whatever a
// goal's agents do (a host a command may send files to, a child that acts unasked within
// its grants) is done with that project's files.
//
// A project is the real host folder it was named by (an MCP session's `--workspace`, the
// folder a goal was submitted from), symlinks resolved, together with that folder's inode
// number: a link to the folder is the same project, a folder deleted and made anew at the
// same path (another checkout) or renamed is another one, and asks again. An identity that
// survives a rename (device and inode alone) was not chosen: inode numbers of deleted folders
// are reused by unrelated ones, device numbers change across mounts and reboots, and the
// human read a path. A goal given no project folder (the dashboard, a socket client that
// named none, an MCP session without --workspace, agent.spawn) is its own project: its
// folders are its own and no other goal's, so its grants cover it alone.

import { realpathSync, statSync } from "node:fs";
import { AidoError, ErrorCode } from "../errors.js";
import { inert } from "./terminal-text.js";

export interface ProjectBinding {
  /** Compared for equality, and signed in a grant: `folder:<inode>:<real path>` or `goal:<id>`. */
  key: string;
  /** What a human reads: "project /home/u/app" or "goal g_… only (it has no project folder)". */
  shown: string;
}

/** The project of a host folder: its real path and inode, read now. */
export function folderProject(path: string): ProjectBinding {
  let real: string;
  let ino: bigint;
  try {
    real = realpathSync(path);
    const st = statSync(real, { bigint: true });
    if (!st.isDirectory()) throw new Error("is not a folder");
    ino = st.ino;
  } catch (e) {
    throw new AidoError(
      ErrorCode.invalidInput,
      `workspace: ${path} cannot be a project folder: ${(e as Error).message}`,
      { field: "workspace", path },
    );
  }
  return { key: `folder:${ino}:${real}`, shown: `project ${inert(real)}` };
}

/** The project of a goal that was given no project folder: the goal alone. */
export function goalOnlyProject(goalId: string): ProjectBinding {
  return { key: `goal:${goalId}`, shown: `goal ${inert(goalId)} only (it has no project folder)` };
}

/** A stored binding (JSON) back, or undefined when there is none or it is not one. */
export function parseProject(text: string | null | undefined): ProjectBinding | undefined {
  if (text === null || text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as Partial<ProjectBinding>;
    if (typeof v.key === "string" && typeof v.shown === "string") return { key: v.key, shown: v.shown };
  } catch {
    // not JSON: no binding
  }
  return undefined;
}
