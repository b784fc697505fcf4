// cli/commands/ui.ts — `aido ui [--rotate] [--open]`: asks the daemon for the dashboard
// (ui.open starts its server when needed) and prints a sign-in link (a one-time code,
// daemon/ui/signin.ts) and where the token scripts use is kept. --rotate makes a new
// token first (old tabs and links stop working); --open also hands the link to xdg-open
// when there is one. Nothing else opens a browser: until it is opened the link signs
// anyone in, so where it goes is the user's choice. So the link never goes on a command
// line (any local user reads those in /proc): --open writes it into a page in $AIDO_HOME
// (0600) that sends the browser on, and xdg-open gets that page's path.

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { CliIo, Command } from "../command.js";
import { jsonOption, parseCommandArgs, printJson } from "../command.js";
import { withClient } from "./daemon-client.js";
import { commandSpec } from "./index.js";

export const ui: Command = {
  ...commandSpec("ui"),
  async run(ctx) {
    const { values } = parseCommandArgs(
      this,
      ctx.argv,
      { ...jsonOption, rotate: { type: "boolean" }, open: { type: "boolean" } },
      false,
    );
    const r = await withClient(ctx, (c) => c.call("ui.open", values.rotate ? { rotate: true } : {}));
    if (values.json) printJson(ctx.io, r);
    else {
      ctx.io.out(r.url);
      ctx.io.out(
        `the link signs in once; token file (for scripts): ${r.token_file} (0600)${values.rotate ? "; the previous token no longer works" : "; `aido ui --rotate` replaces it"}`,
      );
    }
    if (values.open) await openInBrowser(ctx.io, handOff(dirname(r.token_file), r.url));
    return 0;
  },
};

/**
 * The page --open hands to the browser: `home`/ui-open.html, 0600 (written aside, then
 * renamed over the last one), which sends the browser to `url` at once, with no Referer.
 */
function handOff(home: string, url: string): string {
  const file = join(home, "ui-open.html");
  const href = url.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const page = `<!doctype html><meta charset="utf-8"><meta name="referrer" content="no-referrer"><meta http-equiv="refresh" content="0; url=${href}"><title>Aido dashboard</title><p>Opening the Aido dashboard: <a href="${href}">continue</a></p>\n`;
  const aside = `${file}.${randomBytes(6).toString("hex")}`;
  writeFileSync(aside, page, { mode: 0o600, flag: "wx" });
  renameSync(aside, file);
  return file;
}

function openInBrowser(io: CliIo, page: string): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn("xdg-open", [page], { stdio: "ignore", detached: true });
    child.once("error", () => {
      io.err("aido ui: xdg-open is not available here; open the URL above in your browser");
      resolve();
    });
    child.once("spawn", () => {
      child.unref();
      resolve();
    });
  });
}
