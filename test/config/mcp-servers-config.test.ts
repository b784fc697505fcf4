// config `mcp_servers`: the operator declares external MCP servers (tools/mcp/); strict, every
// key checked and named with its line; header values are environment variable NAMES; a
// project's .aido/config.yaml can only keep a subset, restated exactly.

import { describe, expect, it } from "vitest";
import { failure, useConfigFolders } from "./fixture.js";

describe("config mcp_servers", () => {
  let home: string;
  let project: string;
  const { load, operator, projectFile } = useConfigFolders((f) => ({ home, project } = f));

  const GITHUB = [
    "mcp_servers:",
    "  github:",
    "    url: https://mcp.example.com/mcp",
    "    headers: { Authorization: GITHUB_MCP_TOKEN }",
    "    read_only_tools: [list_*, get_issue]",
    "    timeout_ms: 5000",
    "  docs:",
    "    url: http://127.0.0.1:9000/mcp",
    "",
  ].join("\n");

  it("reads a remote server: url, headers by variable name, read-only tools, timeout; the header's value only on demand", () => {
    operator(GITHUB);
    const c = load({ GITHUB_MCP_TOKEN: "ghp_x" });
    expect(c.mcp.servers.github).toEqual({
      name: "github",
      transport: "http",
      url: "https://mcp.example.com/mcp",
      headers: { Authorization: "GITHUB_MCP_TOKEN" },
      readOnlyTools: ["list_*", "get_issue"],
      timeoutMs: 5000,
    });
    expect(c.mcp.servers.docs).toMatchObject({ headers: {}, readOnlyTools: [], timeoutMs: 30_000 });
    expect(c.mcp.headerValue("GITHUB_MCP_TOKEN")).toBe("ghp_x");
    expect(JSON.stringify(c)).not.toContain("ghp_x");
  });

  it("reads a stdio server: argv, image, literal env, workspace mode (default none), read-only mounts", () => {
    operator(
      [
        "mcp_servers:",
        "  memory:",
        "    command: [node, /opt/mcp/server-memory/dist/index.js]",
        "    image: aido-sandbox:latest",
        "    env: { MEMORY_FILE_PATH: /tmp/memory.json }",
        "    workspace: ro",
        `    mounts: [{ source: ${project}, target: /opt/mcp }]`,
        "  plain:",
        "    command: [mcp-server]",
        "",
      ].join("\n"),
    );
    const c = load();
    expect(c.mcp.servers.memory).toEqual({
      name: "memory",
      transport: "stdio",
      command: ["node", "/opt/mcp/server-memory/dist/index.js"],
      image: "aido-sandbox:latest",
      env: { MEMORY_FILE_PATH: "/tmp/memory.json" },
      workspace: "ro",
      mounts: [{ source: project, target: "/opt/mcp" }],
      network: [],
      readOnlyTools: [],
      timeoutMs: 30_000,
    });
    expect(c.mcp.servers.plain).toMatchObject({ workspace: "none", env: {}, mounts: [], network: [] });
  });

  it("reads a stdio server's network entries as network grants; refuses other kinds, bad hosts and a remote server's, naming entry and line", () => {
    operator(
      [
        "mcp_servers:",
        "  web:",
        "    command: [node, /opt/web.js]",
        '    network: ["pypi.org", "api.example.com:8080", "network: *.example.org:*", "10.0.0.5:5432"]',
        "",
      ].join("\n"),
    );
    expect(load().mcp.servers.web).toMatchObject({
      network: [
        { kind: "network", host: "pypi.org" },
        { kind: "network", host: "api.example.com", port: 8080 },
        { kind: "network", host: "*.example.org", port: "*" },
        { kind: "network", host: "10.0.0.5", port: 5432 },
      ],
    });
    const cases: [string, RegExp][] = [
      [
        "mcp_servers:\n  web:\n    command: [x]\n    network:\n      - pypi.org\n      - 'tool: exec'\n",
        /:6: mcp_servers\.web\.network\.1: a server's network entries are network grants \(host\[:port\]\); "tool:" grants nothing here/,
      ],
      [
        "mcp_servers:\n  web:\n    command: [x]\n    network: ['file_read: /etc/**']\n",
        /:4: mcp_servers\.web\.network\.0: .*"file_read:" grants nothing here/,
      ],
      [
        "mcp_servers:\n  web:\n    command: [x]\n    network: ['pypi.org:99999']\n",
        /:4: mcp_servers\.web\.network\.0: invalid capability "network: pypi.org:99999": port/,
      ],
      [
        "mcp_servers:\n  web:\n    url: https://x.example/mcp\n    network: [pypi.org]\n",
        /:4: mcp_servers\.web\.network: network is for stdio servers \(command\): the daemon connects to a remote server itself/,
      ],
    ];
    for (const [yaml, message] of cases) {
      operator(yaml);
      expect(failure(() => load()).message, yaml).toMatch(message);
    }
    // A project may only remove entries (omitted: all of them), never add one.
    operator("mcp_servers:\n  web:\n    command: [x]\n    network: [pypi.org, api.example.com]\n");
    projectFile("mcp_servers:\n  web:\n    command: [x]\n    network: [pypi.org, evil.example]\n");
    expect(failure(() => load()).message).toMatch(
      /mcp_servers\.web\.network: "evil\.example" is not one of the operator's entries for it \(a project may only remove entries\)/,
    );
    projectFile("mcp_servers:\n  web:\n    command: [x]\n");
    expect(load().mcp.servers.web).toMatchObject({ network: [] });
    projectFile("mcp_servers:\n  web:\n    command: [x]\n    network: [pypi.org]\n");
    expect(load().mcp.servers.web).toMatchObject({ network: [{ kind: "network", host: "pypi.org" }] });
  });

  it("refuses a stdio server's mount that could never be bound when the config loads, naming mcp_servers.<name>.mounts and the line", () => {
    const cases: [string, string, string][] = [
      [
        "{ source: /nowhere/at/all, target: /opt/mcp }",
        "mounts.0.source",
        '"/nowhere/at/all" does not exist',
      ],
      [`{ source: ${home}, target: /opt/mcp }`, "mounts.0.source", "is or lies inside AIDO_HOME"],
      ["{ source: /proc, target: /opt/mcp }", "mounts.0.source", "pseudo-filesystem /proc"],
      [`{ source: ${project}, target: /workspace/x }`, "mounts.0.target", "would cover or lie in /workspace"],
      [
        `{ source: ${project}, target: /opt/a }, { source: ${project}, target: /opt/a }`,
        "mounts.1.target",
        "is mounted twice",
      ],
    ];
    for (const [mounts, key, reason] of cases) {
      operator(
        [
          "mcp_servers:",
          "  files:",
          "    command: [node, /opt/mcp/index.js]",
          `    mounts: [${mounts}]`,
          "",
        ].join("\n"),
      );
      const e = failure(load);
      expect(e.message).toContain(`config.yaml:4: mcp_servers.files.${key}: `);
      expect(e.message).toContain(reason);
    }
  });

  it("refuses unknown keys, bad names, non-http urls, credentials in the url and header values, naming key and line", () => {
    const cases: [string, RegExp][] = [
      [
        "mcp_servers:\n  gh:\n    url: https://x.example/mcp\n    token: abc\n",
        /:4: mcp_servers\.gh\.token: unknown key "token"/,
      ],
      [
        "mcp_servers:\n  Git_Hub:\n    url: https://x.example/mcp\n",
        /:2: mcp_servers\.Git_Hub: "Git_Hub" is not a server name/,
      ],
      ["mcp_servers:\n  gh:\n    url: file:///etc/passwd\n", /:3: mcp_servers\.gh\.url: url must be an http/],
      ["mcp_servers:\n  gh:\n    url: https://u:p@x.example/mcp\n", /url must not carry credentials/],
      [
        "mcp_servers:\n  gh:\n    url: https://x.example/mcp\n    headers: { Authorization: 'Bearer ghp_123' }\n",
        /:4: mcp_servers\.gh\.headers\.Authorization: the NAME of an environment variable/,
      ],
      [
        "mcp_servers:\n  gh:\n    url: https://x.example/mcp\n    read_only_tools: ['a b']\n",
        /read_only_tools\.0: a tool name or glob/,
      ],
      [
        "mcp_servers:\n  gh:\n    url: https://x.example/mcp\n    timeout_ms: 0\n",
        /mcp_servers\.gh\.timeout_ms/,
      ],
    ];
    for (const [yaml, message] of cases) {
      operator(yaml);
      expect(failure(() => load()).message, yaml).toMatch(message);
    }
  });

  it("lets a project keep a subset of the operator's servers, restated exactly, and never add or change one", () => {
    operator(GITHUB);
    projectFile("mcp_servers:\n  docs:\n    url: http://127.0.0.1:9000/mcp\n");
    expect(Object.keys(load().mcp.servers)).toEqual(["docs"]);
    projectFile("mcp_servers: {}\n");
    expect(load().mcp.servers).toEqual({});
    projectFile("mcp_servers:\n  evil:\n    url: https://evil.example/mcp\n");
    expect(failure(() => load()).message).toContain(
      "mcp_servers.evil is not a server the operator's config declares (a project may only remove servers)",
    );
    projectFile("mcp_servers:\n  docs:\n    url: http://127.0.0.1:9001/mcp\n");
    expect(failure(() => load()).message).toContain(
      "mcp_servers.docs may only restate the operator's declaration",
    );
    // A cloned repository cannot send the operator's server another of the daemon's secrets.
    projectFile(
      "mcp_servers:\n  github:\n    url: https://mcp.example.com/mcp\n    headers: { Authorization: AWS_SECRET_ACCESS_KEY }\n    read_only_tools: [list_*, get_issue]\n    timeout_ms: 5000\n",
    );
    expect(failure(() => load()).message).toContain(
      "mcp_servers.github may only restate the operator's declaration",
    );
  });

  it("accepts policy rules of the mcp kind", () => {
    operator(`${GITHUB}policy:\n  deny: ["mcp: github/delete_*"]\n  confirm: ["mcp: docs/*"]\n`);
    expect(load().policy).toMatchObject({ deny: ["mcp: github/delete_*"], confirm: ["mcp: docs/*"] });
  });
});
