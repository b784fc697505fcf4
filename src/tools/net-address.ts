// tools/net-address.ts — which IP addresses a host-side fetch may connect to. The daemon's
// host can reach its own loopback, the cloud metadata service (169.254.169.254) and the
// private network; an agent must not, unless a grant names the address literally.
//
// An IPv6 address can carry an IPv4 address that a translator, tunnel or the host's own
// dual stack delivers to: IPv4-mapped ::ffff:a.b.c.d, SIIT ::ffff:0:a.b.c.d, IPv4-
// compatible ::a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo 2001::/32 (server and
// de-obfuscated client), ISATAP ...:0:5efe:a.b.c.d. Each is judged by every IPv4 address
// inside it. NAT64 space other than the well-known /96 (the local-use 64:ff9b:1::/48 of
// RFC 8215 and the rest of 64:ff9b::/32) puts the IPv4 address where the operator's
// prefix length says, which we cannot know: it is refused whole. The text is parsed
// strictly (any spelling: compressed, expanded, mixed dotted tail, upper case, brackets,
// a zone id); anything that is not an address is refused, never guessed at.
// Besides the ranges, every address of the daemon's own host is inward whatever its range
// (hostAddressReason): a public address on an interface, a Docker bridge on a
// public-looking subnet. A host-side fetch there reaches the host's own services.

import { isIP } from "node:net";
import { networkInterfaces } from "node:os";

/** [first address as a 32-bit number, prefix length, why] */
const V4_BLOCKED: [number, number, string][] = [
  [v4("0.0.0.0"), 8, "unspecified"],
  [v4("10.0.0.0"), 8, "private"],
  [v4("100.64.0.0"), 10, "shared (carrier-grade NAT)"],
  [v4("127.0.0.0"), 8, "loopback"],
  [v4("169.254.0.0"), 16, "link-local"],
  [v4("172.16.0.0"), 12, "private"],
  [v4("192.0.0.0"), 24, "IETF protocol assignments"],
  [v4("192.168.0.0"), 16, "private"],
  [v4("198.18.0.0"), 15, "benchmarking"],
  [v4("224.0.0.0"), 4, "multicast"],
  [v4("240.0.0.0"), 4, "reserved"],
];

function v4(a: string): number {
  return a.split(".").reduce((n, part) => n * 256 + Number(part), 0);
}

function inV4(addr: number, base: number, bits: number): boolean {
  const size = 2 ** (32 - bits);
  return addr >= base && addr < base + size;
}

function v4Reason(n: number): string | null {
  if (n === 0xffffffff) return "broadcast";
  return V4_BLOCKED.find(([base, bits]) => inV4(n, base, bits))?.[2] ?? null;
}

/** Eight 16-bit groups of a valid IPv6 address (isIP has checked it; the zone id is gone). */
function v6Groups(text: string): number[] {
  let s = text.toLowerCase();
  const tail: number[] = [];
  const lastColon = s.lastIndexOf(":");
  if (s.slice(lastColon + 1).includes(".")) {
    const n = v4(s.slice(lastColon + 1));
    tail.push(Math.floor(n / 65536), n % 65536);
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = s.split("::") as [string, string | undefined];
  const parse = (p: string) => (p === "" ? [] : p.split(":").map((g) => Number.parseInt(g, 16)));
  let groups: number[];
  if (rest === undefined) groups = parse(head);
  else {
    const h = parse(head);
    const r = parse(rest);
    groups = [...h, ...new Array(8 - h.length - r.length).fill(0), ...r];
  }
  if (tail.length) groups.splice(6, 2, ...tail);
  return groups;
}

/** "[addr%zone]" -> "addr": brackets (a URL's host) and a zone id are not part of the address. */
function bare(ip: string): string {
  let s = ip.trim();
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const zone = s.indexOf("%");
  return zone >= 0 && s.includes(":") ? s.slice(0, zone) : s;
}

const dotted = (n: number) => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

/** Why `ip` must not be reached without a literal grant, or null when it may be. */
export function blockedReason(ip: string): string | null {
  const text = bare(ip);
  const family = isIP(text);
  if (family === 4) return v4Reason(v4(text));
  if (family !== 6) return "not an IP address";
  const g = v6Groups(text);
  const word = (hi: number, lo: number) => (g[hi]! * 65536 + g[lo]!) >>> 0;
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  const inner = (form: string, ...embedded: number[]) => {
    for (const n of embedded) {
      const why = v4Reason(n);
      if (why !== null) return `${form} ${why} address ${dotted(n)}`;
    }
    return null;
  };
  if (zeros(0, 8)) return "unspecified";
  if (zeros(0, 7) && g[7] === 1) return "loopback";
  // ::ffff:a.b.c.d (mapped), ::ffff:0:a.b.c.d (SIIT), ::a.b.c.d (compatible)
  if (zeros(0, 5) && g[5] === 0xffff) return inner("IPv4-mapped", word(6, 7));
  if (zeros(0, 4) && g[4] === 0xffff && g[5] === 0) return inner("SIIT (IPv4-translated)", word(6, 7));
  if (zeros(0, 6)) return inner("IPv4-compatible", word(6, 7));
  if (g[0] === 0x64 && g[1] === 0xff9b) {
    if (zeros(2, 6)) return inner("NAT64", word(6, 7));
    return "NAT64 space outside 64:ff9b::/96 (e.g. the local-use 64:ff9b:1::/48), where the embedded IPv4 address cannot be located";
  }
  if (g[0] === 0x2002) return inner("6to4", word(1, 2));
  // Teredo: the server's IPv4 address, and the client's, stored inverted.
  if (g[0] === 0x2001 && g[1] === 0) return inner("Teredo", word(2, 3), ~word(6, 7) >>> 0);
  const first = g[0]!;
  if ((first & 0xffc0) === 0xfe80) return "link-local";
  if ((first & 0xffc0) === 0xfec0) return "site-local";
  if ((first & 0xfe00) === 0xfc00) return "unique local (private)";
  if ((first & 0xff00) === 0xff00) return "multicast";
  // ISATAP interface identifier (…:0:5efe:a.b.c.d, or 200:5efe with the u bit set).
  if ((g[4] === 0 || g[4] === 0x200) && g[5] === 0x5efe) return inner("ISATAP", word(6, 7));
  return null;
}

/**
 * Why `ip` is inward though no range marks it: it is an address of this host (any
 * interface, looked up now: a Docker bridge comes and goes). IPv4-mapped IPv6 spellings
 * count as the IPv4 address. Null when it is not one of the host's.
 */
export function hostAddressReason(ip: string): string | null {
  const mine = canonicalAddress(bare(ip));
  if (mine === null) return null;
  for (const list of Object.values(networkInterfaces())) {
    for (const i of list ?? []) if (canonicalAddress(i.address) === mine) return "an address of this host";
  }
  return null;
}

/** IPv4 dotted; IPv6 compressed, lower case, an IPv4-mapped one as its IPv4 address. */
function canonicalAddress(address: string): string | null {
  const family = isIP(address);
  if (family === 4) return address;
  if (family !== 6) return null;
  let v6: string;
  try {
    v6 = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return null; // a zone id: link-local, refused by range already
  }
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6);
  if (!m) return v6;
  const hi = Number.parseInt(m[1] as string, 16);
  const lo = Number.parseInt(m[2] as string, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** The form a network grant uses for an address: IPv4 as is, IPv6 in brackets. */
export function grantHostOf(ip: string): string {
  return isIP(ip) === 6 ? `[${ip.toLowerCase()}]` : ip;
}
