// test/support/provider-suite.ts — one scripted provider server per test file: started
// before the suite, reset after each test (after the test's own cleanup, e.g. closing its
// runtime or daemon), closed after the suite.

import { afterAll, afterEach, beforeAll } from "vitest";
import { type ProviderServer, startProviderServer } from "./provider-server.js";

export function useProviderServer(hooks: {
  started(server: ProviderServer): void;
  /** Runs after each test, before the server forgets its scripts and requests. */
  afterEach?(): Promise<unknown> | unknown;
}): void {
  let server: ProviderServer | undefined;
  beforeAll(async () => {
    server = await startProviderServer();
    hooks.started(server);
  });
  afterEach(async () => {
    await hooks.afterEach?.();
    server?.reset();
  });
  afterAll(async () => {
    await server?.close();
  });
}
