// test/ui/signin.test.ts — the sign-in links' codes on their own clock (the daemon-level
// tests, server-attacks.test.ts and dashboard-door.test.ts, show them over HTTP and in a
// browser): one visit each, void after the TTL, at most 32 open, all void on rotation.

import { describe, expect, it } from "vitest";
import { SIGN_IN_CODE_TTL_MS, SignInCodes } from "../../src/daemon/ui/signin.js";

describe("sign-in codes", () => {
  it("open once, and not after the TTL", () => {
    let now = 1_000_000;
    const codes = new SignInCodes(() => now);
    const a = codes.mint();
    const b = codes.mint();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(codes.spend(a)).toBe(true);
    expect(codes.spend(a)).toBe(false);
    now += SIGN_IN_CODE_TTL_MS;
    expect(codes.spend(b)).toBe(false);
    expect(codes.spend("never-minted")).toBe(false);
  });

  it("keep at most 32 open, the oldest voided first, and all voided by clear()", () => {
    const codes = new SignInCodes();
    const minted = Array.from({ length: 33 }, () => codes.mint());
    expect(codes.spend(minted[0] as string)).toBe(false);
    expect(codes.spend(minted[1] as string)).toBe(true);
    const last = codes.mint();
    codes.clear();
    expect(codes.spend(last)).toBe(false);
  });
});
