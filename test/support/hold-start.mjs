// test/support/hold-start.mjs — holds an agentd process before it opens its socket (preloaded
// with node --import by test/daemon/process.ts ChildOptions.preload), so that its start fails
// the way a slow or stuck daemon's does: the socket never answers. It writes the process's id
// and its home to the file named by AIDO_TEST_HOLD_START first, so the test can look for both.
import { writeFileSync } from "node:fs";

const mark = process.env.AIDO_TEST_HOLD_START;
if (mark) {
  writeFileSync(mark, JSON.stringify({ pid: process.pid, home: process.env.AIDO_HOME }));
  setInterval(() => {}, 60_000);
  await new Promise(() => {});
}
