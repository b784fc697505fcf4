// egress/egress-audit.ts — what is written down about egress: egress.open, egress.close and
// egress.denied in the audit log under the goal and agent a connection speaks for (a stdio
// MCP server's under its real goal, not the pseudo-goal of its network), then the same on
// the event bus (aido watch, events.subscribe). Writes are synchronous: an open that cannot
// be written throws, and the proxy refuses the connection. Refusals go through the denial
// throttle (denial-throttle.ts), per caller (goal and agent): identical ones within a second
// are counted into one more entry (`repeats`), and past DISTINCT_PER_WINDOW entries a
// second the rest into one summary (stage "flood": counts, distinct keys, stages, a sample),
// so a flood of refusals is counted, not each written. The relay listener's reports of ports
// no caller holds are written here too, to the goal the relay serves. The decisions
// themselves are gate-policy.ts's.

import { errorMessage } from "../errors.js";
import type { AuditLog } from "../security/audit.js";
import { DenialThrottle, type FloodCount, floodInWords } from "./denial-throttle.js";
import { type UnheldReport, unheldPortsInWords } from "./listener.js";
import { parseMcpEgressId, serverOfCaller } from "./mcp-callers.js";
import type { EgressRecord } from "./types.js";

export interface EgressAuditDeps {
  audit: AuditLog;
  /** After each record is audited: the kernel's event bus. */
  notify(entry: EgressRecord): void;
  /** Where a count of refusals that could not be audited is reported. */
  log(message: string): void;
}

export class EgressAudit {
  /** Refusals, written at a bounded rate and every one counted (denial-throttle.ts). */
  private readonly denials: DenialThrottle<EgressRecord>;

  constructor(private readonly deps: EgressAuditDeps) {
    this.denials = new DenialThrottle(
      {
        entry: (entry, repeats) => this.writeDenied(entry, repeats),
        flood: (first, count) => this.writeFlood(first, count),
      },
      (e) => deps.log(`egress: could not audit counted refusals: ${errorMessage(e)}`),
    );
  }

  /** Write the counts of repeated refusals still open (before the audit log closes). */
  flush(): void {
    this.denials.flush();
  }

  /** Audit (synchronous; throws when the log cannot take it), then tell the event bus. */
  record(raw: EgressRecord): void {
    const entry = withRealGoal(raw);
    const where = { goalId: entry.caller.goalId, agentId: entry.caller.agentId };
    const connection = entry.connection === undefined ? {} : { connection: entry.connection };
    const common = { host: entry.host, port: entry.port, method: entry.method };
    if (entry.phase === "open") {
      this.deps.audit.record(
        "egress.open",
        { ...common, address: entry.address ?? "", ...connection },
        where,
      );
    } else if (entry.phase === "close") {
      this.deps.audit.record(
        "egress.close",
        {
          ...common,
          address: entry.address ?? "",
          bytes_up: entry.bytesUp ?? 0,
          bytes_down: entry.bytesDown ?? 0,
          duration_ms: entry.durationMs ?? 0,
          ...connection,
          ...(entry.reason ? { reason: entry.reason } : {}),
        },
        where,
      );
    } else {
      const key = JSON.stringify([
        where.goalId,
        where.agentId,
        entry.stage,
        entry.host,
        entry.port,
        entry.method,
        entry.reason,
      ]);
      const stage = entry.stage ?? "request";
      this.denials.report(JSON.stringify([where.goalId, where.agentId]), key, stage, entry);
      return;
    }
    this.deps.notify(entry);
  }

  /** One egress.denied entry (with `repeats`: that many identical refusals since the last one). */
  private writeDenied(entry: EgressRecord, repeats: number): void {
    this.deps.audit.record(
      "egress.denied",
      { ...deniedFields(entry), ...(repeats > 0 ? { repeats } : {}) },
      { goalId: entry.caller.goalId, agentId: entry.caller.agentId },
    );
    this.deps.notify(entry);
  }

  /**
   * One egress.denied entry (stage "flood") for a caller's refusals past the
   * DISTINCT_PER_WINDOW written in a second: how many, how many distinct, per stage, and a
   * sample of them.
   */
  private writeFlood(first: EgressRecord, count: FloodCount<EgressRecord>): void {
    const reason = floodInWords(count);
    this.deps.audit.record(
      "egress.denied",
      {
        stage: "flood",
        reason,
        refusals: count.refusals,
        distinct: count.distinct,
        ...(count.distinctCapped ? { distinct_capped: true } : {}),
        stages: count.stages,
        sample: count.sample.map(deniedFields),
      },
      { goalId: first.caller.goalId, agentId: first.caller.agentId },
    );
    this.deps.notify({
      phase: "denied",
      caller: first.caller,
      host: "",
      port: 0,
      method: "",
      stage: "flood",
      reason,
    });
  }

  /**
   * Connections on relay ports no caller holds, closed unread by the listener (which reports
   * at most once a second per relay, counting those since its last report): one
   * egress.denied at stage "relay", to the goal the relay serves, with no agent (none holds
   * the ports). Throws when the log cannot take it.
   */
  recordUnheldPort(egressId: string, report: UnheldReport): void {
    const { goalId, what } = relayOf(egressId);
    const { ports, connections } = report;
    this.deps.audit.record(
      "egress.denied",
      {
        stage: "relay",
        reason: `${unheldPortsInWords(ports)} of ${what} ${ports.length === 1 ? "is" : "are"} held by no caller: ${
          connections === 1 ? "the connection was" : `${connections} connections were`
        } closed unread`,
        relay_port: ports[0] as number,
        ...(ports.length > 1 ? { relay_ports: ports } : {}),
        connections,
      },
      { goalId },
    );
  }
}

/** The goal a relay serves (a server's pseudo-goal names it), and whose relay it is, in words. */
function relayOf(egressId: string): { goalId: string; what: string } {
  const mcp = parseMcpEgressId(egressId);
  if (mcp)
    return { goalId: mcp.goalId, what: `the egress relay of MCP server ${mcp.server} in goal ${mcp.goalId}` };
  return { goalId: egressId, what: `goal ${egressId}'s egress relay` };
}

/** What an egress.denied entry (or a flood's sample) says of one refusal. */
function deniedFields(e: EgressRecord) {
  return {
    ...(e.host === "" ? {} : { host: e.host, port: e.port }),
    ...(e.method === "" ? {} : { method: e.method }),
    stage: e.stage ?? "request",
    reason: e.reason ?? "refused",
  };
}

/** A server caller's record names its real goal, not the pseudo-goal of its network. */
function withRealGoal(entry: EgressRecord): EgressRecord {
  if (serverOfCaller(entry.caller.agentId) === undefined) return entry;
  const goalId = parseMcpEgressId(entry.caller.goalId)?.goalId;
  return goalId === undefined ? entry : { ...entry, caller: { ...entry.caller, goalId } };
}
