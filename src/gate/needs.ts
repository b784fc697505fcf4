// gate/needs.ts — how a Need reads in an error message or an approval prompt.

import type { Need } from "./types.js";

/** The `via` of the file_read need of a script an exec command runs (tools/exec-scripts.ts). */
export const SCRIPT_VIA = "a script the command runs";

export function describeNeed(need: Need): string {
  switch (need.kind) {
    case "tool":
      return `tool ${need.name}`;
    case "file_read":
    case "file_write":
      return `${need.kind} on ${need.path}${need.via ? ` (${need.via})` : ""}`;
    case "file_access":
      return `file_read or file_write on ${need.path}${need.via ? ` (${need.via})` : ""}`;
    case "exec":
      return `exec of "${need.argv.join(" ")}"`;
    case "network":
      return `network access to ${need.host}${need.port === 80 || need.port === 443 ? "" : ` port ${need.port}`}`;
    case "mcp":
      return `tool ${need.tool} of MCP server ${need.server}`;
    case "spawn_child":
      return `spawning "${need.name}"`;
  }
}
