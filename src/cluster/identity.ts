// cluster/identity.ts — who this daemon is in a cluster: a node id and a key of its own.
// The node id is the operator's `cluster.node_id`, or one generated on first start and
// kept in $AIDO_HOME/node-id (0600), so a restarted node comes back as itself and
// recognises its goals. The key is the home's runtime key (security/keys.ts): every
// home is one node, so the key that signs this node's capability tokens and audit
// checkpoints is already this node's own; its public half is published with each
// heartbeat so any node can check another's signatures.

import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Config } from "../config.js";
import { AidoError, ErrorCode } from "../errors.js";
import { RuntimeKey } from "../security/keys.js";
import { ensurePrivateFile } from "../security/private-home.js";

export const NODE_ID_FILE = "node-id";
/** What a node id is: it names Redis keys (its streams, its heartbeat). */
export const NODE_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

export interface NodeIdentity {
  nodeId: string;
  keyId: string;
  publicKeyPem: string;
  host: string;
}

export function nodeIdentity(config: Config): NodeIdentity {
  const key = RuntimeKey.load(config.keysDir);
  return {
    nodeId: config.cluster?.nodeId ?? storedNodeId(config.home),
    keyId: key.keyId,
    publicKeyPem: key.publicKeyPem,
    host: hostname(),
  };
}

/** The id kept in the home, created on first use (`n-` and 12 hex characters). */
function storedNodeId(home: string): string {
  const file = join(home, NODE_ID_FILE);
  try {
    const id = readFileSync(file, "utf8").trim();
    if (!NODE_ID.test(id)) {
      throw new AidoError(
        ErrorCode.configInvalid,
        `${file} does not hold a node id (lower case letters, digits, '-')`,
        {
          file,
        },
      );
    }
    return id;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  const id = `n-${randomBytes(6).toString("hex")}`;
  try {
    writeFileSync(file, `${id}\n`, { mode: 0o600, flag: "wx" });
  } catch (e) {
    // Another process of this home wrote it first: its id stands.
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return storedNodeId(home);
    throw e;
  }
  ensurePrivateFile(file);
  return id;
}
