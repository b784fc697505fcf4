// cli/commands/ui.ts — `aido ui [--rotate] [--open]`: asks the daemon for the dashboard
// (ui.open starts its server when needed) and prints a sign-in link (a one-time code,
// daemon/ui/signin.ts) and where the token scripts use is kept. --rotate makes a new
// token first (old tabs and links stop working); --open also hands the link to xdg-open
// when there is one. Nothing else opens a browser: until it is opened the link signs
// anyone in, so where it goes is the user's choice.

import { spawn } from "node:child_process";
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
    if (values.open) await openInBrowser(ctx.io, r.url);
    return 0;
  },
};

function openInBrowser(io: CliIo, url: string): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn("xdg-open", [url], { stdio: "ignore", detached: true });
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
