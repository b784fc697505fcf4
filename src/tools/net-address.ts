// tools/net-address.ts — which IP addresses a host-side fetch may connect to. The daemon's
// host can reach its own loopback, the cloud metadata service (169.254.169.254) and the
// private network; an agent must not, unless a grant names the address literally. IPv6
// forms that embed an IPv4 address (mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64
// 64:ff9b::/96, 6to4 2002::/16) are judged by the IPv4 address inside.

import { isIP } from "node:net";

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

/** Eight 16-bit groups of an IPv6 address (with an optional trailing dotted IPv4). */
function v6Groups(a: string): number[] {
  let text = a.toLowerCase();
  const zone = text.indexOf("%");
  if (zone >= 0) text = text.slice(0, zone);
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    const n = v4(text.slice(lastColon + 1));
    tail.push(Math.floor(n / 65536), n % 65536);
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = text.split("::") as [string, string | undefined];
  const parse = (s: string) => (s === "" ? [] : s.split(":").map((g) => Number.parseInt(g, 16)));
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

/** Why `ip` must not be reached without a literal grant, or null when it may be. */
export function blockedReason(ip: string): string | null {
  const family = isIP(ip);
  if (family === 4) {
    const n = v4(ip);
    if (n === v4("255.255.255.255")) return "broadcast";
    return V4_BLOCKED.find(([base, bits]) => inV4(n, base, bits))?.[2] ?? null;
  }
  if (family !== 6) return "not an IP address";
  const g = v6Groups(ip);
  const embedded = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zeros(0, 8)) return "unspecified";
  if (zeros(0, 7) && g[7] === 1) return "loopback";
  if (zeros(0, 5) && g[5] === 0xffff) return viaV4(embedded(g[6]!, g[7]!), "IPv4-mapped");
  if (zeros(0, 6)) return viaV4(embedded(g[6]!, g[7]!), "IPv4-compatible");
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return viaV4(embedded(g[6]!, g[7]!), "NAT64");
  if (g[0] === 0x2002) return viaV4(embedded(g[1]!, g[2]!), "6to4");
  const first = g[0]!;
  if ((first & 0xffc0) === 0xfe80) return "link-local";
  if ((first & 0xffc0) === 0xfec0) return "site-local";
  if ((first & 0xfe00) === 0xfc00) return "unique local (private)";
  if ((first & 0xff00) === 0xff00) return "multicast";
  return null;
}

function viaV4(inner: string, form: string): string | null {
  const why = blockedReason(inner);
  return why === null ? null : `${form} ${why} address ${inner}`;
}

/** The form a network grant uses for an address: IPv4 as is, IPv6 in brackets. */
export function grantHostOf(ip: string): string {
  return isIP(ip) === 6 ? `[${ip.toLowerCase()}]` : ip;
}
