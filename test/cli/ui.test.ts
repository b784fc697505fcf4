// `aido ui`: in-process through runCli against a real agentd. It prints the dashboard's
// URL with the token once and where the token is kept; the same URL until --rotate, after
// which the old one is refused; exit 1 when no daemon answers, 2 on misuse.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { useDaemonPerTest } from "../daemon/fixture.js";
import { raw } from "../ui/fixture.js";
import { captureIo } from "./io.js";

const suite = useDaemonPerTest();

async function cli(argv: string[], env = suite.fx.home.env) {
  const c = captureIo();
  const code = await runCli(argv, c.io, env);
  return { code, ...c };
}

const visit = (url: string) => {
  const u = new URL(url);
  return raw(Number(u.port), { path: `${u.pathname}${u.search}`, headers: { Host: u.host } });
};

describe("aido ui", () => {
  it("prints the URL with the token once, then the token file; --rotate replaces the token", async () => {
    const fx = await suite.start();
    const first = await cli(["ui"]);
    expect(first.code).toBe(0);
    expect(first.out).toHaveLength(2);
    const url = first.out[0] as string;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{43}$/);
    const tokenFile = `${fx.home.config.home}/ui-token`;
    expect(first.out[1]).toBe(`token file: ${tokenFile} (0600); \`aido ui --rotate\` replaces it`);
    expect(readFileSync(tokenFile, "utf8").trim()).toBe(new URL(url).searchParams.get("token"));
    expect((await visit(url)).status).toBe(303);

    expect((await cli(["ui"])).out[0]).toBe(url); // the server and token stay

    const rotated = await cli(["ui", "--rotate"]);
    expect(rotated.out[0]).not.toBe(url);
    expect(rotated.out[1]).toContain("the previous token no longer works");
    expect((await visit(url)).status).toBe(401);
    expect((await visit(rotated.out[0] as string)).status).toBe(303);

    const json = JSON.parse((await cli(["ui", "--json"])).text());
    expect(json).toEqual({ url: rotated.out[0], port: Number(new URL(url).port), token_file: tokenFile });
  });

  it("exits 2 on misuse and 1 when no daemon answers", async () => {
    const fx = await suite.start();
    const misuse = await cli(["ui", "now"]);
    expect(misuse.code).toBe(2);
    await fx.daemon.close();
    const down = await cli(["ui"]);
    expect(down.code).toBe(1);
    expect(down.err.join("\n")).toContain("not running");
  });
});
