// test/ui/browser.ts — the dashboard in a real browser: Debian's chromium (installed by
// scripts/ensure-chromium.sh when missing) driven by playwright-core, the page built by
// scripts/build-ui.mjs when its bundle is missing or older than its sources. One browser
// per test file (launch in beforeAll, close in afterAll; useDashboard() sets up the daemon
// and a signed-in page with it). Screenshots of the pages go to docs/ui/ only when
// AIDO_UI_SCREENSHOTS=1, so ordinary runs leave the tree clean.

import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll } from "vitest";
import type { AidoClient } from "../../src/client/client.js";
import type { Config } from "../../src/config.js";
import { type DaemonFixture, startFixture } from "../daemon/fixture.js";
import { requireDocker } from "../support/docker.js";
import { type ProviderServer, startProviderServer } from "../support/provider-server.js";
import { openUi, type UiHandle } from "./fixture.js";

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
  return chromium.launch(launchOptions());
}

/**
 * Chromium on a user profile kept in `dir`, as a user's own browser runs: its history
 * database (`dir/Default/History`, SQLite) is written, in full once the context is closed.
 */
export async function launchProfile(dir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(dir, launchOptions());
}

function launchOptions() {
  execFileSync("bash", [join(root, "scripts", "ensure-chromium.sh")], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  const asRoot = typeof process.getuid === "function" && process.getuid() === 0;
  return {
    executablePath: chromiumPath(),
    headless: true,
    // Chromium's own sandbox needs an unprivileged user; as root it refuses to start without this.
    args: asRoot ? ["--no-sandbox"] : [],
  };
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

export interface Dashboard {
  readonly server: ProviderServer;
  readonly fx: DaemonFixture;
  /** A socket client of the daemon (a new one after restart()). */
  readonly c: AidoClient;
  readonly ui: UiHandle;
  readonly page: Page;
  /** Script errors and CSP violations the page reported (failed loads aside). */
  scriptProblems(): string[];
  /** Stop the daemon (closing every stream), then start it again on the same home and port. */
  restart(between?: () => Promise<void>): Promise<void>;
}

/**
 * One scripted provider, one daemon (on a fixed UI port, as run-aido.sh publishes one, so
 * the page can reconnect after a restart), one browser with a laptop-sized page signed in
 * through a sign-in link: set up before the file's tests, removed after them.
 */
export function useDashboard(opts: { containers: boolean; config?: (cfg: Config) => void }): Dashboard {
  let server: ProviderServer | undefined;
  let fx: DaemonFixture | undefined;
  let c: AidoClient | undefined;
  let ui: UiHandle | undefined;
  let browser: Browser | undefined;
  let page: Page | undefined;
  let problems: string[] = [];
  beforeAll(async () => {
    if (opts.containers) requireDocker();
    ensureUiBuilt();
    server = await startProviderServer();
    const port = await freePort();
    fx = await startFixture(server, {
      ...(opts.containers ? { runtime: { backend: undefined } } : {}),
      config: (cfg) => {
        opts.config?.(cfg);
        cfg.ui.port = port;
      },
    });
    c = await fx.client();
    ui = await openUi(fx);
    browser = await launchBrowser();
    ({ page, problems } = await laptopPage(browser));
    await page.goto(ui.url);
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await fx?.close();
    await server?.close();
  });
  const need = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error("the dashboard is set up before the file's first test");
    return v;
  };
  return {
    get server() {
      return need(server);
    },
    get fx() {
      return need(fx);
    },
    get c() {
      return need(c);
    },
    get ui() {
      return need(ui);
    },
    get page() {
      return need(page);
    },
    scriptProblems: () => problems.filter((p) => !/Failed to load resource/.test(p)),
    async restart(between) {
      const f = need(fx);
      await f.daemon.close();
      await between?.();
      await f.restart();
      c = await f.client();
      await c.call("ui.open", {});
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
