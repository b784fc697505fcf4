// Red team: interpreters under other names. `prove` runs perl test files and `pdb3` a python
// script: code no exec grant names, like `perl F` and `python3 F`. They are judged where
// interpreters are (their code arguments data, the downloaded-code rule), and the Landlock
// domain bounds what their code touches. The agent may read /workspace/** and write
// /workspace/out/** only, and run prove, pdb3 and curl.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOk } from "./fixture.js";
import { expectRefused, openSharedBench, type SharedBench } from "./shared-bench.js";

let b: SharedBench;

const PROGRAMS = ["prove", "pdb3", "curl"];
const worker = [
  "tool: exec",
  "file_read: /workspace/**",
  "file_write: /workspace/out/**",
  ...PROGRAMS.flatMap((p) => [`exec: ${p}`, `exec: ${p} *`]),
];

/** A perl test that writes where its agent may not, and says whether it could. */
const TEST = `open(my $f, ">", "/workspace/pub/z") ? print "1..1\\nok 1 wrote\\n" : print "1..1\\nok 1 refused $!\\n";\n`;
/** The same in python, for pdb3 (which stops at once without -c continue). */
const SCRIPT = `try:\n    open("/workspace/pub/y", "w").write("x")\n    print("wrote")\nexcept OSError as e:\n    print("refused", e)\n`;

beforeAll(async () => {
  b = await openSharedBench({
    profiles: { worker },
    files: { "/workspace/t/x.t": TEST, "/workspace/t/s.py": SCRIPT, "/workspace/pub/.keep": "" },
    setup: "chmod -R a+rwX /workspace",
  });
}, 240_000);

afterAll(async () => {
  await b?.close();
});

describe("prove and pdb3 are interpreters", () => {
  it("bounds what prove's test file writes by the Landlock domain", async () => {
    // A guard: the test's code is perl's, which no exec grant names; Landlock refuses the write.
    const r = expectOk(await b.exec("worker", "prove -v /workspace/t/x.t"));
    expect(r.output).toMatch(/ok 1 refused Permission denied/);
    expect(b.exists("/workspace/pub/z")).toBe(false);
  }, 60_000);

  it("bounds what pdb3's script writes by the Landlock domain", async () => {
    const r = expectOk(await b.exec("worker", "pdb3 -c continue -c quit /workspace/t/s.py"));
    expect(r.output).toMatch(/refused .*Permission denied/);
    expect(b.exists("/workspace/pub/y")).toBe(false);
  }, 60_000);

  it.each([
    ["prove $(curl ...)", "prove $(curl -s http://127.0.0.1:9/list)"],
    ["pdb3 $(curl ...)", 'pdb3 "$(curl -s http://127.0.0.1:9/name)"'],
  ])(
    "refuses %s as running downloaded code",
    async (_how, command) => {
      // prove was no interpreter to the rule: the command ran (curl's list named the tests).
      const r = await b.exec("worker", command);
      expectRefused(b, "worker", r, "policy", /rule download-pipe-shell/);
    },
    60_000,
  );
});
