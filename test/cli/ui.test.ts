// `aido ui`: in-process through runCli against a real agentd. It prints a sign-in link
// for the dashboard (a one-time code, never the token) and where the token is kept; each
// run a new link; --rotate refuses the old links; exit 1 when no daemon answers, 2 on misuse.

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
  it("prints a one-time sign-in link, then the token file; --rotate replaces the token", async () => {
    const fx = await suite.start();
    const first = await cli(["ui"]);
    expect(first.code).toBe(0);
    expect(first.out).toHaveLength(2);
    const url = first.out[0] as string;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?code=[A-Za-z0-9_-]{43}$/);
    const tokenFile = `${fx.home.config.home}/ui-token`;
    expect(first.out[1]).toBe(
      `the link signs in once; token file (for scripts): ${tokenFile} (0600); \`aido ui --rotate\` replaces it`,
    );
    expect(url).not.toContain(readFileSync(tokenFile, "utf8").trim());
    expect((await visit(url)).status).toBe(303);
    expect((await visit(url)).status).toBe(401); // spent

    const second = (await cli(["ui"])).out[0] as string; // the server stays, a new link
    expect(new URL(second).port).toBe(new URL(url).port);
    expect(second).not.toBe(url);

    const rotated = await cli(["ui", "--rotate"]);
    expect(rotated.out[1]).toContain("the previous token no longer works");
    expect((await visit(second)).status).toBe(401);
    expect((await visit(rotated.out[0] as string)).status).toBe(303);

    const json = JSON.parse((await cli(["ui", "--json"])).text());
    expect(json).toEqual({
      url: expect.stringMatching(/\?code=/),
      port: Number(new URL(url).port),
      token_file: tokenFile,
    });
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
