// Red team: an operator's `file_read:` deny rule against an agent that may write the denied
// folder. Landlock's REFER right stops moving a file between folders of different rights,
// but a rename inside one folder needs no REFER, and a hard link needs only rights the
// domain held when the rules were built: so `mv secret/k.txt k.txt`, renaming the denied
// folder, or linking the file out, followed by a file_read of the new name (a path no rule
// denies), read what the operator denied. The domain's write rules now follow its reads
// (sandbox/executor/confinement.ts): /workspace, where some names are readable and others
// (secret/) not, gets no write hierarchy rule, so nothing can be moved, renamed or linked
// in it, and Landlock refuses moving a name from secret/ into a readable folder. The agent
// may still write inside the denied folder, as file_write may: writing is not reading.

import { chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AidoError } from "../../src/errors.js";
import type { DockerSandbox } from "../../src/sandbox/docker-sandbox.js";
import { expectOk, useBench } from "./fixture.js";

const SECRET = "READ-DENIED-7781";
const RULE = "file_read: /workspace/secret/**";
const b = useBench((c) => {
  c.policy.deny.push(RULE);
  c.policy.snapshotBeforeMutation = false;
});

/** An agent that may read and write all of /workspace, with secret/k{1,2}.txt and public/ planted. */
async function writer(name: string): Promise<{ id: string; ws: string }> {
  const a = b.agent(name, [
    "tool: exec",
    "tool: file_read",
    "file_read: /workspace/**",
    "file_write: /workspace/**",
    "exec: python3 *",
    "exec: mv *",
  ]);
  await ((await b.rt.backend.acquire(a.goalId)) as DockerSandbox).ready();
  const ws = join(b.home.config.goalsDir, a.goalId, "workspace");
  const { uid, gid } = statSync(ws);
  for (const d of ["secret", "public"]) {
    mkdirSync(join(ws, d));
    chownSync(join(ws, d), uid, gid);
  }
  for (const f of ["k1.txt", "k2.txt"]) {
    writeFileSync(join(ws, "secret", f), `${SECRET}\n`);
    chownSync(join(ws, "secret", f), uid, gid);
  }
  return { id: a.id, ws };
}

const py = (code: string) => ({ command: `python3 -c "${code}"`, cwd: "/workspace/public" });

describe("a file_read: deny rule against an agent that may write the denied folder", () => {
  it("holds against mv, a hard link and renaming the folder, each followed by file_read of the new name", async () => {
    const a = await writer("mover");
    // Each attack takes its own copy of the secret; the folder rename comes last.
    const attacks: [Record<string, unknown>, string][] = [
      [
        { command: "mv /workspace/secret/k1.txt /workspace/k1.txt", cwd: "/workspace/public" },
        "/workspace/k1.txt",
      ],
      [py("import os; os.link('/workspace/secret/k2.txt', '/workspace/k2.txt')"), "/workspace/k2.txt"],
      [py("import os; os.rename('/workspace/secret', '/workspace/open')"), "/workspace/open/k1.txt"],
    ];
    for (const [input, moved] of attacks) {
      const r = await b.call(a.id, "exec", input);
      const read = await b.call(a.id, "file_read", { path: moved });
      expect(read instanceof AidoError ? read.message : read.output, String(input.command)).not.toContain(
        SECRET,
      );
      // Refused before it ran, or failed inside the domain.
      if (!(r instanceof AidoError)) expect(r.isError, `${input.command}: ${r.output}`).toBe(true);
    }
    for (const f of ["k1.txt", "k2.txt"])
      expect(readFileSync(join(a.ws, "secret", f), "utf8")).toBe(`${SECRET}\n`);
    expect(existsSync(join(a.ws, "open"))).toBe(false);
    // Writing works, where no rule denies and in the read-denied folder, and a file written
    // there stays there: moving it out to a readable name is refused like the others.
    expectOk(await b.call(a.id, "exec", py("open('/workspace/public/n.txt', 'w').write('ok')")));
    expect(readFileSync(join(a.ws, "public/n.txt"), "utf8")).toBe("ok");
    expectOk(await b.call(a.id, "exec", py("open('/workspace/secret/w.txt', 'w').write('written')")));
    expect(readFileSync(join(a.ws, "secret/w.txt"), "utf8")).toBe("written");
    const out = expectOk(
      await b.call(
        a.id,
        "exec",
        py("import os; os.rename('/workspace/secret/w.txt', '/workspace/public/w.txt')"),
      ),
    );
    expect(out.output).toContain("Invalid cross-device link");
  });
});
