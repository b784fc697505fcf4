// test/support/tmux.ts — tmux for tests that need a real pseudo-terminal (live views
// redrawn in place, prompts answered by keystrokes): installed from Debian's archive when
// missing, and quoting for the command lines its windows run.

import { spawnSync } from "node:child_process";

/** tmux on this machine, installed from Debian's archive when missing (CI has none by hand). */
export function requireTmux(): void {
  if (spawnSync("tmux", ["-V"]).status === 0) return;
  const apt = spawnSync(
    "sh",
    ["-c", "apt-get install -y tmux || (apt-get update && apt-get install -y tmux)"],
    {
      stdio: "ignore",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    },
  );
  if (apt.status !== 0 || spawnSync("tmux", ["-V"]).status !== 0)
    throw new Error(
      "these tests need tmux (a real pseudo-terminal) and `apt-get install -y tmux` failed: install it",
    );
}

/** One shell word. */
export const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
