// The pieces under the socket: line framing at its cap, and the one table from AidoError
// codes to JSON-RPC numbers.

import { describe, expect, it } from "vitest";
import { SAFE_INTERNAL_MESSAGE, toRpcError } from "../../src/daemon/errors.js";
import { LineSplitter, parseRequest } from "../../src/daemon/protocol.js";
import { AidoError, ErrorCode } from "../../src/errors.js";

const b = (s: string) => Buffer.from(s);

describe("LineSplitter", () => {
  it("joins a line split across chunks and splits several lines in one chunk", () => {
    const s = new LineSplitter(100);
    expect(s.push(b('{"a":'))).toEqual([]);
    expect(s.push(b('1}\n{"b":2}\n{"c"'))).toEqual([
      { kind: "line", text: '{"a":1}' },
      { kind: "line", text: '{"b":2}' },
    ]);
    expect(s.push(b(":3}\n"))).toEqual([{ kind: "line", text: '{"c":3}' }]);
  });

  it("accepts a line of exactly the cap and reports one byte more once, then resynchronises", () => {
    const s = new LineSplitter(10);
    expect(s.push(b(`${"x".repeat(10)}\n`))).toEqual([{ kind: "line", text: "x".repeat(10) }]);
    const over = s.push(b("y".repeat(11)));
    expect(over).toEqual([{ kind: "oversized", bytes: 11 }]);
    // The rest of the long line is dropped silently; the next line is whole.
    expect(s.push(b("y".repeat(5000)))).toEqual([]);
    expect(s.push(b("yyy\nok\n"))).toEqual([{ kind: "line", text: "ok" }]);
  });

  it("counts bytes, not characters, against the cap", () => {
    const s = new LineSplitter(4);
    expect(s.push(b("ééé\n"))[0]).toMatchObject({ kind: "oversized" });
  });
});

describe("parseRequest", () => {
  it("keeps the id of a request it refuses, so the client can match the error", () => {
    try {
      parseRequest('{"jsonrpc":"1.0","id":"abc","method":"goal.list"}');
      throw new Error("expected a refusal");
    } catch (e) {
      expect(e).toMatchObject({ id: "abc", rpcCode: -32600 });
    }
  });

  it("refuses an id that is neither string, number nor null", () => {
    expect(() => parseRequest('{"jsonrpc":"2.0","id":{"x":1},"method":"goal.list"}')).toThrow(/id must be/);
  });
});

describe("the error table", () => {
  it("maps the codes DESIGN.md names to their numbers", () => {
    const n = (code: ErrorCode) => toRpcError(new AidoError(code, "m")).code;
    expect(n(ErrorCode.capabilityDenied)).toBe(-32001);
    expect(n(ErrorCode.budgetExceeded)).toBe(-32002);
    expect(n(ErrorCode.notFound)).toBe(-32003);
    expect(n(ErrorCode.policyDenied)).toBe(-32004);
    expect(n(ErrorCode.invalidInput)).toBe(-32602);
  });

  it("gives every Aido code a JSON-RPC number", () => {
    for (const code of Object.values(ErrorCode)) {
      const r = toRpcError(new AidoError(code, "m", { x: 1 }));
      expect(r.code, code).toBeLessThan(-32000);
      expect(r.data).toEqual({ code, details: { x: 1 } });
    }
  });

  it("hides what an unexpected error carries and logs it instead", () => {
    const logged: string[] = [];
    const r = toRpcError(new Error("ENOENT: /root/secret/path"), (m) => logged.push(m));
    expect(r).toEqual({ code: -32603, message: SAFE_INTERNAL_MESSAGE, data: { code: "internal" } });
    expect(logged[0]).toContain("/root/secret/path");
  });
});
