// The CLI takes its settings from the environment runCli is given, not from the process's:
// a command that reads process.env on its own (aido mcp config printed the process's
// AIDO_HOME, or none) answers for another home than the one it was asked about.

import { afterEach, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { captureIo } from "./io.js";

const saved = process.env.AIDO_HOME;
afterEach(() => {
  if (saved === undefined) delete process.env.AIDO_HOME;
  else process.env.AIDO_HOME = saved;
});

it("aido mcp config names the AIDO_HOME it was given, not the process's", async () => {
  process.env.AIDO_HOME = "/nowhere/the-process-home";
  const c = captureIo();
  const code = await runCli(["mcp", "config", "cursor"], c.io, { AIDO_HOME: "/srv/the-given-home" });
  expect(code, c.err.join("\n")).toBe(0);
  const printed = JSON.parse(c.text()) as { mcpServers: { aido: { env?: Record<string, string> } } };
  expect(printed.mcpServers.aido.env).toEqual({ AIDO_HOME: "/srv/the-given-home" });
});

it("aido mcp config without AIDO_HOME in the given environment prints none", async () => {
  process.env.AIDO_HOME = "/nowhere/the-process-home";
  const c = captureIo();
  expect(await runCli(["mcp", "config", "cursor"], c.io, {})).toBe(0);
  const printed = JSON.parse(c.text()) as { mcpServers: { aido: { env?: Record<string, string> } } };
  expect(printed.mcpServers.aido.env).toBeUndefined();
});
