// sandbox.yaml is strict: every mistake names the key and its line, and the operator's
// config is a ceiling a sandbox file cannot raise. Inputs never reach outside the project.

import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isAidoError } from "../../src/errors.js";
import { resolveInputs } from "../../src/humansandbox/paths.js";
import { Scrubber } from "../../src/humansandbox/scrub.js";
import { parseSandboxSpec, SandboxSpecError } from "../../src/humansandbox/spec.js";
import { inert, inertLines } from "../../src/security/terminal-text.js";
import { makeTempHome } from "../support/home.js";

/** A runtime home no input here comes near: these tests are about the project's store. */
const ELSEWHERE = {
  home: "/nonexistent-aido-home",
  keysDir: "/nonexistent-aido-home/keys",
  dbPath: "/nonexistent-aido-home/aido.db",
  auditHeadPath: "/nonexistent-aido-home/audit.head",
};

const home = makeTempHome();
const config = home.config;
afterAll(() => home.cleanup());

function issuesOf(text: string) {
  try {
    parseSandboxSpec(text, "sandbox.yaml", config, "proj");
  } catch (e) {
    expect(e).toBeInstanceOf(SandboxSpecError);
    return (e as SandboxSpecError).issues;
  }
  throw new Error("expected the sandbox file to be refused");
}

describe("sandbox.yaml", () => {
  it("reads a full file with units resolved", () => {
    const s = parseSandboxSpec(
      [
        "name: migrate",
        "runtime: python:3.11",
        "ttl: 2h",
        "inputs: [data/users.csv, 'data/*.json']",
        "outputs: [out/users.sql]",
        "permissions: { filesystem: readonly, network: false }",
        "env: { DB_NAME: users, RETRIES: 3 }",
        "resources: { cpu: 0.5, memory: 512m, timeout: 90s }",
      ].join("\n"),
      "sandbox.yaml",
      config,
      "proj",
    );
    expect(s).toMatchObject({
      name: "migrate",
      runtime: "python:3.11",
      ttlMs: 7_200_000,
      inputs: ["data/users.csv", "data/*.json"],
      filesystem: "readonly",
      network: false,
      env: { DB_NAME: "users", RETRIES: "3" },
      cpus: 0.5,
      memoryMb: 512,
      timeoutMs: 90_000,
    });
  });

  it("defaults to no network, a read-write workspace and the operator's limits", () => {
    const s = parseSandboxSpec("", "(defaults)", config, "proj");
    expect(s).toMatchObject({ name: "proj", network: false, filesystem: "readwrite", inputs: [], env: {} });
    expect(s.memoryMb).toBe(config.sandbox.memoryMb);
  });

  it("reads permissions.network as false, true or a host list in network grant syntax", () => {
    const net = (v: string) =>
      parseSandboxSpec(`permissions: { network: ${v} }`, "s.yaml", config, "p").network;
    expect(net("false")).toBe(false);
    expect(net("true")).toBe(true);
    expect(
      net("[PyPI.org, 'api.example.com:8080', 'h.test:*', '*.npmjs.org', 10.1.2.3, '[::1]:443', pypi.org]"),
    ).toEqual(["pypi.org", "api.example.com:8080", "h.test:*", "*.npmjs.org", "10.1.2.3", "[::1]:443"]);
  });

  it("refuses a bad host list entry with the grant parser's words, naming its line and index", () => {
    const issues = issuesOf("permissions:\n  network:\n    - ok.test\n    - 'bad host'\n    - 'x.test:0'\n");
    expect(issues).toEqual([
      expect.objectContaining({
        path: "permissions.network.1",
        line: 4,
        message: expect.stringMatching(
          /"bad host": invalid capability "network: bad host": network grant must be/,
        ),
      }),
      expect.objectContaining({
        path: "permissions.network.2",
        line: 5,
        message: expect.stringMatching(/port "0" must be a number 1\.\.65535 or \*/),
      }),
    ]);
    expect(issuesOf("permissions: { network: [] }")[0]?.message).toMatch(/at least one host/);
    expect(issuesOf("permissions: { network: some }")[0]?.message).toMatch(
      /false, true \(all\), or a list of hosts/,
    );
  });

  it("names an unknown key and its line", () => {
    expect(issuesOf("name: x\nruntime: python:3.11\nnetwork: true\n")).toEqual([
      { path: "network", message: 'unknown key "network"', line: 3 },
    ]);
  });

  it("names a bad ttl and its line", () => {
    const [i] = issuesOf("name: x\n\nttl: forever\n");
    expect(i).toMatchObject({ path: "ttl", line: 3 });
    expect(i?.message).toMatch(/duration/);
  });

  it("names a nested unknown key under permissions with its line", () => {
    expect(issuesOf("permissions:\n  filesystem: readonly\n  sudo: true\n")).toEqual([
      { path: "permissions.sudo", message: 'unknown key "sudo"', line: 3 },
    ]);
  });

  it("refuses memory or a ttl above the operator's config, naming the key", () => {
    const issues = issuesOf(`ttl: 1000d\nresources:\n  memory: ${config.sandbox.memoryMb * 2}m\n`);
    expect(issues.map((i) => [i.path, i.line])).toEqual([
      ["ttl", 1],
      ["resources.memory", 3],
    ]);
  });

  it("refuses '..' in inputs and absolute outputs", () => {
    const issues = issuesOf("inputs: [../secrets.txt]\noutputs: [/etc/passwd]\n");
    expect(issues.map((i) => i.path)).toEqual(["inputs.0", "outputs.0"]);
  });

  it("refuses a duplicate key with its line", () => {
    const [i] = issuesOf("ttl: 1h\nttl: 2h\n");
    expect(i?.line).toBe(2);
  });

  it("the error message itself names the file, line and key", () => {
    expect(() => parseSandboxSpec("ttl: 5 minutes\n", "sandbox.yaml", config, "p")).toThrow(
      /sandbox\.yaml:1: ttl:/,
    );
  });
});

describe("inputs", () => {
  const project = mkdtempSync(join(tmpdir(), "aido-hs-inputs-"));
  const outside = mkdtempSync(join(tmpdir(), "aido-hs-outside-"));
  afterAll(() => {
    rmSync(project, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });
  mkdirSync(join(project, "data", "deep"), { recursive: true });
  writeFileSync(join(project, "data", "a.csv"), "a");
  writeFileSync(join(project, "data", "b.json"), "b");
  writeFileSync(join(project, "data", "deep", "c.csv"), "c");
  writeFileSync(join(outside, "secret"), "s");

  it("expands globs to one read-only mount per match under /inputs", () => {
    const m = resolveInputs(project, ["data/*.csv", "data/**/c.csv"], ELSEWHERE);
    expect(m.map((x) => x.target)).toEqual(["/inputs/data/a.csv", "/inputs/data/deep/c.csv"]);
  });

  it("refuses a pattern that matches nothing (a typo must not run against no data)", () => {
    expect(() => resolveInputs(project, ["data/*.xlsx"], ELSEWHERE)).toThrow(/matches nothing/);
  });

  it("refuses a symlink planted in the project that points outside it", () => {
    symlinkSync(join(outside, "secret"), join(project, "data", "link.csv"));
    try {
      resolveInputs(project, ["data/*.csv"], ELSEWHERE);
      throw new Error("expected a refusal");
    } catch (e) {
      expect(isAidoError(e)).toBe(true);
      expect((e as Error).message).toMatch(/link\.csv.*outside the project/);
    }
  });
});

describe("env scrubbing", () => {
  it("replaces every occurrence of a value with its name, longest first", () => {
    const s = new Scrubber({ TOKEN: "abcd1234", SHORT: "on", PREFIX: "abcd" });
    expect(s.scrub("x abcd1234 y abcd on")).toBe("x [env:TOKEN] y [env:PREFIX] on");
  });

  it("finds a value in the terminal-safe form an error was written in before it was scrubbed", () => {
    // A destroy's error names a task's file made inert where it was raised (folders.ts): a
    // value with a tab or an invisible character arrives escaped.
    const s = new Scrubber({ TOKEN: "ab\tcd\u200b12" });
    s.hide("pw\x1bword");
    expect(s.scrub(inert("rm: x/ab\tcd\u200b12: busy"))).toBe("rm: x/[env:TOKEN]: busy");
    expect(s.scrub(inertLines("x ab\tcd\u200b12"))).toBe("x [env:TOKEN]");
    expect(s.scrub("raw ab\tcd\u200b12 and pw\x1bword")).toBe("raw [env:TOKEN] and [hidden]");
    expect(s.scrub(inert("pw\x1bword"))).toBe("[hidden]");
  });
});
