// kernel/goal-admission.ts — what a goal.submit must pass before the goal exists: a goal
// text, a manifest that parses (default manifests/bootstrap.yaml) whose grants fit the
// operator's ceilings and whose model models.allowed, and inputs that are confined
// (sandbox/inputs.ts). A refusal fails the submit, not a goal: it is audited without a
// goal id (agent.spawn_denied, as the spawn would have been; goal.refused for inputs)
// and nothing is queued or copied.

import { realpathSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config.js";
import { withoutConfigSecrets } from "../config-secrets.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { type LoadedManifest, loadManifestFile, parseManifestValue } from "../manifest/load.js";
import { type CheckedInput, checkInputs, type InputReader, inputRules } from "../sandbox/inputs.js";
import type { SubmittedBy } from "../security/approval-project.js";
import type { AuditLog } from "../security/audit.js";
import { grantsWithin } from "../security/narrowing.js";
import { requireAllowedModel } from "./spawn.js";

const MAX_GOAL_CHARS = 100_000;

export interface GoalSubmission {
  goal: string;
  /** YAML text or an object of the manifest schema; default manifests/bootstrap.yaml. */
  manifest?: unknown;
  /** Host paths (files or folders) copied into the goal's inputs/ (seen at /inputs). */
  inputs?: string[];
  /** The submitting client's project folder: its active persistent intent, if any, is carried (goal-intent.ts). */
  workspace?: string;
  /** A folder every input must lie in, resolved (aido mcp serve: its session's project folder). */
  inputsWithin?: string;
  /** The session whose reads every input entry is held to (goal.submit `inputs_as`, Sessions.projectReads). */
  inputsReader?: InputReader;
  /** Who submitted it when the user did not (goal.submit `session_id`): kept on its row, its project bound to it. */
  submittedBy?: SubmittedBy;
}

export interface AdmittedGoal {
  manifest: LoadedManifest;
  inputs: CheckedInput[];
}

/** Check a submission in the order above; throws the first refusal (audited). */
export function admitGoal(deps: { config: Config; audit: AuditLog }, s: GoalSubmission): AdmittedGoal {
  const { config, audit } = deps;
  if (typeof s.goal !== "string" || s.goal.trim() === "") {
    throw new AidoError(ErrorCode.invalidInput, "goal: must be a non-empty string", { field: "goal" });
  }
  if (s.goal.length > MAX_GOAL_CHARS) {
    throw new AidoError(ErrorCode.invalidInput, `goal: longer than ${MAX_GOAL_CHARS} characters`, {
      field: "goal",
    });
  }
  const manifest =
    s.manifest === undefined
      ? loadManifestFile(join(config.packageRoot, "manifests", "bootstrap.yaml"))
      : parseManifestValue(s.manifest, "goal.submit manifest");
  try {
    if (config.grantCeilings.length > 0) grantsWithin(config.grantCeilings, manifest.capabilities);
    const model = config.modelOverride ?? manifest.model;
    if (model !== undefined) requireAllowedModel(config, manifest.name, model);
  } catch (e) {
    const d = e instanceof AidoError ? e.details : {};
    // What the manifest says (a grant, a model) is quoted: a config's secret in it is blanked.
    const blank = (text: string) => withoutConfigSecrets(text, config);
    audit.record("agent.spawn_denied", {
      manifest: blank(manifest.name),
      reason: blank(errorMessage(e)),
      ...(Array.isArray(d.offending) ? { offending: (d.offending as string[]).map(blank) } : {}),
      ...(Array.isArray(d.keys) ? { keys: d.keys as string[] } : {}),
    });
    throw e;
  }
  return { manifest, inputs: checkedInputs(deps, s.inputs ?? [], s.inputsWithin, s.inputsReader) };
}

/** Checked before the goal exists: a refusal is audited and nothing is copied. */
function checkedInputs(
  deps: { config: Config; audit: AuditLog },
  paths: readonly unknown[],
  within: string | undefined,
  reader: InputReader | undefined,
): CheckedInput[] {
  if (!Array.isArray(paths))
    throw new AidoError(ErrorCode.invalidInput, "inputs: must be a list of absolute paths", {
      field: "inputs",
    });
  try {
    const rules = inputRules(deps.config);
    if (within !== undefined) rules.within = realWithin(within);
    if (reader !== undefined) rules.reader = reader;
    return checkInputs(paths, rules);
  } catch (e) {
    if (e instanceof AidoError) {
      const field = typeof e.details.field === "string" ? e.details.field : "inputs";
      deps.audit.record("goal.refused", { field, reason: withoutConfigSecrets(e.message, deps.config) });
    }
    throw e;
  }
}

/** The real path of goal.submit's `inputs_within`, or a refusal naming it. */
function realWithin(within: string): string {
  try {
    return realpathSync(within);
  } catch (e) {
    throw new AidoError(
      ErrorCode.invalidInput,
      `inputs_within: ${within} cannot be resolved: ${errorMessage(e)}`,
      {
        field: "inputs_within",
      },
    );
  }
}
