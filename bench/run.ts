// bench/run.ts — `npm run bench`: runs each section, writes bench/report/report.md and
// report.json. `npm run bench -- security sandbox` runs only the named sections.

import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { type BenchSection, writeReport } from "./report.js";

type Loader = () => Promise<BenchSection | BenchSection[]>;

const sections: Record<string, Loader> = {
  security: async () => (await import("./security.js")).benchSecurity(),
  snapshots: async () => {
    const m = await import("./snapshots.js");
    return [await m.benchSnapshots(), await m.benchSnapshotPruning(), await m.benchSnapshotCalls()];
  },
  budget: async () => (await import("./budget.js")).benchBudget(),
  memory: async () => (await import("./memory.js")).benchMemory(),
  agents: async () => (await import("./agents.js")).benchAgents(),
  sandbox: async () => (await import("./sandbox.js")).benchSandbox(),
  daemon: async () => (await import("./daemon.js")).benchDaemon(),
  "sandbox-cli": async () => (await import("./sandbox-cli.js")).benchSandboxCli(),
  plans: async () => (await import("./plans.js")).benchPlans(),
  mcp: async () => (await import("./mcp.js")).benchMcp(),
  "mcp-servers": async () => (await import("./mcp-servers.js")).benchMcpServers(),
  "cli-start": async () => (await import("./cli-start.js")).benchCliStart(),
  tracing: async () => (await import("./tracing.js")).benchTracing(),
  cluster: async () => (await import("./cluster.js")).benchCluster(),
  egress: async () => [
    await (await import("./egress.js")).benchEgress(),
    await (await import("./egress-container.js")).benchEgressContainer(),
  ],
};

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const names = wanted.length > 0 ? wanted : Object.keys(sections);
  const unknown = names.filter((n) => !(n in sections));
  if (unknown.length > 0) {
    console.error(
      `unknown bench section(s): ${unknown.join(", ")}; known: ${Object.keys(sections).join(", ")}`,
    );
    process.exit(2);
  }
  const results: BenchSection[] = [];
  for (const name of names) {
    console.log(`== ${name}`);
    const t0 = Date.now();
    try {
      const r = await (sections[name] as Loader)();
      results.push(...(Array.isArray(r) ? r : [r]));
    } catch (e) {
      results.push({ name, metrics: [], notes: [`FAILED: ${(e as Error).stack ?? e}`] });
      process.exitCode = 1;
    }
    console.log(`   ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  const machine = {
    cpus: cpus().length,
    cpu: cpus()[0]?.model,
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  };
  const file = writeReport(join(import.meta.dirname, "report"), results, machine);
  console.log(`report: ${file}`);
  console.log((await import("node:fs")).readFileSync(file, "utf8"));
}

await main();
