// test/support/hold-unpack.mjs — a latch in a cluster node's process (preloaded with node
// --import by test/daemon/process.ts ChildOptions.preload): while the file named by
// AIDO_TEST_HOLD_UNPACK exists, a take that unpacks a goal's job inputs waits as it creates the
// goal's unpack folder ($AIDO_HOME/inbox/cluster-<goal>, src/cluster/job-inputs.ts), once per
// folder. It writes "<that file>.reached" (holding the folder's path) when it starts waiting,
// so the test knows the take is held mid-unpack; removing the file lets it go on. A test that
// races a step against the unpack holds the unpack instead of hoping it is slow enough.
import { existsSync, promises, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

const hold = process.env.AIDO_TEST_HOLD_UNPACK;
if (hold) {
  const mkdir = promises.mkdir;
  const held = new Set();
  promises.mkdir = async function heldMkdir(path, options) {
    const p = String(path);
    if (/\/inbox\/cluster-g_[0-9a-z]+$/.test(p) && !held.has(p)) {
      held.add(p);
      writeFileSync(`${hold}.reached`, p);
      while (existsSync(hold)) await sleep(20);
    }
    return mkdir.call(this, path, options);
  };
}
