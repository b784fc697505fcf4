// daemon/tools.ts — the tool set the daemon's Runtime runs with: the built-in file, exec,
// web and snapshot tools of tools/registry.ts. That list also carries memory_* and
// skill_read, which Runtime.open registers itself, so they are left out here rather than
// registered twice (Runtime refuses duplicate names). This adapter disappears once the
// kernel defaults RuntimeOptions.builtinTools to the tools registry.

import type { ToolDef } from "../gate/types.js";
import type { BuiltinToolDeps } from "../kernel/runtime.js";
import { createMemoryTools } from "../memory/tools.js";
import { createSkillTools } from "../skills/tools.js";
import { builtinTools } from "../tools/registry.js";

export function daemonBuiltinTools(deps: BuiltinToolDeps): ToolDef<unknown>[] {
  const registeredByRuntime = new Set([...createMemoryTools(), ...createSkillTools()].map((t) => t.name));
  return builtinTools(deps).filter((t) => !registeredByRuntime.has(t.name)) as ToolDef<unknown>[];
}
