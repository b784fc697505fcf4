// test/support/provider-suite.ts — one scripted provider server per test file: started
// before the suite, reset after each test (after the test's own cleanup, e.g. closing its
// runtime or daemon), closed after the suite (after the suite's own cleanup).

import { afterAll, afterEach, beforeAll } from "vitest";
import { type ProviderServer, startProviderServer } from "./provider-server.js";

export function useProviderServer(hooks: {
  started(server: ProviderServer): void;
  /** Runs after each test, before the server forgets its scripts and requests. */
  afterEach?(): Promise<unknown> | unknown;
  /** Runs after the suite, before the server closes (what still calls it stops first). */
  afterAll?(): Promise<unknown> | unknown;
  /**
   * The server keeps its scripts and requests from one test to the next: processes a test
   * started may outlive it (a cluster's nodes run until the suite ends).
   */
  keepBetweenTests?: boolean;
}): void {
  let server: ProviderServer | undefined;
  beforeAll(async () => {
    server = await startProviderServer();
    hooks.started(server);
  });
  afterEach(async () => {
    await hooks.afterEach?.();
    if (!hooks.keepBetweenTests) server?.reset();
  });
  afterAll(async () => {
    await hooks.afterAll?.();
    await server?.close();
  });
}
