// sandbox/apt-mirror.ts — which Debian mirror the offline image build downloads from.
// Read at run time from the host's own apt sources (deb822 *.sources "URIs:" lines, then
// classic sources.list "deb" lines), so the repository never names a mirror host and the
// build uses whatever archive this machine is allowed to reach.

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";

export interface AptSource {
  uri: string;
  suites: string[];
}

/** Parse deb822 stanzas ("Types: deb", "URIs: ...", "Suites: ..."). */
export function parseDeb822(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of stanza.split("\n")) {
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (m) fields.set(m[1]!.toLowerCase(), m[2]!.trim());
    }
    if (fields.get("enabled") === "no") continue;
    const types = (fields.get("types") ?? "").split(/\s+/);
    if (!types.includes("deb")) continue;
    const suites = (fields.get("suites") ?? "").split(/\s+/).filter(Boolean);
    for (const uri of (fields.get("uris") ?? "").split(/\s+/).filter(Boolean)) out.push({ uri, suites });
  }
  return out;
}

/** Parse one-line "deb [options] URI suite components" entries. */
export function parseSourcesList(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
    if (m) out.push({ uri: m[1]!, suites: [m[2]!] });
  }
  return out;
}

/**
 * The mirror serving `suite` (e.g. "bookworm") on this host. Prefers a source that lists
 * the suite itself (not -security/-updates); falls back to the first http(s) source.
 */
export function findAptMirror(suite: string, etcApt = "/etc/apt"): string {
  const sources: AptSource[] = [];
  const dir = join(etcApt, "sources.list.d");
  if (existsSync(dir)) {
    for (const f of readdirSync(dir).sort()) {
      const text = readFileSync(join(dir, f), "utf8");
      if (f.endsWith(".sources")) sources.push(...parseDeb822(text));
      else if (f.endsWith(".list")) sources.push(...parseSourcesList(text));
    }
  }
  const list = join(etcApt, "sources.list");
  if (existsSync(list)) sources.push(...parseSourcesList(readFileSync(list, "utf8")));
  const web = sources.filter((s) => /^https?:\/\//.test(s.uri));
  const exact = web.find((s) => s.suites.includes(suite) && !/security/.test(s.uri));
  const chosen = exact ?? web[0];
  if (!chosen) {
    throw new AidoError(
      ErrorCode.sandboxUnavailable,
      `no Debian mirror found in ${etcApt}/sources.list or ${dir}/*.sources: pass a mirror URL to the image build (mirror option)`,
      { etcApt },
    );
  }
  return chosen.uri;
}
