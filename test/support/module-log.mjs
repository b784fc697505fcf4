// test/support/module-log.mjs — `node --import` this to log every module the process
// loads (module-log-hooks.mjs says where).
import { register } from "node:module";

register("./module-log-hooks.mjs", import.meta.url);
