// Red team: a malicious model with exec and file tools tries to reach files outside its
// grants through symlinks it makes itself, symlinked parent folders, "..", absolute
// paths, NUL bytes and oversize paths. Every attempt must be refused at the gate, audited
// as tool.denied, and leave the host's files byte-for-byte and mtime-for-mtime unchanged.

import {
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import { expectDenied, expectOk, useBench } from "./fixture.js";

let agent: { id: string; goalId: string };
let goalDir: string;

const WS_ONLY = [
  "tool: *",
  "file_read: /workspace/**",
  "file_write: /workspace/**",
  "exec: ln *",
  "exec: mkdir *",
  "exec: cat *",
];

const b = useBench();
beforeAll(async () => {
  agent = b.agent("intruder", WS_ONLY);
  goalDir = join(b.home.dir, "goals", agent.goalId);
  // First call creates the container and the goal's folders.
  expectOk(await b.call(agent.id, "exec", { command: "mkdir -p /workspace/ok" }));
}, 180_000);

/** A file in the goal's /output on the host, outside the agent's write grant. */
function plantOutput(name: string, content: string): { path: string; mtimeMs: number } {
  const path = join(goalDir, "output", name);
  writeFileSync(path, content);
  const past = new Date(Date.now() - 3_600_000);
  // A fixed old mtime, so that any rewrite shows.
  utimesSync(path, past, past);
  return { path, mtimeMs: statSync(path).mtimeMs };
}

describe("symlinks made by exec", () => {
  it("refuses to read, write, edit, list or grep /etc through /workspace/etc-link", async () => {
    expectOk(await b.call(agent.id, "exec", { command: "ln -s /etc /workspace/etc-link" }));
    for (const [tool, input] of [
      ["file_read", { path: "/workspace/etc-link/passwd" }],
      ["file_read", { path: "etc-link/passwd" }],
      ["file_read_many", { paths: ["/workspace/ok", "etc-link/passwd"] }],
      ["file_write", { path: "/workspace/etc-link/evil", content: "x" }],
      ["file_edit", { path: "/workspace/etc-link/passwd", old_string: "root", new_string: "toor" }],
      ["file_list", { path: "/workspace/etc-link" }],
      ["grep", { pattern: "root", path: "/workspace/etc-link" }],
      ["exec", { command: "cat passwd", cwd: "/workspace/etc-link" }],
      ["exec", { command: "cat ./passwd", cwd: "/workspace/etc-link" }],
    ] as const) {
      const e = expectDenied(
        b,
        await b.call(agent.id, tool, input),
        ErrorCode.capabilityDenied,
        agent.id,
        tool,
      );
      expect(e.message).toMatch(/\/etc/);
    }
    // An exec writing through the link is judged where the link leads: a system path.
    const w = expectDenied(
      b,
      await b.call(agent.id, "exec", { command: "cat < /dev/null > /workspace/etc-link/evil" }),
      ErrorCode.policyDenied,
      agent.id,
      "exec",
    );
    expect(w.message).toMatch(/system-path-write/);
    expect(w.message).toContain("/etc/evil");
    expect(b.rt.audit.verify().ok).toBe(true);
  });

  it("refuses to write the goal's /output through a link or a symlinked parent, creating nothing", async () => {
    const planted = plantOutput("report.md", "original\n");
    // The links are planted from the host: an exec naming /output would itself be refused.
    symlinkSync("/output/report.md", join(goalDir, "workspace", "report-link"));
    symlinkSync("/output", join(goalDir, "workspace", "out-dir"));
    for (const [tool, input] of [
      ["file_write", { path: "/workspace/report-link", content: "pwned" }],
      ["file_edit", { path: "report-link", old_string: "original", new_string: "pwned" }],
      ["file_write", { path: "/workspace/out-dir/report.md", content: "pwned" }],
      ["file_write", { path: "/workspace/out-dir/new/deep/file.md", content: "created?" }],
      ["exec", { command: "cat > /workspace/out-dir/report.md" }],
      ["exec", { command: "cat >> /workspace/report-link" }],
    ] as const) {
      expectDenied(b, await b.call(agent.id, tool, input), ErrorCode.capabilityDenied, agent.id, tool);
    }
    expect(readFileSync(planted.path, "utf8")).toBe("original\n");
    expect(statSync(planted.path).mtimeMs).toBe(planted.mtimeMs);
    expect(existsSync(join(goalDir, "output", "new"))).toBe(false);
    expect(b.rt.audit.verify().ok).toBe(true);
  });

  it("judges .. and absolute paths where they land", async () => {
    const planted = plantOutput("dots.md", "keep\n");
    for (const path of [
      "/workspace/../output/dots.md",
      "../output/dots.md",
      "/workspace/ok/../../output/dots.md",
      "/output/dots.md",
      "/output/./dots.md",
      "//output//dots.md",
      // a link whose own parent is `..`-relative: link/.. is the target's parent, not /workspace
      "/workspace/out-dir/../output/dots.md",
    ]) {
      expectDenied(
        b,
        await b.call(agent.id, "file_write", { path, content: "pwned" }),
        ErrorCode.capabilityDenied,
        agent.id,
        "file_write",
      );
    }
    expect(readFileSync(planted.path, "utf8")).toBe("keep\n");
    expect(statSync(planted.path).mtimeMs).toBe(planted.mtimeMs);
  });

  it("a link to the host's AIDO_HOME leads nowhere: the container does not have it", async () => {
    const wide = b.agent("wide-reader", [
      "tool: *",
      "file_read: /**",
      "file_write: /workspace/**",
      "exec: ln *",
    ]);
    expectOk(await b.call(wide.id, "exec", { command: `ln -s ${b.home.dir} /workspace/home-link` }));
    const r = await b.call(wide.id, "file_read", { path: "/workspace/home-link/aido.db" });
    expect(r).toBeInstanceOf(Error);
    expect((r as Error & { code: string }).code).toBe(ErrorCode.notFound);
    const keys = await b.call(wide.id, "file_list", { path: `${b.home.dir}/keys` });
    expect((keys as Error & { code: string }).code).toBe(ErrorCode.notFound);
  });

  it("refuses NUL bytes and oversize paths at the schema, audited", async () => {
    for (const path of ["/workspace/a\0/../../etc/passwd", `/workspace/${"a/".repeat(2100)}x`]) {
      for (const tool of ["file_read", "file_write", "file_list"]) {
        const input = tool === "file_write" ? { path, content: "x" } : { path };
        expectDenied(b, await b.call(agent.id, tool, input), ErrorCode.invalidInput, agent.id, tool);
      }
    }
    // A path that fits the cap but has a component longer than the kernel's NAME_MAX.
    const r = await b.call(agent.id, "file_write", { path: `/workspace/${"n".repeat(300)}`, content: "x" });
    expect(r).toBeInstanceOf(Error);
    expect(readFileSync(join(goalDir, "output", "dots.md"), "utf8")).toBe("keep\n");
    expect(b.rt.audit.verify().ok).toBe(true);
  });

  it("a denied write into a fresh folder creates neither the folder nor the file on the host", async () => {
    mkdirSync(join(goalDir, "output", "sealed"), { recursive: true });
    const before = statSync(join(goalDir, "output", "sealed")).mtimeMs;
    expectDenied(
      b,
      await b.call(agent.id, "file_write", { path: "/output/sealed/a/b.txt", content: "x" }),
      ErrorCode.capabilityDenied,
      agent.id,
      "file_write",
    );
    expect(existsSync(join(goalDir, "output", "sealed", "a"))).toBe(false);
    expect(statSync(join(goalDir, "output", "sealed")).mtimeMs).toBe(before);
  });
});
