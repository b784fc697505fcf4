// config-mcp-servers.ts — what a config file may say of the external MCP servers the
// operator declares (`mcp_servers`, tools/mcp/): the schema of one server (remote or stdio,
// and the keys only one kind has), its network entries read as network grants, and the
// check of its mounts against the host when the config loads. The typed McpServerConfig
// built from these is config.ts's.

import { z } from "zod";
import type { FileProblem } from "./config-file.js";
import { AidoError, ErrorCode } from "./errors.js";
import { checkMcpMounts } from "./sandbox/mcp-mounts.js";
import { GRANT_KINDS, type Grant, MCP_SERVER_NAME, parseGrant } from "./security/grants.js";

type NetworkGrant = Extract<Grant, { kind: "network" }>;

/** An HTTP header name, and the environment variable its value is read from at connect. */
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/;
const ENV_VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** A tool name of an external MCP server, or a glob of them ("*" any characters). */
const MCP_TOOL_GLOB = /^[A-Za-z0-9_.*-]{1,64}$/;

const absolutePath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => p.startsWith("/") && !p.split("/").includes(".."), 'an absolute path without ".."');

/** Keys only one kind of server has: a remote one (url) or a stdio one (command). */
const REMOTE_ONLY = ["headers"] as const;
const STDIO_ONLY = ["image", "env", "workspace", "mounts"] as const;

/**
 * One `mcp_servers.<name>.network` entry as the network grant it is: written `host[:port]`
 * or `network: host[:port]` (security/grants.ts). An entry of another kind is refused, the
 * error saying why. The schema checks each entry with this, and config.ts builds the
 * server's grants with it: one parser for both.
 */
export function mcpNetworkGrant(entry: string): NetworkGrant {
  const kind = /^\s*([a-z_]+)\s*:/.exec(entry)?.[1];
  const named = kind !== undefined && (GRANT_KINDS as readonly string[]).includes(kind);
  const grant = named && kind !== "network" ? undefined : parseGrant(named ? entry : `network: ${entry}`);
  if (grant?.kind !== "network")
    throw new AidoError(
      ErrorCode.configInvalid,
      `a server's network entries are network grants (host[:port]); "${kind}:" grants nothing here`,
      { entry },
    );
  return grant;
}

/** What is wrong with one `mcp_servers.<name>.network` entry, or undefined. */
function mcpNetworkEntryProblem(entry: string): string | undefined {
  try {
    mcpNetworkGrant(entry);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * An external MCP server the operator declares (tools/mcp/): remote, over Streamable HTTP
 * (`url`), or stdio (`command`), run in a container of its own per goal
 * (sandbox/mcp-container.ts). A remote server's `headers` map a header to the NAME of an
 * environment variable of the daemon, whose value is read at connect and never logged,
 * shown or audited. A stdio server's `env` holds literal values (it sees nothing of the
 * daemon's environment), `workspace` whether the goal's /workspace is mounted, `mounts`
 * read-only host paths. `read_only_tools` are the tools the operator trusts to change
 * nothing: every other tool waits for a human by default.
 */
const mcpServerSchema = z
  .strictObject({
    url: z
      .string()
      .max(2048)
      .refine(
        (u) => URL.canParse(u) && ["http:", "https:"].includes(new URL(u).protocol),
        "url must be an http:// or https:// URL",
      )
      .refine((u) => !URL.canParse(u) || (new URL(u).username === "" && new URL(u).password === ""), {
        message: "url must not carry credentials (put them in headers, read from the environment)",
      })
      .optional(),
    headers: z
      .record(
        z.string().regex(HEADER_NAME, "a header name (letters, digits, and !#$%&'*+.^_`|~-)"),
        z
          .string()
          .regex(
            ENV_VAR_NAME,
            "the NAME of an environment variable holding the value (e.g. GITHUB_TOKEN), not a value",
          ),
      )
      .optional(),
    command: z.array(z.string().min(1).max(4096)).min(1).max(64).optional(),
    image: z.string().min(1).max(256).optional(),
    env: z
      .record(z.string().regex(ENV_VAR_NAME, "an environment variable name"), z.string().max(4096))
      .optional(),
    workspace: z.enum(["none", "ro", "rw"]).optional(),
    mounts: z
      .array(z.strictObject({ source: absolutePath, target: absolutePath }))
      .max(16)
      .optional(),
    network: z
      .array(
        z
          .string()
          .max(300)
          .superRefine((entry, ctx) => {
            const problem = mcpNetworkEntryProblem(entry);
            if (problem) ctx.addIssue({ code: "custom", message: problem });
          }),
      )
      .max(64)
      .optional(),
    read_only_tools: z
      .array(z.string().regex(MCP_TOOL_GLOB, "a tool name or glob ([A-Za-z0-9_.-] and *)"))
      .optional(),
    timeout_ms: z.number().int().positive().max(600_000).optional(),
  })
  .superRefine((s, ctx) => {
    if ((s.url === undefined) === (s.command === undefined)) {
      ctx.addIssue({
        code: "custom",
        message: "a server has either url (remote, Streamable HTTP) or command (stdio, in a container)",
      });
      return;
    }
    if (s.url !== undefined && s.network !== undefined)
      ctx.addIssue({
        code: "custom",
        path: ["network"],
        message:
          "network is for stdio servers (command): the daemon connects to a remote server itself, directly",
      });
    const wrong = s.url !== undefined ? STDIO_ONLY : REMOTE_ONLY;
    for (const key of wrong) {
      if (s[key] !== undefined)
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `${key} is for ${s.url !== undefined ? "stdio servers (command)" : "remote servers (url)"}`,
        });
    }
  });

/** `mcp_servers`: external MCP servers by name; a name is what manifests and tool names use. */
export const mcpServersSchema = z.record(z.string(), mcpServerSchema).superRefine((servers, ctx) => {
  for (const name of Object.keys(servers)) {
    if (!MCP_SERVER_NAME.test(name))
      ctx.addIssue({
        code: "custom",
        path: [name],
        message: `"${name}" is not a server name: [a-z][a-z0-9-]*, at most 32 characters`,
      });
  }
});

/** `mcp_servers` as a file says it. */
export type McpServersFile = z.infer<typeof mcpServersSchema>;

/**
 * The stdio MCP servers' mounts that could never be bound (sandbox/mcp-mounts.ts), found
 * when the config loads rather than at a goal's first call of the server.
 */
export function mountProblems(servers: McpServersFile | undefined, home: string): FileProblem[] {
  const problems: FileProblem[] = [];
  for (const [name, s] of Object.entries(servers ?? {})) {
    try {
      checkMcpMounts(s.mounts ?? [], home, (i, key, reason) => {
        throw new MountProblem(["mcp_servers", name, "mounts", String(i), key], reason);
      });
    } catch (e) {
      if (!(e instanceof MountProblem)) throw e;
      problems.push({ path: e.path, message: e.message });
    }
  }
  return problems;
}

class MountProblem extends Error {
  constructor(
    readonly path: string[],
    message: string,
  ) {
    super(message);
  }
}
