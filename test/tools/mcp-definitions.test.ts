// tools/mcp/definitions.ts: what a pin covers and what a model is shown of a description.
// The gate-level behaviour is in mcp-servers.test.ts; these pin down the two functions the
// security of pins rests on.

import { describe, expect, it } from "vitest";
import {
  changedParts,
  cleanDescription,
  DESCRIPTION_MAX,
  definitionHash,
  type McpToolDefinition,
} from "../../src/tools/mcp/definitions.js";

const def = (over: Partial<McpToolDefinition> = {}): McpToolDefinition => ({
  name: "echo",
  description: "Echo.",
  inputSchema: { type: "object", properties: { text: { type: "string" } } },
  ...over,
});

describe("definition pins", () => {
  it("hash name, description and schema, in any key order, and not the annotations", () => {
    const a = definitionHash(def());
    expect(
      definitionHash(def({ inputSchema: { properties: { text: { type: "string" } }, type: "object" } })),
    ).toBe(a);
    expect(definitionHash(def({ annotations: { readOnlyHint: true } }))).toBe(a);
    expect(definitionHash(def({ description: "Echo. " }))).not.toBe(a);
    expect(definitionHash(def({ name: "echo2" }))).not.toBe(a);
    expect(definitionHash(def({ inputSchema: { type: "object" } }))).not.toBe(a);
    expect(changedParts(def(), def({ description: "x", inputSchema: {} }))).toEqual([
      "description",
      "inputSchema",
    ]);
  });

  it("show a model no invisible text: controls, zero-width, bidi, tag characters removed; capped", () => {
    expect(cleanDescription("Read\u200b a file\u202e.\u0007\u{e0049}\u{e0047}\ufe0f")).toBe("Read a file.");
    const long = cleanDescription("x".repeat(DESCRIPTION_MAX + 50));
    expect(long.length).toBeLessThan(DESCRIPTION_MAX + 30);
    expect(long.endsWith("[description cut]")).toBe(true);
  });
});
