// `aido ui`: in-process through runCli against a real agentd. It prints a sign-in link
// for the dashboard (a one-time code, never the token) and where the token is kept; each
// run a new link; --rotate refuses the old links; exit 1 when no daemon answers, 2 on misuse.

import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { useDaemonPerTest } from "../daemon/fixture.js";
import { until } from "../daemon/process.js";
import { ensureUiBuilt, launchBrowser } from "../ui/browser.js";
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
    expect((await visit(url)).status).toBe(200);
    expect((await visit(url)).status).toBe(401); // spent

    const second = (await cli(["ui"])).out[0] as string; // the server stays, a new link
    expect(new URL(second).port).toBe(new URL(url).port);
    expect(second).not.toBe(url);

    const rotated = await cli(["ui", "--rotate"]);
    expect(rotated.out[1]).toContain("the previous token no longer works");
    expect((await visit(second)).status).toBe(401);
    expect((await visit(rotated.out[0] as string)).status).toBe(200);

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

  it("--open hands xdg-open a 0600 page that signs the browser in, never the link (command lines are public)", async () => {
    const fx = await suite.start();
    ensureUiBuilt();
    const bin = mkdtempSync(join(tmpdir(), "aido-xdg-"));
    const seen = join(bin, "argv");
    writeFileSync(join(bin, "xdg-open"), `#!/bin/sh\nprintf '%s\\n' "$@" > "${seen}"\n`, { mode: 0o755 });
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    const browser = await launchBrowser();
    try {
      const r = await cli(["ui", "--open"]);
      expect(r.code).toBe(0);
      // The shell creates the file before it writes the line: wait for the whole line.
      const argv = await until(() => {
        const line = existsSync(seen) ? readFileSync(seen, "utf8") : "";
        return line.endsWith("\n") ? line : undefined;
      }, 5_000);
      const page = join(fx.home.config.home, "ui-open.html");
      expect(argv).toBe(`${page}\n`); // the page's path: no code in any process's command line
      expect(statSync(page).mode & 0o777).toBe(0o600);
      expect(readFileSync(page, "utf8")).toContain(r.out[0]);

      // A real browser opening the page (a file: another site, to the dashboard) is signed in.
      const tab = await (await browser.newContext()).newPage();
      await tab.goto(pathToFileURL(page).href);
      await tab.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\/$/, { timeout: 10_000 });
      await tab.waitForSelector("main", { timeout: 10_000 });
      // The page key came along: the event stream, which needs it, is live.
      await expect.poll(() => tab.getByTestId("connection").textContent(), { timeout: 10_000 }).toBe("live");
      expect((await tab.reload())?.status()).toBe(200);
      expect((await visit(r.out[0] as string)).status).toBe(401); // spent by the browser
    } finally {
      process.env.PATH = path;
      await browser.close();
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it("refuses a link with a code it never issued when another site sends the browser there", async () => {
    await suite.start();
    const link = new URL((await cli(["ui"])).out[0] as string);
    const navigate = {
      "Sec-Fetch-Site": "cross-site",
      "Sec-Fetch-Mode": "navigate",
      "Sec-Fetch-Dest": "document",
    };
    const forged = await raw(Number(link.port), {
      path: "/?code=not-a-code",
      headers: { Host: link.host, ...navigate },
    });
    expect(forged.status).toBe(401);
    expect(forged.headers["set-cookie"]).toBeUndefined();
    // Only a page, sent there: another site's fetch or embed of the link is refused as before.
    for (const dest of [
      { "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image" },
      { "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty" },
    ]) {
      const r = await raw(Number(link.port), {
        path: `${link.pathname}${link.search}`,
        headers: { Host: link.host, "Sec-Fetch-Site": "cross-site", ...dest },
      });
      expect(r.status).toBe(403);
    }
    // The link itself, sent there, signs in (the code was not spent by the refusals above).
    const ok = await raw(Number(link.port), {
      path: `${link.pathname}${link.search}`,
      headers: { Host: link.host, ...navigate },
    });
    expect(ok.status).toBe(200);
    expect(String(ok.headers["set-cookie"])).toMatch(/HttpOnly; SameSite=Strict/);
    expect(ok.text).toContain('<script src="/assets/signin.js">');
    expect(ok.text).toMatch(/<meta name="aido-page-key" content="[A-Za-z0-9_-]{43}">/);
  });
});
