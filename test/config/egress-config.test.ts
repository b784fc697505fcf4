// The egress block of config.yaml: parsed strictly (a bad name or address names the key
// and its line), defaults, and a project file that may only tighten it.

import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import { failure, useConfigFolders } from "./fixture.js";

describe("config: egress", () => {
  let home: string;
  const { load, operator, projectFile } = useConfigFolders((f) => ({ home } = f));

  it("has defaults, and reads every key", () => {
    expect(load().egress).toEqual({
      hosts: {},
      connectTimeoutMs: 10_000,
      idleTimeoutMs: 300_000,
      maxConnections: 64,
      maxConnectionsPerAgent: 16,
    });
    operator(
      "egress:\n  hosts:\n    pypi.internal: 10.0.0.7\n    v6.internal: 'fd00::7'\n  connect_timeout_ms: 500\n  idle_timeout_ms: 900\n  max_connections: 3\n  max_connections_per_agent: 2\n",
    );
    expect(load().egress).toEqual({
      hosts: { "pypi.internal": "10.0.0.7", "v6.internal": "fd00::7" },
      connectTimeoutMs: 500,
      idleTimeoutMs: 900,
      maxConnections: 3,
      maxConnectionsPerAgent: 2,
    });
  });

  it("refuses an address that is not one, naming the key and its line", () => {
    operator(
      "egress:\n  max_connections: 3\n  hosts:\n    pypi.internal: 10.0.0.7\n    bad.internal: example.com\n",
    );
    const e = failure(() => load());
    expect(e.code).toBe(ErrorCode.configInvalid);
    expect(e.message).toContain(`${join(home, "config.yaml")}:5`);
    expect(e.message).toContain("egress.hosts.bad.internal");
    expect(e.message).toContain('"example.com" is not an IP address');
  });

  it("refuses a name that is not a host name, and unknown keys", () => {
    operator("egress:\n  hosts:\n    'Bad_Name': 10.0.0.1\n");
    expect(failure(() => load()).message).toContain('"Bad_Name" is not a host name');
    operator("egress:\n  idle_timeout: 5\n");
    expect(failure(() => load()).message).toContain('unknown key "idle_timeout"');
    operator("egress:\n  max_connections: 0\n");
    expect(failure(() => load()).message).toContain("egress.max_connections");
  });

  it("lets a project file only lower the numbers", () => {
    operator("egress:\n  max_connections: 8\n");
    projectFile(
      "egress:\n  max_connections: 50\n  max_connections_per_agent: 99\n  idle_timeout_ms: 1000\n  connect_timeout_ms: 999999\n",
    );
    expect(load().egress).toMatchObject({
      maxConnections: 8,
      maxConnectionsPerAgent: 16,
      idleTimeoutMs: 1000,
      connectTimeoutMs: 10_000,
    });
  });

  it("never lets a project file point a name elsewhere", () => {
    projectFile("egress:\n  hosts:\n    pypi.org: 10.9.9.9\n");
    const e = failure(() => load());
    expect(e.message).toContain("egress.hosts can only be set in the operator's config");
  });
});
