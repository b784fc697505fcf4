// ui/web/pages/goals.tsx — the goals page: a form to submit a goal (text, an optional
// manifest as YAML typed or read from a file, input files) through POST /api/goals, and
// every goal with its state, tokens and a Cancel button while it can still be cancelled;
// in cluster mode the node each goal runs on, and the Cluster panel (pages/cluster.tsx).

import { useState } from "preact/hooks";
import { fileAsInput, rpc, submitGoal } from "../api.js";
import { Badge, clip, ErrorNote, Section, shortId, Time, tokens } from "../components.js";
import type { LiveStore } from "../live.js";
import { ClusterPanel } from "./cluster.js";

function SubmitForm() {
  const [goal, setGoal] = useState("");
  const [manifest, setManifest] = useState("");
  const [files, setFiles] = useState<File[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);

  const onManifestFile = async (e: Event) => {
    const f = (e.currentTarget as HTMLInputElement).files?.[0];
    if (f) setManifest(await f.text());
  };
  const onSubmit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const inputs = await Promise.all(files.map(fileAsInput));
      const { goal_id } = await submitGoal({
        goal,
        ...(manifest.trim() !== "" ? { manifest } : {}),
        ...(inputs.length > 0 ? { inputs } : {}),
      });
      setGoal("");
      location.hash = `#/goals/${encodeURIComponent(goal_id)}`;
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="submit" onSubmit={onSubmit} aria-describedby="submit-help">
      <p id="submit-help" class="help">
        The goal runs in its own container; a manifest (YAML) sets the bootstrap agent's model, capabilities
        and limits, within the operator's ceiling. Input files appear under /inputs.
      </p>
      <label for="goal-text">Goal</label>
      <textarea
        id="goal-text"
        name="goal"
        rows={3}
        required
        value={goal}
        onInput={(e) => setGoal(e.currentTarget.value)}
      />
      <details>
        <summary>Manifest and input files (optional)</summary>
        <label for="goal-manifest">Manifest (YAML)</label>
        <textarea
          id="goal-manifest"
          name="manifest"
          rows={6}
          class="mono"
          value={manifest}
          onInput={(e) => setManifest(e.currentTarget.value)}
        />
        <label for="goal-manifest-file">…or read the manifest from a file</label>
        <input id="goal-manifest-file" type="file" accept=".yaml,.yml,text/yaml" onChange={onManifestFile} />
        <label for="goal-inputs">Input files</label>
        <input
          id="goal-inputs"
          type="file"
          multiple
          onChange={(e) => setFiles([...(e.currentTarget.files ?? [])])}
        />
      </details>
      <button type="submit" disabled={busy || goal.trim() === ""}>
        {busy ? "Submitting…" : "Submit goal"}
      </button>
      <ErrorNote error={error} />
    </form>
  );
}

export function GoalsPage({ store }: { store: LiveStore }) {
  const [error, setError] = useState<unknown>(undefined);
  const goals = Object.values(store.state.goals).sort((a, b) => b.created_at.localeCompare(a.created_at));
  // In cluster mode every goal names its node; a lone daemon's list has no such column.
  const clustered = goals.some((g) => g.node !== undefined);
  const cancel = async (id: string) => {
    setError(undefined);
    try {
      await rpc("goal.cancel", { goal_id: id });
    } catch (e) {
      setError(e);
    }
  };
  return (
    <>
      <ClusterPanel store={store} />
      <Section title="Submit a goal">
        <SubmitForm />
      </Section>
      <Section title="Goals">
        <ErrorNote error={error} />
        {goals.length === 0 ? (
          <p>No goals yet.</p>
        ) : (
          <table class="goals">
            <thead>
              <tr>
                <th scope="col">Goal</th>
                <th scope="col">State</th>
                {clustered ? <th scope="col">Node</th> : null}
                <th scope="col">Tokens (in / out)</th>
                <th scope="col">Submitted</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {goals.map((g) => (
                <tr key={g.goal_id} data-goal={g.goal_id}>
                  <td class="text">
                    <a href={`#/goals/${encodeURIComponent(g.goal_id)}`}>
                      {g.goal ? clip(g.goal, 300) : shortId(g.goal_id)}
                    </a>
                  </td>
                  <td>
                    <Badge state={g.state} />
                  </td>
                  {clustered ? (
                    <td class="mono" data-testid="goal-node">
                      {g.node ?? "—"}
                    </td>
                  ) : null}
                  <td>
                    {tokens(g.usage.input_tokens)} / {tokens(g.usage.output_tokens)}
                  </td>
                  <td>
                    <Time at={g.created_at} />
                  </td>
                  <td>
                    {g.state === "queued" || g.state === "running" ? (
                      <button
                        type="button"
                        onClick={() => cancel(g.goal_id)}
                        aria-label={`Cancel goal ${g.goal_id}`}
                      >
                        Cancel
                      </button>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
    </>
  );
}
