// scripts/demo-turns.ts — what the model says in the bundled demo (demo/), when it is
// recorded from the scripted provider (scripts/record-demo.ts without --real). One
// script per agent, picked by a marker in its system prompt:
//
//   bootstrap   spawns three `coder` children at once (one per region, each holding only
//               its own CSV and its own /workspace folder), reads their totals, writes
//               /output/report.md (the demo's config asks a human first) and answers.
//   coder × 3   writes a small Python script, runs it on its region's CSV, answers with
//               the totals the script printed. The west child first tries to fetch
//               exchange rates with curl, which its grants do not allow: the gate denies it.
//
// Answers that depend on what the tools returned (the children's totals, the report) are
// functions of the request, so the recording holds what the runtime really computed.
// Usage is fixed per turn: the recording must not depend on the ids a run happens to get.

import type { RecordedRequest, Turn } from "../test/support/provider-server.js";
import { turn } from "../test/support/provider-server.js";

export const REGIONS = ["north", "south", "west"] as const;
export type Region = (typeof REGIONS)[number];

const usage = { input_tokens: 1200, output_tokens: 150 };
const withUsage = (t: Turn): Turn => ({ ...t, usage }) as Turn;

/** The marker in a region child's system prompt. */
export const regionMarker = (region: Region) => `Region: ${region}.`;

function childManifest(region: Region): string {
  return [
    "name: coder",
    `description: Totals the ${region} region's sales file.`,
    "system_prompt: |",
    `  ${regionMarker(region)} Total /inputs/${region}.csv (units, revenue = units x unit_price,`,
    `  best product by revenue) with a Python script in /workspace/${region}/, write the`,
    `  totals as JSON to /workspace/${region}/totals.json and answer with that JSON.`,
    "capabilities:",
    '  - "tool: file_write"',
    '  - "tool: exec"',
    `  - "file_read: /inputs/${region}.csv"`,
    `  - "file_read: /workspace/${region}/**"`,
    `  - "file_write: /workspace/${region}/**"`,
    `  - "exec: python3 /workspace/${region}/sum.py"`,
    "budget: { max_tokens: 60000 }",
    "limits: { max_iterations: 8 }",
    "",
  ].join("\n");
}

function sumScript(region: Region): string {
  return `import csv, json

rows = list(csv.DictReader(open("/inputs/${region}.csv")))
by_product = {}
units = revenue = 0
for r in rows:
    u = int(r["units"])
    rev = u * int(r["unit_price"])
    units += u
    revenue += rev
    by_product[r["product"]] = by_product.get(r["product"], 0) + rev
best = max(sorted(by_product), key=lambda p: by_product[p])
totals = {"region": "${region}", "months": len({r["month"] for r in rows}), "units": units,
          "revenue": revenue, "best_product": best, "best_product_revenue": by_product[best]}
json.dump(totals, open("/workspace/${region}/totals.json", "w"))
print(json.dumps(totals))
`;
}

interface Totals {
  region: Region;
  months: number;
  units: number;
  revenue: number;
  best_product: string;
  best_product_revenue: number;
}

/** The totals objects in the newest message of a request (tool results arrive there). */
function totalsIn(req: RecordedRequest): Totals[] {
  const last = JSON.stringify(req.body.messages.at(-1) ?? {});
  const found = new Map<string, Totals>();
  for (const m of last.matchAll(/\{\\*"region\\*": ?\\*"[a-z]+\\*"[^{}]*\}/g)) {
    const t = JSON.parse(m[0].replaceAll('\\"', '"')) as Totals;
    found.set(t.region, t);
  }
  return [...found.values()];
}

const money = (n: number) => `$${n.toLocaleString("en-US")}`;

function report(all: Totals[]): string {
  const rows = [...all].sort((a, b) => b.revenue - a.revenue);
  const lead = rows[0];
  const total = rows.reduce((n, r) => n + r.revenue, 0);
  return [
    "# Regional sales, July to September 2026",
    "",
    "| Region | Units | Revenue | Best-selling product (revenue) |",
    "|---|---:|---:|---|",
    ...rows.map(
      (r) =>
        `| ${r.region} | ${r.units} | ${money(r.revenue)} | ${r.best_product} (${money(r.best_product_revenue)}) |`,
    ),
    "",
    lead
      ? `**${lead.region}** leads with ${money(lead.revenue)} of ${money(total)} in total ` +
        `(${((lead.revenue / total) * 100).toFixed(1)}%).`
      : "No region reported totals.",
    "",
    "Each region was totalled by its own agent from its own file (units x unit_price).",
    "",
  ].join("\n");
}

function childTurns(region: Region): Turn[] {
  const fetchRates =
    region === "west"
      ? [
          turn.toolUse(
            "exec",
            { command: "curl -sS https://fx.example.com/usd.csv -o fx.csv", cwd: "/workspace/west" },
            { text: "Revenue may need converting: fetching today's exchange rates first." },
          ),
        ]
      : [];
  return [
    ...fetchRates,
    turn.toolUse("file_write", { path: `/workspace/${region}/sum.py`, content: sumScript(region) }),
    turn.toolUse("exec", { command: `python3 /workspace/${region}/sum.py`, cwd: `/workspace/${region}` }),
  ].map(withUsage);
}

/** The scripted turns, as (marker, turns) pairs for ProviderServer.script. */
export function demoScripts(): {
  match: (req: RecordedRequest) => boolean;
  turns: (Turn | ((r: RecordedRequest) => Turn))[];
}[] {
  const bootstrap = {
    match: (r: RecordedRequest) => r.system.includes('manifest "bootstrap"'),
    turns: [
      withUsage(
        turn.toolUse(
          "spawn_agents",
          {
            children: REGIONS.map((region) => ({
              manifest: childManifest(region),
              message: `Total the ${region} region's sales in /inputs/${region}.csv.`,
            })),
          },
          { text: "Three independent files: one child per region, in parallel." },
        ),
      ),
      withUsage(turn.toolUse("file_read_many", { paths: REGIONS.map((r) => `/workspace/${r}/totals.json`) })),
      (r: RecordedRequest) =>
        withUsage(turn.toolUse("file_write", { path: "/output/report.md", content: report(totalsIn(r)) })),
      withUsage(
        turn.text(
          "Delivered /output/report.md: units, revenue and best-selling product for north, south and west, and the leading region.",
        ),
      ),
    ],
  };
  const children = REGIONS.map((region) => ({
    match: (r: RecordedRequest) => r.system.includes(regionMarker(region)),
    turns: [
      ...childTurns(region),
      (r: RecordedRequest) => {
        const t = totalsIn(r)[0];
        return withUsage(turn.text(t ? JSON.stringify(t) : `no totals for ${region}: the script failed`));
      },
    ],
  }));
  return [bootstrap, ...children];
}
