// ui/web/pages/snapshots.tsx — a goal's snapshots as a timeline (snapshot.list), each
// with Restore. A restore goes through the gate on the daemon's side (snapshot.restore):
// it is audited, the workspace is snapshot first, and a restore that needs an approval
// waits for it in the inbox, which this section says while it waits.

import { useState } from "preact/hooks";
import { rpc } from "../api.js";
import { ErrorNote, Section, Time, useAnswer, visible } from "../components.js";
import type { LiveStore } from "../live.js";
import type { Snapshot, SnapshotRestore } from "../wire.js";

export function SnapshotsSection({ store, goalId }: { store: LiveStore; goalId: string }) {
  const snaps = useAnswer(
    () => rpc<{ snapshots: Snapshot[] }>("snapshot.list", { goal_id: goalId }),
    [goalId, store.state.revisions.snapshots],
  );
  const [busy, setBusy] = useState<string | undefined>(undefined);
  const [note, setNote] = useState<string | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const restore = async (id: string) => {
    setBusy(id);
    setError(undefined);
    setNote(undefined);
    try {
      const r = await rpc<SnapshotRestore>("snapshot.restore", { goal_id: goalId, snapshot_id: id });
      const failed = r.files_failed.map((f) => `${visible(f.path)} (${visible(f.reason)})`).join(", ");
      setNote(
        `Restored ${id} as ${r.as === "operator" ? "the operator" : "the goal's root agent"}: ` +
          `${r.files_restored} files restored${failed ? `; not restored: ${failed}` : ""}.`,
      );
      snaps.reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(undefined);
    }
  };
  const list = [...(snaps.value?.snapshots ?? [])].sort((a, b) => a.created_at.localeCompare(b.created_at));
  return (
    <Section title="Snapshots" id="snapshots">
      <ErrorNote error={snaps.error ?? error} />
      {busy ? (
        <p role="status">Restoring {busy}… (if the restore needs an approval, answer it in the inbox)</p>
      ) : null}
      {note ? <p role="status">{note}</p> : null}
      {list.length === 0 ? (
        <p>No snapshots of this goal.</p>
      ) : (
        <ol class="timeline">
          {list.map((s) => (
            <li key={s.id} data-snapshot={s.id}>
              <Time at={s.created_at} /> <span class="text">{s.label ?? s.id}</span>{" "}
              <span class="muted">
                ({s.files} files, {s.bytes} bytes)
              </span>{" "}
              <button
                type="button"
                disabled={busy !== undefined}
                onClick={() => restore(s.id)}
                aria-label={`Restore snapshot ${s.label ?? s.id}`}
              >
                Restore
              </button>
            </li>
          ))}
        </ol>
      )}
    </Section>
  );
}
