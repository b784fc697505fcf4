import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import { failure, useConfigFolders } from "./fixture.js";

describe("config", () => {
  let home: string;
  let project: string;
  const { load } = useConfigFolders((f) => ({ home, project } = f));

  it("builds defaults from the environment alone", () => {
    const c = load({ AIDO_MAX_CONCURRENT_INFERENCE: "5", AIDO_SPAWN_BATCH_CAP: "2" });
    expect(c.home).toBe(home);
    expect(c.socketPath).toBe(join(home, "agentd.sock"));
    expect(c.inference.maxConcurrent).toBe(5);
    expect(c.limits.spawnBatchCap).toBe(2);
    expect(c.grantCeilings).toEqual([]);
  });

  it("refuses a bad environment value, naming the variable", () => {
    const e = failure(() => load({ AIDO_MAX_CONCURRENT_INFERENCE: "lots" }));
    expect(e.code).toBe(ErrorCode.configInvalid);
    expect(e.message).toContain("AIDO_MAX_CONCURRENT_INFERENCE");
  });

  it("refuses an unknown key in config.yaml with the file, key and line", () => {
    writeFileSync(join(home, "config.yaml"), "limits:\n  max_depth: 2\n  max_dpeth: 3\n");
    const e = failure(() => load());
    expect(e.message).toContain(`${join(home, "config.yaml")}:3`);
    expect(e.message).toContain("max_dpeth");
  });

  it("takes the daemon's connection caps with defaults, and refuses a bad one naming the key", () => {
    const d = load().daemon;
    expect([d.maxConnections, d.mcpMaxHttpSessions, d.mcpMaxQueuedCalls]).toEqual([1024, 32, 256]);
    writeFileSync(
      join(home, "config.yaml"),
      "daemon:\n  max_connections: 8\n  mcp_max_http_sessions: 2\n  mcp_max_queued_calls: 4\n",
    );
    expect(load().daemon).toMatchObject({ maxConnections: 8, mcpMaxHttpSessions: 2, mcpMaxQueuedCalls: 4 });
    for (const key of ["max_connections", "mcp_max_http_sessions", "mcp_max_queued_calls"]) {
      writeFileSync(join(home, "config.yaml"), `daemon:\n  ${key}: 0\n`);
      const e = failure(() => load());
      expect(e.code).toBe(ErrorCode.configInvalid);
      expect(e.message).toContain(`daemon.${key}`);
    }
  });

  it("refuses a malformed grant in the operator's ceiling", () => {
    writeFileSync(join(home, "config.yaml"), 'grants: ["file_read: relative/path"]\n');
    expect(failure(() => load()).message).toContain("grants.0");
  });

  it("lets a project file lower limits and add deny rules", () => {
    writeFileSync(join(home, "config.yaml"), "limits:\n  max_depth: 3\npolicy:\n  deny: ['git push *']\n");
    writeFileSync(
      join(project, ".aido", "config.yaml"),
      "limits:\n  max_depth: 1\npolicy:\n  deny: ['curl *']\n",
    );
    const c = load();
    expect(c.limits.maxDepth).toBe(1);
    expect(c.policy.deny).toEqual(["git push *", "curl *"]);
  });

  it("never lets a project file raise a limit above the operator's", () => {
    writeFileSync(join(home, "config.yaml"), "limits:\n  max_depth: 2\n");
    writeFileSync(join(project, ".aido", "config.yaml"), "limits:\n  max_depth: 9\n");
    expect(load().limits.maxDepth).toBe(2);
  });

  it("lets a project file only lower the host caps (workspace quota, inputs), below the default too", () => {
    writeFileSync(
      join(project, ".aido", "config.yaml"),
      "sandbox:\n  workspace_max_mb: 999999\n  inputs_max_files: 10\n",
    );
    const raised = load().sandbox;
    expect([raised.workspaceMaxMb, raised.inputsMaxMb, raised.inputsMaxFiles]).toEqual([1024, 512, 10]);
    writeFileSync(join(home, "config.yaml"), "sandbox:\n  workspace_max_mb: 4096\n  inputs_max_mb: 100\n");
    writeFileSync(
      join(project, ".aido", "config.yaml"),
      "sandbox:\n  workspace_max_mb: 64\n  inputs_max_mb: 200\n",
    );
    const lowered = load().sandbox;
    expect([lowered.workspaceMaxMb, lowered.inputsMaxMb]).toEqual([64, 100]);
  });

  it("caps the snapshot store at the workspace cap unless set, and lets a project file only lower it", () => {
    expect(load().sandbox.snapshotsMaxMb).toBe(1024);
    writeFileSync(join(home, "config.yaml"), "sandbox:\n  workspace_max_mb: 64\n");
    expect(load().sandbox.snapshotsMaxMb).toBe(64);
    // The operator's workspace cap is what a project may lower the snapshots cap from.
    writeFileSync(join(project, ".aido", "config.yaml"), "sandbox:\n  snapshots_max_mb: 5000\n");
    expect(load().sandbox.snapshotsMaxMb).toBe(64);
    writeFileSync(join(project, ".aido", "config.yaml"), "sandbox:\n  snapshots_max_mb: 8\n");
    expect(load().sandbox).toMatchObject({ workspaceMaxMb: 64, snapshotsMaxMb: 8 });
    writeFileSync(join(home, "config.yaml"), "sandbox:\n  workspace_max_mb: 64\n  snapshots_max_mb: 256\n");
    writeFileSync(join(project, ".aido", "config.yaml"), "sandbox:\n  snapshots_max_mb: 512\n");
    expect(load().sandbox.snapshotsMaxMb).toBe(256);
  });

  it("never lets a project file raise a number the operator left at its default", () => {
    writeFileSync(
      join(project, ".aido", "config.yaml"),
      "sandbox:\n  memory_mb: 999999\n  pids: 100000\nlimits:\n  goal_max_tokens: 999999999\n  max_depth: 2\nweb_fetch:\n  max_bytes: 999999999\n",
    );
    const c = load();
    expect([c.sandbox.memoryMb, c.sandbox.pids, c.limits.goalMaxTokens, c.webFetch.maxBytes]).toEqual([
      1024,
      256,
      2_000_000,
      2 * 1024 * 1024,
    ]);
    expect(c.limits.maxDepth).toBe(2);
  });

  it("reads the dashboard's port and upload cap from the operator's file; a project may only lower the cap", () => {
    expect(load().ui).toMatchObject({ port: 0, maxUploadMb: 10 });
    writeFileSync(join(home, "config.yaml"), "ui:\n  port: 7878\n  max_upload_mb: 20\n");
    writeFileSync(join(project, ".aido", "config.yaml"), "ui:\n  max_upload_mb: 5\n");
    expect(load().ui).toMatchObject({ port: 7878, maxUploadMb: 5 });
    writeFileSync(join(project, ".aido", "config.yaml"), "ui:\n  port: 7878\n");
    expect(failure(() => load()).message).toContain("ui.port can only be set in the operator's config");
    writeFileSync(join(home, "config.yaml"), "ui:\n  port: 70000\n");
    rmSync(join(project, ".aido", "config.yaml"));
    expect(failure(() => load()).message).toContain("ui.port");
    writeFileSync(join(home, "config.yaml"), "ui:\n  prot: 1\n");
    expect(failure(() => load()).message).toContain("prot");
  });

  it("keeps the project's grant list as a second ceiling instead of replacing the operator's", () => {
    writeFileSync(join(home, "config.yaml"), 'grants: ["file_read: /workspace/**"]\n');
    writeFileSync(join(project, ".aido", "config.yaml"), 'grants: ["file_read: /**"]\n');
    expect(load().grantCeilings).toEqual([["file_read: /workspace/**"], ["file_read: /**"]]);
  });

  it("takes snapshots before mutations by default, and a project cannot turn that off unless the operator did", () => {
    expect(load().policy.snapshotBeforeMutation).toBe(true);
    writeFileSync(join(project, ".aido", "config.yaml"), "policy:\n  snapshot_before_mutation: false\n");
    expect(failure(() => load()).message).toContain("policy.snapshot_before_mutation cannot be turned off");
    writeFileSync(join(home, "config.yaml"), "policy:\n  snapshot_before_mutation: false\n");
    expect(load().policy.snapshotBeforeMutation).toBe(false);
  });

  it("refuses a project file that turns off snapshots or swaps the image", () => {
    writeFileSync(join(home, "config.yaml"), "policy:\n  snapshot_before_mutation: true\n");
    writeFileSync(join(project, ".aido", "config.yaml"), "policy:\n  snapshot_before_mutation: false\n");
    expect(failure(() => load()).message).toContain("cannot be turned off");
    writeFileSync(join(project, ".aido", "config.yaml"), "sandbox:\n  image: evil:latest\n");
    expect(failure(() => load()).message).toContain("sandbox.image");
  });

  it("embeds memories locally unless the operator chooses an endpoint; a project file cannot send them to one", () => {
    writeFileSync(join(project, ".aido", "config.yaml"), "memory:\n  embedder: openai\n");
    const e = failure(() => load());
    expect(e.code).toBe(ErrorCode.configInvalid);
    expect(e.message).toContain("memory.embedder can only be set in the operator's config");
    expect(e.message).toContain(join(project, ".aido", "config.yaml"));
    writeFileSync(join(project, ".aido", "config.yaml"), "memory:\n  embedding_model: openai-compat/x\n");
    expect(failure(() => load()).message).toContain(
      "memory.embedding_model can only be set in the operator's config",
    );
    writeFileSync(join(project, ".aido", "config.yaml"), "memory:\n  embedder: local\n");
    expect(load().memory.embedder).toBe("local");
    writeFileSync(join(home, "config.yaml"), "memory:\n  embedder: openai\n  embedding_model: openai/m\n");
    writeFileSync(
      join(project, ".aido", "config.yaml"),
      "memory:\n  embedder: openai\n  embedding_model: openai/m\n",
    );
    expect(load().memory).toMatchObject({ embedder: "openai", embeddingModel: "openai/m" }); // restated
  });

  it("keeps Landlock on unless the operator turns it off; a project file can only turn it on", () => {
    expect(load().sandbox.landlock).toBe("on");
    writeFileSync(join(project, ".aido", "config.yaml"), "sandbox:\n  landlock: off\n");
    const e = failure(() => load());
    expect(e.code).toBe(ErrorCode.configInvalid);
    expect(e.message).toContain("sandbox.landlock can only be turned off in the operator's config");
    writeFileSync(join(home, "config.yaml"), "sandbox:\n  landlock: off\n");
    expect(load().sandbox.landlock).toBe("off"); // the project restates the operator's choice
    writeFileSync(join(project, ".aido", "config.yaml"), "sandbox:\n  landlock: on\n");
    expect(load().sandbox.landlock).toBe("on");
    writeFileSync(join(home, "config.yaml"), "sandbox:\n  landlock: maybe\n");
    expect(failure(() => load()).message).toContain("sandbox.landlock");
  });

  it("allows the shipped manifests' models and AIDO_MODEL when models.allowed is not set", () => {
    expect(load().models.allowed).toEqual([["anthropic/claude-sonnet-4-5"]]);
    expect(load({ AIDO_MODEL: "openai/gpt-4o" }).models.allowed).toEqual([
      ["anthropic/claude-sonnet-4-5", "openai/gpt-4o"],
    ]);
  });

  it("takes models.allowed from the operator's file, and a project's list as a second ceiling", () => {
    writeFileSync(join(home, "config.yaml"), 'models:\n  allowed: ["anthropic/*", "ollama/*"]\n');
    writeFileSync(join(project, ".aido", "config.yaml"), 'models:\n  allowed: ["ollama/llama3*"]\n');
    expect(load({ AIDO_MODEL: "openai/gpt-4o" }).models.allowed).toEqual([
      ["anthropic/*", "ollama/*"],
      ["ollama/llama3*"],
    ]);
  });

  it("refuses a models.allowed entry that is not a provider/model glob, naming it", () => {
    writeFileSync(join(home, "config.yaml"), 'models:\n  allowed: ["anthropic/*", "gpt-4o"]\n');
    const e = failure(() => load());
    expect(e.message).toContain("models.allowed.1");
    expect(e.message).toContain('"provider/model"');
  });
});
