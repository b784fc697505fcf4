// bench/report.ts — the shape every bench section returns and the writer of the
// report. Targets are compared here, against baselines measured in the same run; no
// timed assertion lives in the test suite.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface Metric {
  name: string;
  value: number;
  unit: string;
  /** A baseline measured side by side in the same run, and the ratio value/baseline. */
  baseline?: { name: string; value: number };
  /** e.g. { op: "<=", value: 10 } meaning the metric should be at most 10 (same unit). */
  target?: { op: "<=" | ">="; value: number };
  note?: string;
}

export interface BenchSection {
  name: string;
  metrics: Metric[];
  notes?: string[];
}

export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const s = [...samples].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i] as number;
}

export function round(n: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function verdict(m: Metric): string {
  if (!m.target) return "";
  const ok = m.target.op === "<=" ? m.value <= m.target.value : m.value >= m.target.value;
  return `${ok ? "met" : "MISSED"} (${m.target.op} ${m.target.value} ${m.unit})`;
}

export function writeReport(dir: string, sections: BenchSection[], machine: Record<string, unknown>): string {
  mkdirSync(dir, { recursive: true });
  const lines: string[] = ["# Aido bench report", "", `Machine: ${JSON.stringify(machine)}`, ""];
  for (const s of sections) {
    lines.push(`## ${s.name}`, "", "| metric | value | baseline | ratio | target |", "|---|---|---|---|---|");
    for (const m of s.metrics) {
      const base = m.baseline ? `${m.baseline.name}: ${round(m.baseline.value)} ${m.unit}` : "";
      const ratio = m.baseline && m.baseline.value !== 0 ? `${round(m.value / m.baseline.value, 3)}x` : "";
      lines.push(`| ${m.name} | ${round(m.value)} ${m.unit} | ${base} | ${ratio} | ${verdict(m)} |`);
    }
    for (const n of s.notes ?? []) lines.push("", `- ${n}`);
    lines.push("");
  }
  const md = join(dir, "report.md");
  writeFileSync(md, lines.join("\n"));
  writeFileSync(join(dir, "report.json"), JSON.stringify({ machine, sections }, null, 2));
  return md;
}
