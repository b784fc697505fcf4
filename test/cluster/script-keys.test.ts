// The cluster's Lua scripts (src/cluster) against the keys they declare. Redis expects a
// script to touch only the keys it is given in KEYS; Aido's scripts write only those. One
// deliberate exception: the survivor's takes (goal-mirror.ts TAKEOVER, FAIL_DEAD) read the dead
// owner's lease key from ARGV, a read alone (EXISTS). Declared in KEYS it would need write
// permission (Redis 7 holds a script's declared keys to read and write: its EVAL key spec
// is RW), and a node whose ACL only reads other nodes' keys could then take no dead node's
// goal (test/cluster/refused-ends.test.ts). Redis Cluster is no target either way: a goal's
// hash and a node's lease key are in different hash slots, declared or not.
// This guard reads each script's source: every key it passes to redis.call is KEYS[i] with i
// within the count its EVAL declares, but those reads, listed here; a new undeclared access,
// or a write to one, fails it.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const FILES = ["commands.ts", "goal-mirror.ts", "inference-slots.ts", "job-intake.ts"];
/** Commands that only read their key. */
const READS = new Set(["EXISTS", "GET", "HGET", "HEXISTS", "TTL", "ZCARD", "PTTL", "HGETALL"]);
/** Commands without a key. */
const KEYLESS = new Set(["TIME"]);
/** The undeclared reads allowed, by script: the owner's lease key, read only. */
const UNDECLARED_READS: Record<string, string[]> = {
  TAKEOVER: ["EXISTS ARGV[4]"],
  FAIL_DEAD: ["EXISTS ARGV[6]"],
};

interface Script {
  file: string;
  name: string;
  body: string;
  /** The KEYS count of each EVAL of it. */
  numkeys: number[];
}

function scripts(): Script[] {
  const out: Script[] = [];
  for (const file of FILES) {
    const src = readFileSync(join(process.cwd(), "src", "cluster", file), "utf8");
    for (const m of src.matchAll(/^const ([A-Z_]+) = `([^`]*)`/gm)) {
      const [, name = "", body = ""] = m;
      if (!body.includes("redis.call")) continue;
      const numkeys = [...src.matchAll(new RegExp(`\\.eval\\(\\s*${name},\\s*(\\d+),`, "g"))].map((e) =>
        Number(e[1]),
      );
      out.push({ file, name, body, numkeys });
    }
  }
  return out;
}

describe("the cluster's Lua scripts", () => {
  const all = scripts();

  it("are all found, each with its EVAL", () => {
    expect(all.map((s) => s.name).sort()).toEqual(
      [
        "ACQUIRE",
        "CANCEL_QUEUED",
        "CANCEL_UNSTARTED",
        "CLAIM",
        "FAIL_DEAD",
        "FINISH",
        "RELEASE",
        "SETTLE",
        "TAKEOVER",
        "TAKE_SWEEP_LEASE",
        "UPDATE_OWNED",
      ].sort(),
    );
    for (const s of all) expect(s.numkeys.length, `${s.file} ${s.name}`).toBeGreaterThan(0);
  });

  it("touch only declared keys, but for the take scripts' read of the owner's lease key", () => {
    for (const s of all) {
      const calls = s.body.match(/redis\.call\([^)]*\)/g) ?? [];
      const undeclared: string[] = [];
      for (const call of calls) {
        const m = /^redis\.call\('([A-Z]+)'(?:,\s*([^,)]+))?/.exec(call);
        expect(m, `${s.name}: a redis.call whose command is not a literal: ${call}`).not.toBeNull();
        const [, command = "", key = ""] = m ?? [];
        if (KEYLESS.has(command)) continue;
        const declared = /^KEYS\[(\d+)\]$/.exec(key.trim());
        if (declared) {
          const i = Number(declared[1]);
          for (const n of s.numkeys)
            expect(i, `${s.name}: ${call} past its ${n} declared keys`).toBeLessThanOrEqual(n);
          continue;
        }
        expect(READS.has(command), `${s.name}: ${call} writes a key it does not declare`).toBe(true);
        undeclared.push(`${command} ${key.trim()}`);
      }
      expect(undeclared, s.name).toEqual(UNDECLARED_READS[s.name] ?? []);
    }
  });
});
