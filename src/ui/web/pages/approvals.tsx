// ui/web/pages/approvals.tsx — the approvals inbox across every goal and MCP session:
// each waiting call (tool, summary, target), the agent and its lineage, what made the
// gate ask, the secrets the call carries (by kind: the blanks in it), and the four answers, each with exactly what it will cover (the daemon's
// `covers` texts), decided with one click. Below: the history of decisions and the
// standing (Allow Always) grants, each revocable.

import { Fragment } from "preact";
import { useState } from "preact/hooks";
import { rpc } from "../api.js";
import { Badge, callText, ErrorNote, Section, shortId, Time, useAnswer, visible } from "../components.js";
import type { LiveStore } from "../live.js";
import type { Approval, Grant } from "../wire.js";

type Decision = "allow_once" | "allow_session" | "allow_always" | "deny";

const ANSWERS: { decision: Decision; label: string }[] = [
  { decision: "allow_once", label: "Allow once" },
  { decision: "allow_session", label: "Allow session" },
  { decision: "allow_always", label: "Allow always" },
  { decision: "deny", label: "Deny" },
];

function coverOf(a: Approval, d: Decision): string {
  return d === "deny"
    ? "this call is refused; the agent is told and may try something else"
    : visible(a.covers[d]);
}

/** What made the gate ask, in words. */
function askedBy(a: Approval): string {
  return visible(askedByText(a));
}

function askedByText(a: Approval): string {
  const by = a.asked_by;
  if (!by) return "not recorded (a request from before Aido kept it)";
  switch (by.source) {
    case "policy.confirm":
      return `the operator's policy: ${by.rule ? `${by.rule} ` : ""}\`${by.text}\``;
    case "approval_required":
      return `the agent's manifest: approval_required lists ${by.text}`;
    case "tool_default":
      return `the tool's default: ${by.text}`;
    default:
      return `${by.source}: ${by.text}`;
  }
}

/**
 * The secrets the call carries (the daemon's API key, a proxy credential), by kind: blanked in
 * the call shown, they are what decides the answer, so they are said before anything else.
 */
function CarriesSecrets({ a }: { a: Approval }) {
  const kinds = a.carries_secrets ?? [];
  if (kinds.length === 0) return null;
  return (
    <p class="error text" data-testid="carries-secrets">
      This call carries {kinds.length === 1 ? "a secret" : "secrets"} (shown blanked below):{" "}
      {kinds.map((k) => visible(k)).join("; ")}
    </p>
  );
}

/**
 * The text of each file an exec runs as code: the call names a file (`python3 fix.py`), and
 * what the human approves is what that file holds now. Code too long to show whole is said so;
 * no standing answer covers such a call (security/approval-shown.ts).
 */
function Code({ a }: { a: Approval }) {
  const code = a.code ?? [];
  if (code.length === 0) return null;
  const notShown = code.reduce((n, c) => n + Math.max(0, c.chars - c.content.length), 0);
  return (
    <>
      {code.map((c) => (
        <Fragment key={c.path}>
          <dt>Runs</dt>
          <dd>
            <span class="mono">{visible(c.path)}</span>{" "}
            <span class="muted">
              (sha256 {c.sha256.slice(0, 16)}…, {c.chars} characters)
            </span>
            <pre class="call text" data-testid="code">
              {visible(c.content)}
            </pre>
          </dd>
        </Fragment>
      ))}
      {notShown > 0 ? (
        <dd class="error text" data-testid="code-cut">
          The code is not shown whole ({notShown} characters not shown): answer for this call only; no
          standing answer will cover it.
        </dd>
      ) : null}
    </>
  );
}

function Lineage({ a }: { a: Approval }) {
  if (!a.lineage || a.lineage.length === 0) return <span class="mono">{a.agent_id}</span>;
  return (
    <ol class="lineage" aria-label="Agent lineage, root first">
      {a.lineage.map((l) => (
        <li key={l.agent_id}>
          <span class="manifest">{visible(l.manifest)}</span>{" "}
          <span class="mono muted">{shortId(l.agent_id)}</span>
        </li>
      ))}
    </ol>
  );
}

/**
 * Whose call asks: the user's own goal's, a goal an MCP session's model submitted (a g_ goal),
 * or the session's own call (its client's direct call, under the session's pseudo-goal).
 */
function submittedByText(a: Approval): string {
  if (!a.submitted_by) return "you (not an MCP session)";
  const id = visible(a.submitted_by.session_id);
  return a.goal_id?.startsWith("g_")
    ? `MCP session ${id} (its client's model wrote the goal)`
    : `MCP session ${id}: its own call (its client's model made it, not you)`;
}

function Request({ a, onDecided }: { a: Approval; onDecided(): void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const answer = async (decision: Decision) => {
    setBusy(true);
    setError(undefined);
    try {
      await rpc("approval.respond", { id: a.id, decision });
      onDecided();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <article class="request" data-approval={a.id} aria-labelledby={`req-${a.id}`}>
      <h3 id={`req-${a.id}`}>
        <span class="tool">{visible(a.tool)}</span>: <span class="text">{visible(a.summary)}</span>
      </h3>
      <CarriesSecrets a={a} />
      <dl class="facts">
        <dt>Call</dt>
        <dd>
          <pre class="call text" data-testid="call">
            {callText(a.input)}
          </pre>
        </dd>
        <Code a={a} />
        <dt>Target</dt>
        <dd class="text">{visible(a.target)}</dd>
        {a.node ? (
          <>
            <dt>Node</dt>
            <dd class="mono" data-testid="approval-node">
              {visible(a.node)}
            </dd>
          </>
        ) : null}
        <dt>Agent</dt>
        <dd>
          <Lineage a={a} /> <span class="muted">(identity {a.identity})</span>
        </dd>
        <dt>Asked by</dt>
        <dd class="text" data-testid="asked-by">
          {askedBy(a)}
        </dd>
        <dt>Submitted by</dt>
        <dd class="text" data-testid="submitted-by">
          {submittedByText(a)}
        </dd>
        <dt>Goal</dt>
        <dd>
          {a.goal_id ? (
            <a href={`#/goals/${encodeURIComponent(a.goal_id)}`} class="mono">
              {a.goal_id}
            </a>
          ) : (
            "none (an MCP session or a direct call)"
          )}
        </dd>
        <dt>Asked</dt>
        <dd>
          <Time at={a.created_at} />, expires <Time at={a.deadline_at} />
        </dd>
      </dl>
      <ul class="answers">
        {ANSWERS.map(({ decision, label }) => (
          <li key={decision}>
            <button
              type="button"
              class={`answer answer-${decision}`}
              disabled={busy}
              aria-describedby={`cov-${a.id}-${decision}`}
              onClick={() => answer(decision)}
            >
              {label}
            </button>{" "}
            <span id={`cov-${a.id}-${decision}`} class="covers text">
              {coverOf(a, decision)}
            </span>
          </li>
        ))}
      </ul>
      <ErrorNote error={error} />
    </article>
  );
}

function Grants({ revision }: { revision: number }) {
  const [error, setError] = useState<unknown>(undefined);
  const grants = useAnswer(() => rpc<{ grants: Grant[] }>("approval.grants", {}), [revision]);
  const revoke = async (id: string) => {
    setError(undefined);
    try {
      await rpc("approval.revoke", { grant_id: id });
      grants.reload();
    } catch (e) {
      setError(e);
    }
  };
  const list = grants.value?.grants ?? [];
  return (
    <Section title="Standing grants" id="grants">
      <ErrorNote error={grants.error ?? error} />
      {list.length === 0 ? (
        <p data-testid="no-grants">No standing grants.</p>
      ) : (
        <table class="grants">
          <thead>
            <tr>
              <th scope="col">Covers</th>
              <th scope="col">Identity</th>
              <th scope="col">Granted by</th>
              <th scope="col">Expires</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {list.map((g) => (
              <tr key={g.id} data-grant={g.id}>
                <td class="text">{visible(g.target)}</td>
                <td class="mono">{g.identity}</td>
                <td>{g.decided_by ? visible(g.decided_by) : "—"}</td>
                <td>
                  <Time at={g.expires_at} />
                </td>
                <td>
                  <button
                    type="button"
                    onClick={() => revoke(g.id)}
                    aria-label={`Revoke the grant for ${visible(g.target)}`}
                  >
                    Revoke
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}

const HISTORY_PAGE = 25;

function History({ revision }: { revision: number }) {
  const [offset, setOffset] = useState(0);
  const history = useAnswer(
    () => rpc<{ approvals: Approval[] }>("approval.list", { status: "all", limit: HISTORY_PAGE, offset }),
    [revision, offset],
  );
  // "all" is newest first and includes the requests still waiting, which the inbox shows.
  const page = history.value?.approvals ?? [];
  const list = page.filter((a) => a.status !== "pending");
  return (
    <Section title="Decisions" id="history">
      <ErrorNote error={history.error} />
      {list.length === 0 ? (
        <p>No decisions yet.</p>
      ) : (
        <table class="history">
          <thead>
            <tr>
              <th scope="col">Decided</th>
              <th scope="col">Call</th>
              <th scope="col">Agent</th>
              <th scope="col">Decision</th>
              <th scope="col">By</th>
            </tr>
          </thead>
          <tbody>
            {list.map((a) => (
              <tr key={a.id} data-approval={a.id}>
                <td>
                  <Time at={a.decided_at} />
                </td>
                <td class="text">{visible(a.target)}</td>
                <td class="mono">{shortId(a.agent_id)}</td>
                <td>
                  <Badge state={a.decision ?? a.status} />
                </td>
                <td class="text">{visible(a.decided_by ?? a.close_reason ?? "—")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {offset === 0 && page.length < HISTORY_PAGE ? null : (
        <nav class="pager" aria-label="Decision pages">
          <button
            type="button"
            disabled={offset === 0}
            onClick={() => setOffset(Math.max(0, offset - HISTORY_PAGE))}
          >
            Newer
          </button>
          <button
            type="button"
            disabled={page.length < HISTORY_PAGE}
            onClick={() => setOffset(offset + HISTORY_PAGE)}
          >
            Older
          </button>
        </nav>
      )}
    </Section>
  );
}

export function ApprovalsPage({ store }: { store: LiveStore }) {
  const { revisions } = store.state;
  const pending = useAnswer(() => rpc<{ approvals: Approval[] }>("approval.list", {}), [revisions.approvals]);
  const list = pending.value?.approvals ?? [];
  return (
    <>
      <Section title="Waiting for you" id="inbox">
        <ErrorNote error={pending.error} />
        <div data-testid="inbox">
          {list.length === 0 ? (
            <p data-testid="inbox-empty">No call is waiting for an answer.</p>
          ) : (
            list.map((a) => <Request key={a.id} a={a} onDecided={pending.reload} />)
          )}
        </div>
      </Section>
      <Grants revision={revisions.grants} />
      <History revision={revisions.approvals} />
    </>
  );
}
