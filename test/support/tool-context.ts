// test/support/tool-context.ts — a ToolContext built the way the gate builds it: needs
// judged against real grants with the real matcher (grantsAllow), network checks answered
// and paths a running tool asks about answered from the same grants (no policy). Tests use
// it where the gate itself is not under test.

import { AidoError, ErrorCode } from "../../src/errors.js";
import { confinementFor } from "../../src/gate/confinement.js";
import { describeNeed } from "../../src/gate/needs.js";
import type { Need, NeedsContext, ToolContext, ToolDef } from "../../src/gate/types.js";
import type { SandboxHandle } from "../../src/sandbox/types.js";
import { type Grant, parseGrant } from "../../src/security/grants.js";
import { grantsAllow } from "../../src/security/narrowing.js";

export function allowNetworkFrom(grants: readonly Grant[]): NonNullable<ToolContext["allowNetwork"]> {
  return (host, port, opts) =>
    grantsAllow(opts?.literal ? grants.filter((g) => g.kind === "network" && g.host === host) : grants, {
      kind: "network",
      host,
      port,
    }) !== undefined;
}

/** needs() may read any file (for tests of a tool's needs where the grants are not under test). */
export const readsAnything: NeedsContext["readRefusal"] = () => undefined;

/** needs() may read what `grants` let it read, as the gate answers (without a policy). */
export function readRefusalFrom(grants: readonly Grant[]): NeedsContext["readRefusal"] {
  return (path) => {
    const need: Need = { kind: "file_read", path };
    return grantsAllow(grants, need)
      ? undefined
      : new AidoError(ErrorCode.capabilityDenied, `no capability grants ${describeNeed(need)}`, { need });
  };
}

/** A sandbox for host-side tools: any use of it is a bug the test must see. */
export const noSandbox: SandboxHandle = new Proxy({} as SandboxHandle, {
  get(_t, prop) {
    if (prop === "goalId") return "no-sandbox";
    if (prop === "then") return undefined;
    throw new Error(`host-side tool touched the sandbox (${String(prop)})`);
  },
});

export interface GatedCall {
  needs: Need[];
  ctx: ToolContext;
}

/**
 * What the gate does before run(): parse the input, work out needs, refuse the call if a
 * need is not granted. Returns the context run() gets (with the judged needs, and the
 * confinement the grants give when no operator rule denies anything).
 */
export async function judge<I>(
  tool: ToolDef<I>,
  raw: unknown,
  grantTexts: string[],
  base: Omit<ToolContext, "judged" | "allowNetwork" | "confinement">,
): Promise<{ input: I; ctx: ToolContext; needs: Need[] }> {
  const grants = grantTexts.map((g) => parseGrant(g));
  const input = tool.input.parse(raw);
  const needs = await tool.needs(input, { sandbox: base.sandbox, readRefusal: readRefusalFrom(grants) });
  for (const need of needs) {
    if (!grantsAllow(grants, need)) {
      throw new AidoError(ErrorCode.capabilityDenied, `denied: ${JSON.stringify(need)}`, { need });
    }
  }
  const confinement = confinementFor(
    grants,
    { deny: [], denyRead: [], denyWrite: [] },
    base.agentId,
    undefined,
  );
  const allowPath: NonNullable<ToolContext["allowPath"]> = (need) =>
    grantsAllow(grants, need) ? undefined : `no capability grants ${need.kind} on ${need.path}`;
  return {
    input,
    needs,
    ctx: { ...base, judged: needs, confinement, allowNetwork: allowNetworkFrom(grants), allowPath },
  };
}
