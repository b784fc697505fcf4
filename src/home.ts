// home.ts — where Aido's state lives: $AIDO_HOME, else ~/.aido, and the daemon's socket in
// it. Its own module, free of config.ts's parsers (yaml, zod), so that a daemon client
// (`aido goals`, `aido status`, `aido approvals`) finds the socket without loading them:
// the daemon validates its configuration, a client only needs the address.

import { homedir } from "node:os";
import { join, resolve } from "node:path";

type Env = Readonly<Record<string, string | undefined>>;

export function aidoHome(env: Env): string {
  return resolve(env.AIDO_HOME && env.AIDO_HOME !== "" ? env.AIDO_HOME : join(homedir(), ".aido"));
}

export function socketPathIn(home: string): string {
  return join(home, "agentd.sock");
}
