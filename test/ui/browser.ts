// test/ui/browser.ts — the dashboard in a real browser: Debian's chromium (installed by
// scripts/ensure-chromium.sh when missing) driven by playwright-core, the page built by
// scripts/build-ui.mjs when its bundle is missing or older than its sources. One browser
// per test file (launch in beforeAll, close in afterAll). Screenshots of the pages go to
// docs/ui/ only when AIDO_UI_SCREENSHOTS=1, so ordinary runs leave the tree clean.

import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, chromium, type Page } from "playwright-core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Build dist/ui/ if it is missing or stale; the UI server lists it when it starts. */
export function ensureUiBuilt(): void {
  execFileSync(process.execPath, [join(root, "scripts", "build-ui.mjs"), "--if-stale"], {
    stdio: ["ignore", "ignore", "inherit"],
  });
}

export function chromiumPath(): string {
  return process.env.AIDO_CHROMIUM ?? "/usr/bin/chromium";
}

/** Chromium installed (or a clear failure saying how to get it), then launched headless. */
export async function launchBrowser(): Promise<Browser> {
  execFileSync("bash", [join(root, "scripts", "ensure-chromium.sh")], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  const asRoot = typeof process.getuid === "function" && process.getuid() === 0;
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    // Chromium's own sandbox needs an unprivileged user; as root it refuses to start without this.
    args: asRoot ? ["--no-sandbox"] : [],
  });
}

/** A laptop-sized page (1366x768) with console errors and CSP violations collected. */
export async function laptopPage(browser: Browser): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(String(e)));
  return { page, problems };
}

/** docs/ui/<name>.png of what a 1366x768 laptop screen shows of the page, when AIDO_UI_SCREENSHOTS=1. */
export async function screenshot(page: Page, name: string): Promise<void> {
  if (process.env.AIDO_UI_SCREENSHOTS !== "1") return;
  const dir = join(root, "docs", "ui");
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${name}.png`) });
}
