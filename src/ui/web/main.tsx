// ui/web/main.tsx — the dashboard's shell: the header (connection state, pending
// approvals announced through an aria-live region), the navigation, and the page the
// address's #fragment names. It owns the one event stream: events go into the live
// store (live.ts); after a reconnect the lists are reloaded, since events sent while the
// stream was down are not replayed.

import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { type Connection, followEvents, rpc } from "./api.js";
import { applyEvent, LiveStore, type Topic, withGoals } from "./live.js";
import { ApprovalsPage } from "./pages/approvals.js";
import { AuditPage } from "./pages/audit.js";
import { GoalPage } from "./pages/goal.js";
import { GoalsPage } from "./pages/goals.js";
import { PlansPage } from "./pages/plans.js";
import type { Approval, Goal } from "./wire.js";

/** The version of the package the page was built from: the daemon serves its own package's page. */
declare const AIDO_VERSION: string;

type Route =
  | { page: "goals" }
  | { page: "goal"; id: string }
  | { page: "approvals" }
  | { page: "audit"; goal?: string }
  | { page: "plans" };

/** A route part decoded; one with a malformed escape (a hand-made link) stays as written. */
function decodePart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, "").split("/").map(decodePart);
  switch (parts[0]) {
    case "goals":
      return parts[1] ? { page: "goal", id: parts[1] } : { page: "goals" };
    case "approvals":
      return { page: "approvals" };
    case "audit":
      return parts[1] ? { page: "audit", goal: parts[1] } : { page: "audit" };
    case "plans":
      return { page: "plans" };
    default:
      return { page: "goals" };
  }
}

const CONNECTION_TEXT: Record<Connection, string> = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  closed: "disconnected: reload, or run `aido ui` for a new link",
};

const NAV: { page: Route["page"]; href: string; label: string }[] = [
  { page: "goals", href: "#/goals", label: "Goals" },
  { page: "approvals", href: "#/approvals", label: "Approvals" },
  { page: "audit", href: "#/audit", label: "Audit" },
  { page: "plans", href: "#/plans", label: "Plans & intents" },
];

function App({ store }: { store: LiveStore }) {
  const [route, setRoute] = useState<Route>(() => parseRoute(location.hash));
  const [, setTick] = useState(0);
  const [connection, setConnection] = useState<Connection>("connecting");

  useEffect(() => store.subscribe(() => setTick((t) => t + 1)), [store]);
  useEffect(() => {
    const onHash = () => setRoute(parseRoute(location.hash));
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  useEffect(() => {
    const loadGoals = () =>
      rpc<{ goals: Goal[] }>("goal.list", { limit: 200 }).then(
        (r) => store.update((s) => withGoals(s, r.goals)),
        () => undefined,
      );
    let connectedBefore = false;
    return followEvents(
      (ev) => store.update((s) => applyEvent(s, ev)),
      (c) => {
        setConnection(c);
        if (c === "live") {
          // What happened while the stream was down: reload the lists.
          void loadGoals();
          void rpc<{ approvals: Approval[] }>("approval.list", {}).then(
            (r) =>
              store.update((s) => {
                s.pending = r.approvals.map((a) => a.id);
              }),
            () => undefined,
          );
          // After a reconnect, every page reloads what it shows (the first connect is the load).
          if (connectedBefore) {
            store.update((s) => {
              for (const topic of Object.keys(s.revisions) as Topic[]) s.revisions[topic]++;
            });
          }
          connectedBefore = true;
        }
      },
    );
  }, [store]);

  const s = store.state;
  const current = route.page === "goal" ? "goals" : route.page;
  return (
    <div class="app">
      {/* A hash link would change the route: the button moves the focus instead. */}
      <button type="button" class="skip" onClick={() => document.getElementById("main")?.focus()}>
        Skip to content
      </button>
      <header class="top">
        <h1>
          <a href="#/goals">Aido</a>
        </h1>
        <nav aria-label="Pages">
          <ul>
            {NAV.map((n) => (
              <li key={n.page}>
                <a href={n.href} aria-current={n.page === current ? "page" : undefined}>
                  {n.label}
                  {n.page === "approvals" && s.pending.length > 0 ? (
                    <span class="count"> ({s.pending.length})</span>
                  ) : null}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <p class="version" data-testid="version">
          Aido {AIDO_VERSION}
        </p>
        <p class={`conn conn-${connection}`} role="status" data-testid="connection">
          {CONNECTION_TEXT[connection]}
        </p>
      </header>
      <div class="sr-only" aria-live="assertive" data-testid="approval-notice">
        {s.pending.length > 0 ? `${s.pending.length} approval request(s) waiting` : ""}
      </div>
      <main id="main" tabIndex={-1}>
        {route.page === "goals" && <GoalsPage store={store} />}
        {route.page === "goal" && <GoalPage store={store} goalId={route.id} />}
        {route.page === "approvals" && <ApprovalsPage store={store} />}
        {route.page === "audit" && <AuditPage initialGoal={route.goal} />}
        {route.page === "plans" && <PlansPage />}
      </main>
    </div>
  );
}

const root = document.getElementById("app");
if (root) {
  root.textContent = "";
  render(<App store={new LiveStore()} />, root);
}
