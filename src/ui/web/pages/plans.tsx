// ui/web/pages/plans.tsx — plans (plan.list) and persistent intents (intent.status) as
// read-only lists. Intents are kept per host workspace folder, so the intents list asks
// for the folder and shows its active intent and the earlier ones. The goal page shows
// its goal's plans and the intent the goal carries with the same pieces.

import { useState } from "preact/hooks";
import { rpc } from "../api.js";
import { Badge, ErrorNote, Section, shortId, Time, useAnswer } from "../components.js";
import type { Intent, Plan } from "../wire.js";

/** plan.list: every plan, or one goal's. */
export function Plans({ goalId }: { goalId?: string }) {
  const plans = useAnswer(
    () => rpc<{ plans: Plan[] }>("plan.list", goalId === undefined ? {} : { goal_id: goalId }),
    [goalId],
  );
  const list = plans.value?.plans ?? [];
  return (
    <Section title={goalId === undefined ? "Plans" : "Plans of this goal"} id="plans">
      <ErrorNote error={plans.error} />
      {list.length === 0 ? (
        <p>No plans.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Title</th>
              <th scope="col">Status</th>
              <th scope="col">Steps</th>
              <th scope="col">Simulated</th>
              <th scope="col">Goal</th>
              <th scope="col">Agent</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {list.map((p) => (
              <tr key={p.plan_id}>
                <td class="text">{p.title}</td>
                <td>
                  <Badge state={p.status} />
                </td>
                <td>{p.steps}</td>
                <td>{p.simulated_ok ? "no step denied" : "a step was denied"}</td>
                <td>
                  <a href={`#/goals/${encodeURIComponent(p.goal_id)}`} class="mono">
                    {shortId(p.goal_id)}
                  </a>
                </td>
                <td class="mono">{shortId(p.agent_id)}</td>
                <td>
                  <Time at={p.created_at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}

export function IntentItem({ intent }: { intent: Intent }) {
  return (
    <li class="intent">
      <p class="text">
        <Badge state={intent.state} /> {intent.objective}
      </p>
      <p class="muted">
        {intent.step_count} steps, {intent.tokens_spent} tokens
        {intent.budget_tokens !== null ? ` of ${intent.budget_tokens}` : ""}
        {intent.check ? `, check: ${intent.check}` : ""}
      </p>
      {intent.notes.length > 0 ? (
        <ol class="notes">
          {intent.notes.map((n) => (
            <li key={n.step} class="text">
              {n.note}
            </li>
          ))}
        </ol>
      ) : null}
    </li>
  );
}

function Intents() {
  const [workspace, setWorkspace] = useState("");
  const [answer, setAnswer] = useState<{ intent: Intent | null; history?: Intent[] } | undefined>();
  const [error, setError] = useState<unknown>(undefined);
  const look = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    try {
      setAnswer(await rpc("intent.status", { workspace, history: true }));
    } catch (err) {
      setError(err);
    }
  };
  const all = answer ? [...(answer.intent ? [answer.intent] : []), ...(answer.history ?? [])] : [];
  return (
    <Section title="Intents" id="intents">
      <form class="filters" onSubmit={look}>
        <label for="intent-workspace">Workspace folder (on the daemon's host)</label>
        <input
          id="intent-workspace"
          class="mono"
          value={workspace}
          required
          onInput={(e) => setWorkspace(e.currentTarget.value)}
        />
        <button type="submit">Show intents</button>
      </form>
      <ErrorNote error={error} />
      {answer && all.length === 0 ? <p>No intent for this folder.</p> : null}
      <ul class="intents">
        {all.map((i) => (
          <IntentItem key={i.id} intent={i} />
        ))}
      </ul>
    </Section>
  );
}

export function PlansPage() {
  return (
    <>
      <Plans />
      <Intents />
    </>
  );
}
