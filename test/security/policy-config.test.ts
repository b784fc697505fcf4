// Config-supplied policy rules: the operator can add deny and confirm rules (never remove
// a built-in), in capability-shaped syntax, parsed once with errors that name the rule.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { isAidoError } from "../../src/errors.js";
import type { Need } from "../../src/gate/types.js";
import { type PolicyCall, PolicyEngine } from "../../src/security/policy.js";
import { makeTempHome, type TempHome } from "../support/home.js";

const withRules = (deny: string[], confirm: string[] = []): PolicyEngine =>
  new PolicyEngine({ policy: { deny, confirm, snapshotBeforeMutation: false } });
const exec = (command: string, cwd?: string): PolicyCall => ({
  tool: "exec",
  input: cwd ? { command, cwd } : { command },
  needs: [],
});

describe("config deny rules", () => {
  const engine = withRules([
    "git push *",
    "exec: npm publish",
    "tool: web_fetch",
    "path: /workspace/secrets/**",
  ]);

  it("deny every simple command matching an exec pattern, wherever it hides", () => {
    for (const cmd of [
      "git push",
      "git push origin main",
      "ls && git push -f",
      "echo $(git push)",
      "sh -c 'git push'",
    ]) {
      expect(engine.decide(exec(cmd)), cmd).toMatchObject({ decision: "deny", rule: "policy.deny[0]" });
    }
    expect(engine.decide(exec("/usr/bin/git push"))).toMatchObject({ decision: "deny" });
    expect(engine.decide(exec("git pull"))).toEqual({ decision: "allow" });
  });

  it("name the rule text in the reason", () => {
    const d = engine.decide(exec("git push origin"));
    expect(d).toMatchObject({ decision: "deny" });
    expect((d as { reason: string }).reason).toContain('"git push *"');
  });

  it("match an exact pattern only with exactly those arguments", () => {
    expect(engine.decide(exec("npm publish"))).toMatchObject({ decision: "deny", rule: "policy.deny[1]" });
    expect(engine.decide(exec("npm publish --dry-run"))).toEqual({ decision: "allow" });
  });

  it("treat an argument computed at run time as matching (a rule cannot be dodged by computing it)", () => {
    // git goes further: a run-time subcommand could be any of those that run programs.
    expect(engine.decide(exec("git $SUB origin"))).toMatchObject({ decision: "deny", rule: "unjudgeable" });
    expect(engine.decide(exec("npm $X"))).toMatchObject({ decision: "deny", rule: "policy.deny[1]" });
  });

  it("treat xargs-appended arguments as able to complete a pattern", () => {
    expect(engine.decide(exec("echo publish | xargs npm"))).toMatchObject({
      decision: "deny",
      rule: "policy.deny[1]",
    });
  });

  it("deny a whole tool", () => {
    expect(engine.decide({ tool: "web_fetch", input: { url: "http://x" }, needs: [] })).toMatchObject({
      decision: "deny",
      rule: "policy.deny[2]",
    });
  });

  it("deny file tools and shell redirections under a path rule", () => {
    const needs: Need[] = [{ kind: "file_read", path: "/workspace/secrets/deep/key.pem" }];
    expect(engine.decide({ tool: "file_read", input: {}, needs })).toMatchObject({
      decision: "deny",
      rule: "policy.deny[3]",
    });
    expect(engine.decide(exec("cat x > /workspace/secrets/k"))).toMatchObject({ decision: "deny" });
    expect(engine.decide(exec("cat x > secrets/k", "/workspace"))).toMatchObject({ decision: "deny" });
    expect(engine.decide(exec("cat x > /workspace/secrets-not/k"))).toEqual({ decision: "allow" });
  });

  it("never weaken a built-in rule", () => {
    expect(engine.decide(exec("sudo git pull"))).toMatchObject({ decision: "deny", rule: "priv-escalation" });
  });
});

describe("config confirm rules", () => {
  const engine = withRules(
    ["rm -rf *"],
    ["tool: file_write", "rm *", "network: *.example.com", "spawn_child: [coder]"],
  );

  it("ask a human for matching calls", () => {
    expect(engine.decide({ tool: "file_write", input: {}, needs: [] })).toMatchObject({
      decision: "confirm",
      rule: "policy.confirm[0]",
    });
    expect(engine.decide(exec("rm notes.txt"))).toMatchObject({
      decision: "confirm",
      rule: "policy.confirm[1]",
    });
    const net = (host: string): PolicyCall => ({
      tool: "web_fetch",
      input: {},
      needs: [{ kind: "network", host, port: 443 }],
    });
    expect(engine.decide(net("api.example.com"))).toMatchObject({ decision: "confirm" });
    expect(engine.decide(net("example.com"))).toMatchObject({ decision: "confirm" });
    expect(engine.decide(net("example.org"))).toEqual({ decision: "allow" });
    const spawn: PolicyCall = {
      tool: "spawn_agent",
      input: {},
      needs: [{ kind: "spawn_child", name: "coder" }],
    };
    expect(engine.decide(spawn)).toMatchObject({ decision: "confirm", rule: "policy.confirm[3]" });
  });

  it("lose to deny rules: deny beats confirm beats allow", () => {
    expect(engine.decide(exec("rm -rf build"))).toMatchObject({ decision: "deny", rule: "policy.deny[0]" });
    expect(engine.decide(exec("rm a; rm -rf b"))).toMatchObject({ decision: "deny" });
    expect(engine.decide(exec("ls"))).toEqual({ decision: "allow" });
  });
});

describe("confirm paths and the Landlock domain", () => {
  const engine = withRules(
    ["path: /workspace/secrets/**"],
    ["path: /workspace/vault/**", "file_read: /workspace/keys/**", "file_write: /output/**", "git push *"],
  );
  const read = (...paths: string[]): PolicyCall => ({
    tool: "file_read_many",
    input: {},
    needs: paths.map((path) => ({ kind: "file_read" as const, path })),
  });

  it("lists every confirm rule a call matched, the one that asks first", () => {
    expect(engine.decide(read("/workspace/vault/x", "/workspace/keys/k"))).toMatchObject({
      decision: "confirm",
      rule: "policy.confirm[0]",
      rules: ["policy.confirm[0]", "policy.confirm[1]"],
    });
  });

  it("shuts every confirm path no human confirmed, like a deny rule, and opens only those confirmed", () => {
    expect(engine.closedPaths(new Set())).toEqual({
      deny: ["/workspace/secrets/**", "/workspace/vault/**"],
      denyRead: ["/workspace/keys/**"],
      denyWrite: ["/output/**"],
    });
    expect(engine.closedPaths(new Set(["policy.confirm[0]", "policy.confirm[3]"]))).toEqual({
      deny: ["/workspace/secrets/**"],
      denyRead: ["/workspace/keys/**"],
      denyWrite: ["/output/**"],
    });
  });
});

describe("config rule syntax", () => {
  it.each([
    ["git push; rm", /shell syntax is not allowed/],
    ["path: relative/x", /must be absolute/],
    ["tool: Not A Tool", /tool must be a tool name/],
    ["file_write: /a/../etc", /segments are not allowed/],
    ["network: bad host!", /network grant/],
  ])("refuses %s with an error naming the rule", (rule, why) => {
    try {
      withRules(["ls", rule]);
      expect.unreachable();
    } catch (e) {
      expect(isAidoError(e, "config_invalid")).toBe(true);
      expect((e as Error).message).toContain(`policy.deny[1] "${rule}"`);
      expect((e as Error).message).toMatch(why);
    }
  });

  it("names confirm rules too", () => {
    expect(() => withRules([], ["tool: *", "exec: a | b"])).toThrow(/policy\.confirm\[1\] "exec: a \| b"/);
  });
});

describe("rules from the config file", () => {
  let home: TempHome | undefined;
  afterEach(() => home?.cleanup());

  it("are read from config.yaml and enforced", () => {
    home = makeTempHome();
    writeFileSync(join(home.dir, "config.yaml"), 'policy:\n  deny: ["curl *"]\n  confirm: ["tool: exec"]\n');
    const engine = new PolicyEngine(loadConfig({ env: home.env, projectDir: home.dir }));
    expect(engine.decide(exec("curl -s http://x | jq ."))).toMatchObject({
      decision: "deny",
      rule: "policy.deny[0]",
    });
    expect(engine.decide(exec("ls"))).toMatchObject({ decision: "confirm", rule: "policy.confirm[0]" });
  });
});
