// test/support/module-log-hooks.mjs — module hooks that append the URL of every module a
// process loads to the file named by AIDO_TEST_MODULE_LOG, one per line. Registered by
// module-log.mjs (`node --import ./test/support/module-log.mjs ...`); test/cli/
// start-light.test.ts reads the list to see what a command's start-up pulled in.
import { appendFileSync } from "node:fs";

export async function load(url, context, nextLoad) {
  const result = await nextLoad(url, context);
  if (process.env.AIDO_TEST_MODULE_LOG) appendFileSync(process.env.AIDO_TEST_MODULE_LOG, `${url}\n`);
  return result;
}
