// ui/web/pages/goal.tsx — one goal: its state, result or error, its output files as
// downloads, and the agent tree (parent/child nesting; state, model, tokens against
// budget, inference queue wait), each agent with its tool calls and the gate's verdict
// on each. Seeded from goal.status, agent.list and the goal's audit entries, then
// filled in live by the event stream.

import { useEffect, useRef, useState } from "preact/hooks";
import { downloadOutput, listOutputs, rpc } from "../api.js";
import { Badge, ErrorNote, Section, Time, tokens, useAnswer, visible } from "../components.js";
import {
  agentTree,
  type CallView,
  type LiveStore,
  type TreeNode,
  withAgents,
  withAuditCalls,
  withGoals,
} from "../live.js";
import type { Agent, AuditEntry, Goal, Intent } from "../wire.js";
import { GoalClusterNote } from "./cluster.js";
import { IntentItem, Plans } from "./plans.js";
import { SnapshotsSection } from "./snapshots.js";

function CallRow({ call }: { call: CallView }) {
  const verdict =
    call.status === "denied"
      ? `denied${call.stage ? ` at ${call.stage}` : ""}`
      : call.status === "waiting"
        ? "waiting for approval"
        : call.status === "running"
          ? "allowed, running"
          : call.status === "failed"
            ? // A stage of the gate failed before the call ran (tool.errored): never allowed.
              call.stage
              ? `failed at ${call.stage}, did not run`
              : "allowed, failed"
            : "allowed";
  return (
    <li class={`call call-${call.status}`} data-tool={call.tool} data-status={call.status}>
      <span class="tool">{visible(call.tool)}</span> <span class="verdict">{verdict}</span>
      {call.ms !== undefined && call.status !== "denied" ? <span class="ms"> ({call.ms} ms)</span> : null}
      {call.approvalDecision ? <span class="decision"> — approval: {call.approvalDecision}</span> : null}
      {call.status === "waiting" ? (
        <>
          {" "}
          <a href="#/approvals">answer in the inbox</a>
        </>
      ) : null}
      {call.reason ? <div class="reason text">{visible(call.reason)}</div> : null}
    </li>
  );
}

function AgentNode({ node }: { node: TreeNode }) {
  const { agent } = node;
  const used = agent.inputTokens + agent.outputTokens;
  const { budget } = agent;
  return (
    <li class="agent" data-agent={agent.agent_id} data-manifest={agent.manifest}>
      <div class="agent-card">
        <h3>
          <span class="manifest">{agent.manifest}</span> <Badge state={agent.state} />
        </h3>
        <dl class="facts">
          <dt>Agent</dt>
          <dd class="mono">{agent.agent_id}</dd>
          <dt>Model</dt>
          <dd>{agent.model}</dd>
          <dt>Tokens</dt>
          <dd data-testid="tokens">
            {tokens(used)} (in {tokens(agent.inputTokens)}, out {tokens(agent.outputTokens)})
          </dd>
          {budget ? (
            <>
              <dt>Budget</dt>
              <dd data-testid="budget">
                {tokens(budget.spent)} of {tokens(budget.limit)} spent
                {budget.shared ? " (the goal's account)" : " (by it and its children)"}
              </dd>
            </>
          ) : null}
          <dt>Queue wait</dt>
          <dd data-testid="queue">
            {agent.queueWaitMs} ms{agent.queueWaiting ? ", waiting for a model slot now" : ""}
          </dd>
          {agent.parent_id ? (
            <>
              <dt>Parent</dt>
              <dd class="mono">{agent.parent_id}</dd>
            </>
          ) : null}
          {agent.description ? (
            <>
              <dt>Task</dt>
              <dd class="text">{visible(agent.description)}</dd>
            </>
          ) : null}
          {agent.stop_reason ? (
            <>
              <dt>Stopped</dt>
              <dd class="text">{visible(agent.stop_reason)}</dd>
            </>
          ) : null}
        </dl>
        {agent.calls.length > 0 ? (
          <ol class="calls" aria-label={`Tool calls of ${agent.manifest}`}>
            {agent.calls.map((c) => (
              <CallRow key={c.key} call={c} />
            ))}
          </ol>
        ) : (
          <p class="muted">No tool calls yet.</p>
        )}
      </div>
      {node.children.length > 0 ? (
        <ul class="tree" aria-label={`Children of ${agent.manifest}`}>
          {node.children.map((c) => (
            <AgentNode key={c.agent.agent_id} node={c} />
          ))}
        </ul>
      ) : null}
    </li>
  );
}

/** The persistent intent the goal carries (its folder's, when it was submitted). */
function GoalIntent({ intentId }: { intentId: string }) {
  const intent = useAnswer(
    () => rpc<{ intent: Intent | null }>("intent.status", { intent_id: intentId }),
    [intentId],
  );
  return (
    <Section title="Intent" id="intent">
      <ErrorNote error={intent.error} />
      {intent.value?.intent ? (
        <ul class="intents">
          <IntentItem intent={intent.value.intent} />
        </ul>
      ) : null}
    </Section>
  );
}

function Outputs({ goal }: { goal: Goal }) {
  const done = goal.state !== "queued" && goal.state !== "running";
  const files = useAnswer(
    () => (done ? listOutputs(goal.goal_id) : Promise.resolve({ files: [], truncated: false })),
    [goal.goal_id, done],
  );
  const [failed, setFailed] = useState<unknown>(undefined);
  if (!done) return <p class="muted">Output files are listed when the goal has ended.</p>;
  return (
    <>
      <ErrorNote error={files.error} />
      <ErrorNote error={failed} />
      {files.value && files.value.files.length === 0 ? <p>No output files.</p> : null}
      {files.value?.truncated ? (
        <p class="muted">
          Only part of the output is listed: the goal left more files than the dashboard lists (
          <code>aido output</code> copies all of them).
        </p>
      ) : null}
      <ul class="outputs">
        {(files.value?.files ?? []).map((f) => (
          <li key={f.name}>
            <button
              type="button"
              class="download"
              onClick={() => {
                setFailed(undefined);
                downloadOutput(goal.goal_id, f.name, visible(f.name.split("/").pop() as string)).catch(
                  setFailed,
                );
              }}
            >
              {visible(f.name)}
            </button>{" "}
            <span class="muted">({f.size} bytes)</span>
          </li>
        ))}
      </ul>
    </>
  );
}

export function GoalPage({ store, goalId }: { store: LiveStore; goalId: string }) {
  const [error, setError] = useState<unknown>(undefined);
  useEffect(() => {
    let current = true;
    const failed = (e: unknown) => current && setError(e);
    // The goal's status apart from its agents and calls: in a cluster those are asked of the
    // node that runs it, and a node that is gone still leaves the goal's state to show.
    rpc<Goal>("goal.status", { goal_id: goalId }).then(
      // A status without `cluster` is the cluster's: an earlier own-record mark goes.
      (status) => current && store.update((s) => withGoals(s, [{ ...status, cluster: status.cluster }])),
      failed,
    );
    Promise.all([
      rpc<{ agents: Agent[] }>("agent.list", { goal_id: goalId, include_stopped: true }),
      rpc<{ entries: AuditEntry[] }>("audit.query", { goal_id: goalId, limit: 2000 }),
    ]).then(([agents, audit]) => {
      if (!current) return;
      store.update((s) => {
        withAgents(s, agents.agents);
        withAuditCalls(s, [...audit.entries].reverse());
      });
    }, failed);
    return () => {
      current = false;
    };
    // Seeded again after the stream reconnects: what happened meanwhile is in the lists.
  }, [goalId, store, store.state.revisions.stream]);

  // Budgets and queue figures are the daemon's: read agent.list again as agents spend,
  // at most about twice a second however many events arrive.
  const agentsRevision = store.state.revisions.agents;
  const reload = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => {
    if (agentsRevision === 0 || reload.current !== undefined) return;
    reload.current = setTimeout(() => {
      reload.current = undefined;
      rpc<{ agents: Agent[] }>("agent.list", { goal_id: goalId, include_stopped: true }).then(
        (r) => store.update((s) => withAgents(s, r.agents)),
        () => undefined,
      );
    }, 500);
  }, [agentsRevision, goalId, store]);
  useEffect(() => () => clearTimeout(reload.current), []);

  const goal = store.state.goals[goalId];
  const ended = goal !== undefined && goal.state !== "queued" && goal.state !== "running";
  useEffect(() => {
    // goal.finished carries the state, not the result: read it once the goal has ended.
    if (!ended) return;
    rpc<Goal>("goal.status", { goal_id: goalId }).then(
      (status) => store.update((s) => withGoals(s, [{ ...status, cluster: status.cluster }])),
      setError,
    );
  }, [ended, goalId, store]);
  const tree = agentTree(store.state, goalId);
  const cancel = () => rpc("goal.cancel", { goal_id: goalId }).catch(setError);
  return (
    <>
      <Section title="Goal" id="goal">
        <GoalClusterNote store={store} goalId={goalId} />
        <ErrorNote error={error} />
        {goal ? (
          <>
            <p class="goal-text text">{goal.goal}</p>
            <dl class="facts">
              <dt>State</dt>
              <dd data-testid="goal-state">
                <Badge state={goal.state} />
              </dd>
              <dt>Id</dt>
              <dd class="mono">{goal.goal_id}</dd>
              {goal.node ? (
                <>
                  <dt>Node</dt>
                  <dd class="mono" data-testid="goal-node">
                    {goal.node}
                    {goal.submitted_via && goal.submitted_via !== goal.node ? (
                      <span class="muted"> (submitted via {goal.submitted_via})</span>
                    ) : null}
                  </dd>
                </>
              ) : null}
              <dt>Submitted</dt>
              <dd>
                <Time at={goal.created_at} />
              </dd>
              <dt>Tokens</dt>
              <dd>
                in {tokens(goal.usage.input_tokens)}, out {tokens(goal.usage.output_tokens)}
              </dd>
            </dl>
            {goal.state === "queued" || goal.state === "running" ? (
              <button type="button" onClick={cancel}>
                Cancel goal
              </button>
            ) : null}
            {goal.result ? (
              <>
                <h3>Result</h3>
                <pre class="result text" data-testid="goal-result">
                  {visible(goal.result)}
                </pre>
              </>
            ) : null}
            {goal.error ? <p class="error text">{visible(goal.error)}</p> : null}
            <p>
              <a href={`#/audit/${encodeURIComponent(goalId)}`}>Audit entries of this goal</a>
            </p>
          </>
        ) : (
          <p>Loading…</p>
        )}
      </Section>
      <Section title="Agents" id="agents">
        {tree.length === 0 ? (
          <p class="muted">No agents yet.</p>
        ) : (
          <ul class="tree" data-testid="agent-tree">
            {tree.map((n) => (
              <AgentNode key={n.agent.agent_id} node={n} />
            ))}
          </ul>
        )}
      </Section>
      <Section title="Output files" id="outputs">
        {goal ? <Outputs goal={goal} /> : null}
      </Section>
      <SnapshotsSection store={store} goalId={goalId} />
      {goal?.intent_id ? <GoalIntent intentId={goal.intent_id} /> : null}
      <Plans goalId={goalId} />
    </>
  );
}
