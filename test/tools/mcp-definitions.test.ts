// tools/mcp/definitions.ts: what a pin covers and what a model is shown of a description.
// The gate-level behaviour is in mcp-servers.test.ts; these pin down the two functions the
// security of pins rests on.

import { describe, expect, it } from "vitest";
import {
  admitTools,
  changedParts,
  cleanDescription,
  DESCRIPTION_MAX,
  definitionHash,
  type McpToolDefinition,
  SCHEMA_MAX_BYTES,
  SERVER_TOOLS_MAX_BYTES,
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

  it("admit a schema of exactly the cap, refuse one byte more, and fill a server's total in listing order", () => {
    // A schema of `bytes` bytes of canonical JSON: {"d":"…"}.
    const sized = (name: string, bytes: number) => def({ name, inputSchema: { d: "x".repeat(bytes - 8) } });
    const { admitted, oversized } = admitTools([
      sized("fits", SCHEMA_MAX_BYTES),
      sized("over", SCHEMA_MAX_BYTES + 1),
      ...Array.from({ length: 8 }, (_, i) => sized(`w${i}`, SCHEMA_MAX_BYTES)),
    ]);
    // 8 * 16 KiB = the server's 128 KiB, but names, descriptions and a share per tool count
    // too: "fits" and w0..w5 fill it, w6 is one too many.
    expect([...admitted.keys()]).toEqual(["fits", "w0", "w1", "w2", "w3", "w4", "w5"]);
    expect(oversized.get("over")).toMatchObject({
      bytes: SCHEMA_MAX_BYTES + 1,
      cap: SCHEMA_MAX_BYTES,
      limit: "tool",
    });
    expect(oversized.get("w6")).toMatchObject({ cap: SERVER_TOOLS_MAX_BYTES, limit: "server" });
    expect(oversized.get("w6")?.hash).toBe(definitionHash(sized("w6", SCHEMA_MAX_BYTES)));
  });
});
