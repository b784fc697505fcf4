// gate/argument-depth.ts — how deep a tool call's arguments may nest, and how that is measured.
// Arguments come from a model, a socket caller or an MCP client, and everything downstream
// that walks them recursively (zod, the audit's canonical JSON, the approval scope,
// JSON.stringify on the way back to a provider) has a stack. A value nested thousands deep
// parses fine (JSON.parse is iterative) and then overflows one of those walks, which fails
// closed but says nothing useful ("audit_failed"). So the gate refuses it first, at the
// schema stage, with the depth; nothing here recurses.

/** How deep a call's arguments may nest: the arguments object itself is level 1. */
export const MAX_ARGUMENT_DEPTH = 64;

/**
 * True when `value` nests deeper than `max` levels (an object or array is one level, a
 * scalar none). A walk bounded by `max`, so it also ends on a cyclic value.
 */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [v, depth] = top;
    if (v === null || typeof v !== "object") continue;
    if (depth > max) return true;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/**
 * Why `input` cannot be taken as the arguments of `tool` for its depth (the gate's schema
 * stage, and the MCP face before it forwards them); undefined when it nests no deeper than
 * MAX_ARGUMENT_DEPTH. The reason carries the depth, never the value.
 */
export function argumentDepthRefusal(tool: string, input: unknown): string | undefined {
  if (!nestsDeeperThan(input, MAX_ARGUMENT_DEPTH)) return undefined;
  const depth = nestingDepth(input);
  const how = depth === Number.POSITIVE_INFINITY ? "they contain a cycle" : `they nest ${depth}`;
  return `invalid input for ${tool}: arguments nest deeper than ${MAX_ARGUMENT_DEPTH} levels (${how})`;
}

/**
 * How many levels `value` nests (what a refusal reports, so the audit records a number and
 * not the value); Infinity for a cyclic value. Iterative: a value 100,000 levels deep is
 * measured without a stack to overflow.
 */
function nestingDepth(value: unknown): number {
  let deepest = 0;
  const ancestors = new Set<object>();
  const stack: ({ value: unknown; depth: number } | { leave: object })[] = [{ value, depth: 1 }];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    if ("leave" in top) {
      ancestors.delete(top.leave);
      continue;
    }
    const v = top.value;
    if (v === null || typeof v !== "object") continue;
    if (ancestors.has(v)) return Number.POSITIVE_INFINITY;
    if (top.depth > deepest) deepest = top.depth;
    ancestors.add(v);
    stack.push({ leave: v });
    for (const child of Object.values(v)) stack.push({ value: child, depth: top.depth + 1 });
  }
  return deepest;
}
