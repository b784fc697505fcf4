// sandbox.landlock: off drops an exec's file rules, not its domain: on an egress network it
// still runs in one (its relay-port TCP rule, ABI >= 4; its reaper's signal scoping, ABI >= 6),
// and Landlock's ptrace scoping closes other domains' /proc/<pid>/environ, so a command still
// cannot read another call's proxy credentials. Without Landlock in the kernel (or below ABI
// 4 with it off) nothing does: docs/egress.md, docs/security.md. Measured on Linux 6.18.
// Otherwise as egress.test.ts (its own upstream network).

import { describe, expect, it } from "vitest";
import { UPSTREAM_NETS } from "../egress/docker-upstream.js";
import { useEgressSession } from "./egress-session.js";

const { start, scanEnvironments } = useEgressSession({
  ...UPSTREAM_NETS.mcpLandlockOff,
  config: (c) => {
    c.sandbox = { ...c.sandbox, landlock: "off" };
  },
});

describe("with sandbox.landlock: off on a kernel with Landlock (ABI >= 4)", () => {
  it("each exec is still a domain of its own (its TCP rule, its reaper): another exec's environment stays closed (guard)", async () => {
    await start();
    // Call B holds its own credentials in its environment while it sleeps; call A looks
    // through every process's environment for proxy credentials not its own.
    const { scan, holder } = await scanEnvironments();
    expect(scan).toMatch(/seen=[1-9]\d* foreign=0 mine=1/);
    expect(holder.isError ?? false).toBe(false);
  }, 180_000);
});
