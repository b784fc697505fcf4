// ui/web/pages/audit.tsx — the audit browser: entries filtered by goal, agent and kind,
// newest first, a page at a time (audit.query's before_seq cursor), and Verify
// (audit.verify): either "intact, N entries" or the first bad entry, which the table
// then shows at the top of its page, highlighted.

import { useState } from "preact/hooks";
import { rpc } from "../api.js";
import { ErrorNote, Section, shortId, useAnswer, visible } from "../components.js";
import type { AuditEntry, AuditVerify } from "../wire.js";

const PAGE = 50;

interface Filters {
  goal_id: string;
  agent_id: string;
  kind: string;
}

function query(f: Filters, before: number | undefined): Record<string, unknown> {
  const q: Record<string, unknown> = { limit: PAGE };
  if (before !== undefined) q.before_seq = before;
  if (f.goal_id.trim()) q.goal_id = f.goal_id.trim();
  if (f.agent_id.trim()) q.agent_id = f.agent_id.trim();
  if (f.kind.trim()) q.kind = f.kind.trim();
  return q;
}

function VerifyResult({ v }: { v: AuditVerify }) {
  if (v.ok) {
    return (
      <p class="ok" role="status" data-testid="verify-result">
        The chain is intact: {v.entries} entries verified.
      </p>
    );
  }
  return (
    <p class="error" role="alert" data-testid="verify-result">
      The chain is broken{v.first_bad_seq !== undefined ? ` at entry ${v.first_bad_seq}` : ""}
      {v.reason ? `: ${visible(v.reason)}` : ""}.
    </p>
  );
}

export function AuditPage({ initialGoal }: { initialGoal?: string | undefined }) {
  const [draft, setDraft] = useState<Filters>({ goal_id: initialGoal ?? "", agent_id: "", kind: "" });
  const [filters, setFilters] = useState<Filters>(draft);
  /** before_seq of each page seen, the newest page (no cursor) first. */
  const [cursors, setCursors] = useState<(number | undefined)[]>([undefined]);
  const [verify, setVerify] = useState<AuditVerify | undefined>(undefined);
  const [verifyError, setVerifyError] = useState<unknown>(undefined);
  const [verifying, setVerifying] = useState(false);
  const before = cursors[cursors.length - 1];
  const page = useAnswer(
    () => rpc<{ entries: AuditEntry[] }>("audit.query", query(filters, before)),
    [filters.goal_id, filters.agent_id, filters.kind, before],
  );
  const entries = page.value?.entries ?? [];
  const bad = verify && !verify.ok ? verify.first_bad_seq : undefined;

  const apply = (e: Event) => {
    e.preventDefault();
    setFilters(draft);
    setCursors([undefined]);
  };
  const runVerify = async () => {
    setVerifying(true);
    setVerifyError(undefined);
    try {
      const v = await rpc<AuditVerify>("audit.verify", {});
      setVerify(v);
      if (!v.ok && v.first_bad_seq !== undefined) {
        // Show the bad entry: every filter off, at the top of its page.
        const none = { goal_id: "", agent_id: "", kind: "" };
        setDraft(none);
        setFilters(none);
        setCursors([undefined, v.first_bad_seq + 1]);
      }
    } catch (e) {
      setVerifyError(e);
    } finally {
      setVerifying(false);
    }
  };
  const field = (name: keyof Filters, label: string) => (
    <>
      <label for={`audit-${name}`}>{label}</label>
      <input
        id={`audit-${name}`}
        name={name}
        value={draft[name]}
        onInput={(e) => setDraft({ ...draft, [name]: e.currentTarget.value })}
      />
    </>
  );

  return (
    <>
      <Section title="Verify the chain" id="verify">
        <button type="button" onClick={runVerify} disabled={verifying}>
          {verifying ? "Verifying…" : "Verify"}
        </button>
        {verify ? <VerifyResult v={verify} /> : null}
        <ErrorNote error={verifyError} />
      </Section>
      <Section title="Audit entries" id="entries">
        <form class="filters" onSubmit={apply}>
          {field("goal_id", "Goal")}
          {field("agent_id", "Agent")}
          {field("kind", "Kind")}
          <button type="submit">Filter</button>
        </form>
        <ErrorNote error={page.error} />
        <table class="audit">
          <thead>
            <tr>
              <th scope="col">Seq</th>
              <th scope="col">Time</th>
              <th scope="col">Kind</th>
              <th scope="col">Goal</th>
              <th scope="col">Agent</th>
              <th scope="col">Payload</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((e) => (
              <tr
                key={e.seq}
                data-seq={e.seq}
                class={e.seq === bad ? "bad" : undefined}
                aria-label={e.seq === bad ? `First bad entry, seq ${e.seq}` : undefined}
              >
                <td>{e.seq}</td>
                <td class="mono">{e.time}</td>
                <td>{e.kind}</td>
                <td class="mono">{e.goal_id ? shortId(e.goal_id) : "—"}</td>
                <td class="mono">{e.agent_id ? shortId(e.agent_id) : "—"}</td>
                <td>
                  <div class="payload text mono">{visible(JSON.stringify(e.payload))}</div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {entries.length === 0 && !page.loading ? <p>No entries match.</p> : null}
        <nav class="pager" aria-label="Audit pages">
          <button
            type="button"
            disabled={cursors.length <= 1}
            onClick={() => setCursors(cursors.slice(0, -1))}
          >
            Newer
          </button>
          <button
            type="button"
            disabled={entries.length < PAGE}
            onClick={() => setCursors([...cursors, entries[entries.length - 1]?.seq])}
          >
            Older
          </button>
        </nav>
      </Section>
    </>
  );
}
