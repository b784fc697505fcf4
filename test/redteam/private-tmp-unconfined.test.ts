// Red team: with `sandbox.landlock: off` an exec runs with no Landlock domain and no private
// folder (no TMPDIR, HOME the container's /tmp): `mktemp` and `~/f` really write /tmp, where
// the agent holds no grant. The gate must not judge them as writes to a private folder the
// exec does not have: refused before anything runs, as a write to /tmp. (A guard: main judged
// every exec so.) The agent may read /workspace/** and write /workspace/out/** only.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { privateTmpOf } from "../../src/gate/confinement.js";
import { expectOk } from "./fixture.js";
import { expectRefused, openSharedBench, type SharedBench } from "./shared-bench.js";

let b: SharedBench;

const PROGRAMS = ["mktemp", "tempfile", "echo"];
const worker = [
  "tool: exec",
  "file_read: /workspace/**",
  "file_write: /workspace/out/**",
  ...PROGRAMS.flatMap((p) => [`exec: ${p}`, `exec: ${p} *`]),
];

/** May write /tmp as well: tempfile's folder, which a prefix with a `/` leaves. */
const tmpWriter = [...worker, "file_write: /tmp/**"];

beforeAll(async () => {
  b = await openSharedBench({
    profiles: { worker, "tmp-writer": tmpWriter },
    files: { "/workspace/out/.keep": "", "/workspace/pub/.keep": "" },
    setup: "chmod -R a+rwX /workspace",
    landlock: "off",
  });
}, 240_000);

afterAll(async () => {
  await b?.close();
});

describe("an unconfined exec's temp files are judged in /tmp", () => {
  it.each([
    ["mktemp", "mktemp", /file_write on \/tmp\/tmp\.X+ /],
    ["tempfile", "tempfile", /file_write on \/tmp /],
    ["echo x > ~/f", "echo x > ~/f", /file_write on \/tmp\/f /],
    ["echo x > $HOME/f", "echo x > $HOME/f", /file_write on \/tmp\/f /],
  ])(
    "refuses %s",
    async (_how, command, why) => {
      const r = await b.exec("worker", command);
      expectRefused(b, "worker", r, "capability", why);
    },
    60_000,
  );

  it("refuses a write to the folder a confined exec would have had", async () => {
    const tmp = privateTmpOf(b.agents.get("worker")!);
    const r = await b.exec("worker", `echo x > ${tmp}/f`);
    expectRefused(b, "worker", r, "capability", new RegExp(`file_write on ${tmp}/f`));
  }, 60_000);

  it("refuses tempfile -p with a prefix that climbs out of /tmp", async () => {
    // With no TMPDIR tempfile makes /tmp + the prefix, taken whole: /tmp/../workspace/pub/zXXXXXX.
    // It was judged a write to /tmp, which this agent may write: it ran, with no Landlock to stop it.
    const r = await b.exec("tmp-writer", "tempfile -p ../workspace/pub/z");
    expectRefused(b, "tmp-writer", r, "capability", /file_write on \/workspace\/pub\/z /);
    const ls = await b.inner.exec({ argv: ["ls", "-A", "/workspace/pub"], confinement: "unconfined" });
    expect(ls.stdout.trim()).toBe(".keep");
  }, 60_000);

  it("still runs a write the grants cover", async () => {
    expectOk(await b.exec("worker", "echo x > /workspace/out/f"));
  }, 60_000);
});
