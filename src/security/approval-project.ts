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
// number and birth time: a link to the folder is the same project, a folder deleted and made
// anew at the same path (another checkout) or renamed is another one, and asks again. The
// inode number alone does not tell a new folder from the old: ext4 gives a folder made right
// after one was deleted the freed number (test/security/approval-project.test.ts); the birth
// time does (but for two folders made at one path within one clock tick; a filesystem that
// records none: the change time, so the folder's own entries changing asks again, never the
// reverse). An identity that survives a rename (device and
// inode alone) was not chosen: inode numbers of deleted folders are reused by unrelated ones,
// device numbers change across mounts and reboots, and the human read a path.
//
// Only an MCP session mounts its folder as /workspace (`folder:` keys, "project DIR"). A goal
// submitted with a folder runs in folders of its own: the folder names the goals it is one of
// (`submitted:` keys, "goals submitted from DIR"), so a grant given where /workspace was the
// folder itself never covers a goal whose /workspace a model filled (an MCP client's
// aido_submit names its manifest, so its identity, and the session's folder), nor the reverse.
// A goal given no project folder (the dashboard, a socket client that named none, an MCP
// session without --workspace, agent.spawn) is its own project: its folders are its own and
// no other goal's, so its grants cover it alone.
//
// Who submitted a goal is part of its project (`submitted_by`, kept on the goal's row). An MCP
// session's aido_submit names the manifest, so the identity, and the session's folder: a
// session's goal named `bootstrap` submitted from the user's folder was, to a grant, the user's
// own `bootstrap` goals, and a human's Allow Always given to the user's goals (egress to a host
// the session's grants do not reach, under a confirm rule) covered it with nobody asked, or the
// reverse. A goal a session submitted is bound to that session (`session:<id>:` before the key),
// so no answer crosses from one origin to another: not from the user's goals to a session's,
// not from a session's to the user's, nor from one session's to another's (each holds its own
// grants and its client's model writes its manifests).

import { realpathSync, statSync } from "node:fs";
import { AidoError, ErrorCode } from "../errors.js";
import { inert } from "./terminal-text.js";

export interface ProjectBinding {
  /**
   * Compared for equality, and signed in a grant: `folder:<inode>:<birth>:<real path>` (a
   * session's mounted folder), `submitted:<inode>:<birth>:<real path>` or `goal:<id>`.
   */
  key: string;
  /**
   * What a human reads: "project /home/u/app", "goals submitted from /home/u/app" or "goal g_…
   * only (it has no project folder)".
   */
  shown: string;
  /** Who submitted the goal when it was not the user: an MCP session (its id is in `key` too). */
  submitted_by?: SubmittedBy;
}

/** Who submitted a goal that the user did not submit themselves: an MCP session (goal.submit `session_id`). */
export interface SubmittedBy {
  kind: "mcp_session";
  session_id: string;
}

/** A goal submitted by `by` (none: by the user) is bound to it: its key and its words name the session. */
function boundTo(binding: ProjectBinding, by: SubmittedBy | undefined): ProjectBinding {
  if (by === undefined) return binding;
  return {
    key: `session:${by.session_id}:${binding.key}`,
    shown: `${binding.shown}, submitted by MCP session ${inert(by.session_id)}`,
    submitted_by: { kind: by.kind, session_id: by.session_id },
  };
}

/** The project of a host folder an MCP session mounts as /workspace: its real path, inode and birth, read now. */
export function folderProject(path: string): ProjectBinding {
  const { real, id } = folderIdentity(path);
  return { key: `folder:${id}:${real}`, shown: `project ${inert(real)}` };
}

/**
 * The project of a goal submitted with `workspace`: the goals submitted from that folder,
 * each with a /workspace of its own (never the folder itself, whose session grants it is not),
 * by `by` (none: the user).
 */
export function submittedProject(path: string, by?: SubmittedBy): ProjectBinding {
  const { real, id } = folderIdentity(path);
  return boundTo({ key: `submitted:${id}:${real}`, shown: `goals submitted from ${inert(real)}` }, by);
}

/** A folder's real path and `<inode>:<birth ns>` (the change time where no birth is recorded). */
function folderIdentity(path: string): { real: string; id: string } {
  try {
    const real = realpathSync(path);
    const st = statSync(real, { bigint: true });
    if (!st.isDirectory()) throw new Error("is not a folder");
    const born = st.birthtimeNs > 0n ? `b${st.birthtimeNs}` : `c${st.ctimeNs}`;
    return { real, id: `${st.ino}:${born}` };
  } catch (e) {
    throw new AidoError(
      ErrorCode.invalidInput,
      `workspace: ${inert(path)} cannot be a project folder: ${inert((e as Error).message)}`,
      { field: "workspace", path },
    );
  }
}

/**
 * The project of a session whose folder `opened` was read when it opened, as it is now. A
 * container mounts the folder by its path when it starts (the first call, or a fresh one
 * after a crash), so a folder renamed away and another (or a link) put at its path since is
 * what the session's next container sees: when the folder there now is not the one it opened
 * on, or is gone, the session is its own project until it is again (its calls ask), never
 * the project of the folder it opened on.
 */
export function sessionProject(goalId: string, path: string, opened: ProjectBinding): ProjectBinding {
  let now: string;
  try {
    now = folderProject(path).key;
  } catch (e) {
    now = (e as Error).message;
  }
  if (now === opened.key) return opened;
  return {
    key: `goal:${goalId}`,
    shown: `goal ${inert(goalId)} only (the folder at ${inert(path)} is not the one its session opened on)`,
  };
}

/**
 * The project of an MCP session's own pseudo-goal (the calls its client makes directly), as
 * `project` with the session named as who asks (`submitted_by`): its memories are the
 * session's own (memory/types.ts memoryIdentity) and every approval prompt shows the
 * session, not the user. The key is kept: a `folder:` key is a session's only (no goal of the
 * user's has one), so an Allow Always given to a session's call covers later sessions in the
 * same folder and never the user's goals; a `goal:` key is the pseudo-goal alone.
 */
export function sessionOwnProject(project: ProjectBinding, sessionId: string): ProjectBinding {
  return {
    key: project.key,
    shown: project.shown,
    submitted_by: { kind: "mcp_session", session_id: sessionId },
  };
}

/** The project of a goal that was given no project folder: the goal alone (submitted by `by`, none: the user). */
export function goalOnlyProject(goalId: string, by?: SubmittedBy): ProjectBinding {
  return boundTo(
    { key: `goal:${goalId}`, shown: `goal ${inert(goalId)} only (it has no project folder)` },
    by,
  );
}

/** A stored binding (JSON) back, or undefined when there is none or it is not one. */
export function parseProject(text: string | null | undefined): ProjectBinding | undefined {
  if (text === null || text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as Partial<ProjectBinding>;
    if (typeof v.key === "string" && typeof v.shown === "string") {
      const by = parseSubmittedBy(v.submitted_by);
      return by === undefined
        ? { key: v.key, shown: v.shown }
        : { key: v.key, shown: v.shown, submitted_by: by };
    }
  } catch {
    // not JSON: no binding
  }
  return undefined;
}

/** A stored `submitted_by` back, or undefined when there is none or it is not one. */
export function parseSubmittedBy(v: unknown): SubmittedBy | undefined {
  if (typeof v === "string") {
    try {
      return parseSubmittedBy(JSON.parse(v));
    } catch {
      return undefined;
    }
  }
  const by = v as Partial<SubmittedBy> | null | undefined;
  if (by?.kind === "mcp_session" && typeof by.session_id === "string") {
    return { kind: "mcp_session", session_id: by.session_id };
  }
  return undefined;
}
