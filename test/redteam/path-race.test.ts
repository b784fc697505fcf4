// Red team: the check-then-act window of the file tools. A parent agent runs one long exec
// that flips a symlink as fast as it can — /workspace/d pointing at /workspace/allowed
// (granted to its child) one instant, at /output/forbidden (not granted) the next — while the
// child fires file tool calls at /workspace/d/... in parallel. The gate judges whichever
// target d has at check time; the executor must then act on exactly that path or refuse: no
// write may land in /output/forbidden and no read may return what is there. (The child
// cannot flip the links itself: its reads of /workspace are mixed — the folder and
// allowed/ only — so its exec domain gives it no write rule on /workspace itself.)

import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { AidoError, ErrorCode } from "../../src/errors.js";
import { parseManifestValue } from "../../src/manifest/load.js";
import { type Bench, expectOk, noSnapshots, useBench } from "./fixture.js";

/** Flips the links: may read and write all of /workspace, run anything. */
let owner: { id: string; goalId: string };
/** Makes the file tool calls. */
let agent: { id: string };
let forbidden: string;

const CALLS = 200;
/** How a call caught by the swap may fail: refused, or the folder was away at that instant. */
const REFUSED: string[] = [ErrorCode.capabilityDenied, ErrorCode.notFound];

const b = useBench(noSnapshots);
beforeAll(async () => {
  // The swapper may read and write /output too: the exec judge follows the variables its
  // commands name the forbidden folder through (`ln -sfn "$F" "$D"`: a link's target is judged
  // as read), and when a swap ends with /workspace/allowed a link to /output/forbidden, the
  // clean-up's `mv "$A.real" "$A"` is judged as a write into the link's target.
  owner = b.agent("swapper", [
    "tool: *",
    "file_read: /workspace/**",
    "file_read: /output/**",
    "file_write: /workspace/**",
    "file_write: /output/**",
    "exec: *",
  ]);
  // The racer may write all of /workspace but read only /workspace itself and allowed/, and
  // nothing of /output.
  agent = b.rt.spawner.spawn({
    goalId: owner.goalId,
    manifest: parseManifestValue(
      {
        name: "racer",
        system_prompt: "x",
        capabilities: [
          "tool: *",
          "file_read: /workspace",
          "file_read: /workspace/allowed/**",
          "file_write: /workspace/**",
        ],
      },
      "test",
    ),
    parent: b.rt.registry.require(owner.id),
  });
  const setup = expectOk(
    await b.call(owner.id, "exec", {
      command:
        "mkdir -p /workspace/allowed && printf public > /workspace/allowed/s.txt && " +
        "ln -sfn /workspace/allowed /workspace/d",
    }),
  );
  expect(setup.isError, setup.output).toBe(false);
  forbidden = join(b.home.dir, "goals", owner.goalId, "output", "forbidden");
  // The forbidden folder and its secret are planted from the host.
  mkdirSync(forbidden);
  writeFileSync(join(forbidden, "s.txt"), "SECRET");
  writeFileSync(join(forbidden, "SECRET-NAME.txt"), "");
}, 180_000);

/**
 * For `ms`, inside one exec call (the executor ends it with the call): flip /workspace/d
 * between the two folders, and swap /workspace/allowed itself for a symlink to
 * /output/forbidden and back, so a path judged under the real folder is, a moment later,
 * under the symlink. Then put the real folder back.
 */
async function swap(ms: number): Promise<void> {
  await b.call(owner.id, "exec", {
    command:
      'A=/workspace/allowed F=/output/forbidden D=/workspace/d; while true; do ln -sfn "$F" "$D"; ln -sfn "$A" "$D"; ' +
      'mv "$A" "$A.real" && ln -s "$F" "$A" && rm "$A" && mv "$A.real" "$A"; done',
    timeout_ms: ms,
  });
  expectOk(
    await b.call(owner.id, "exec", {
      command: 'A=/workspace/allowed; if test -d "$A.real"; then rm -f "$A"; mv "$A.real" "$A"; fi',
    }),
  );
}

/** Half the calls name the flipped link, half the folder that is swapped. */
const target = (k: number, name: string) =>
  k % 2 === 0 ? `/workspace/d/${name}` : `/workspace/allowed/${name}`;

describe("a symlink flipped during file tool calls", () => {
  it("never lets a write land outside the grant", async () => {
    const swapping = swap(15_000);
    await new Promise((r) => setTimeout(r, 300));
    // A loaded machine can starve the calls of every instant at which the granted folder is
    // in place; fire bursts until one lands, so the race is shown real however busy it is.
    const results: Awaited<ReturnType<Bench["call"]>>[] = [];
    for (let burst = 0; burst < 5 && !results.some((r) => !(r instanceof AidoError)); burst++) {
      results.push(
        ...(await Promise.all(
          Array.from({ length: CALLS }, (_, k) =>
            b.call(agent.id, "file_write", { path: target(k, `x-${k}.txt`), content: `write ${k}` }),
          ),
        )),
      );
    }
    const edits = await Promise.all(
      Array.from({ length: 50 }, (_, k) =>
        b.call(agent.id, "file_edit", {
          path: target(k, `x-${k}.txt`),
          old_string: "write",
          new_string: "edited",
        }),
      ),
    );
    await swapping;
    expect(readdirSync(forbidden).sort()).toEqual(["SECRET-NAME.txt", "s.txt"]);
    expect(readFileSync(join(forbidden, "s.txt"), "utf8")).toBe("SECRET");
    let landed = 0;
    for (const r of results) {
      if (r instanceof AidoError) {
        // Refused: judged under the symlink, changed after the check, or caught mid-swap.
        expect(REFUSED, r.message).toContain(r.code);
        continue;
      }
      landed++;
      expect(r.output).toMatch(/^wrote \d+ bytes to \/workspace\/allowed\/x-\d+\.txt$/);
    }
    // Both outcomes happened: the race was real.
    expect(landed).toBeGreaterThan(0);
    expect(landed).toBeLessThan(results.length);
    for (const e of edits) {
      if (e instanceof AidoError) expect(REFUSED, e.message).toContain(e.code);
      else expect(e.output).toMatch(/in \/workspace\/allowed\/x-\d+\.txt$/);
    }
  }, 120_000);

  it("never lets a read, list or grep see the forbidden folder", async () => {
    let swapped = false;
    const swapping = swap(10_000).finally(() => {
      swapped = true;
    });
    await new Promise((r) => setTimeout(r, 300));
    const call = (k: number) => {
      const pick = k % 4;
      const dir = target(k >> 2, "").slice(0, -1);
      if (pick === 0) return b.call(agent.id, "file_read", { path: `${dir}/s.txt` });
      if (pick === 1) return b.call(agent.id, "file_list", { path: dir });
      if (pick === 2) return b.call(agent.id, "grep", { pattern: "S|p", path: dir });
      return b.call(agent.id, "file_read_many", { paths: [`${dir}/s.txt`] });
    };
    // Calls go on in rounds while the links flip: on a loaded machine every call of one round
    // can be caught by the swap, and the race is shown real only once some call got through.
    const results = await Promise.all(Array.from({ length: CALLS }, (_, k) => call(k)));
    for (let round = 1; !swapped && round < 10 && !results.some((r) => !(r instanceof AidoError)); round++)
      results.push(
        ...(await Promise.all(Array.from({ length: CALLS / 4 }, (_, k) => call(round * CALLS + k)))),
      );
    await swapping;
    let seen = 0;
    for (const r of results) {
      if (r instanceof AidoError) {
        // Refused: judged under the symlink, changed after the check, or caught mid-swap.
        expect(REFUSED, r.message).toContain(r.code);
        continue;
      }
      seen++;
      // Neither the secret's content nor the name of a file only the forbidden folder holds.
      expect(r.output).not.toContain("SECRET");
    }
    expect(seen).toBeGreaterThan(0);
  }, 120_000);
});
