// web_fetch runs on the host, so it is attacked like an SSRF: loopback in every spelling,
// DNS names that resolve inward, redirects that hop to ungranted or private hosts.

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { networkInterfaces } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULTS } from "../../src/config-schema.js";
import { isAidoError } from "../../src/errors.js";
import { blockedReason } from "../../src/tools/net-address.js";
import { type HostResolver, webFetchTool } from "../../src/tools/web-fetch.js";
import { judge, noSandbox, readsAnything } from "../support/tool-context.js";

const servers: Server[] = [];
let port = 0;
/** Requests that reached the stand-in servers: a refused fetch must not add one. */
let served = 0;

/** One server app answering on 127.0.0.1 and 127.0.0.2 (both loopback on Linux) at one port. */
function app(req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse): void {
  served++;
  const u = new URL(req.url ?? "/", "http://x");
  const to = u.searchParams.get("to");
  if (u.pathname === "/redirect" && to) {
    res.writeHead(302, { location: to }).end();
  } else if (u.pathname === "/page") {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(`<html><head><title>T</title><script>var secret = 1;</script><style>p{}</style></head>
      <body><h1>Hello &amp; welcome</h1><p>First para.</p><!-- hidden --><ul><li>one</li><li>two</li></ul></body></html>`);
  } else if (u.pathname === "/big") {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("a".repeat(50_000));
  } else if (u.pathname === "/hang") {
    res.writeHead(200, { "content-type": "text/plain" });
    res.write("partial");
  } else if (u.pathname === "/host") {
    res.writeHead(200, { "content-type": "text/plain" }).end(`host header: ${req.headers.host}`);
  } else res.writeHead(404).end("nope");
}

beforeAll(async () => {
  const a = createServer(app);
  await new Promise<void>((r) => a.listen(0, "127.0.0.1", r));
  port = (a.address() as AddressInfo).port;
  const b = createServer(app);
  await new Promise<void>((r) => b.listen(port, "127.0.0.2", r));
  servers.push(a, b);
});
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

const cfg = { ...DEFAULTS.webFetch, timeoutMs: 2_000 };

async function fetchWith(
  url: string,
  grants: string[],
  opts: { maxBytes?: number; timeoutMs?: number; outputMaxBytes?: number; resolver?: HostResolver } = {},
) {
  const tool = webFetchTool(
    {
      ...cfg,
      ...(opts.maxBytes ? { maxBytes: opts.maxBytes } : {}),
      ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
    },
    ...(opts.resolver ? [opts.resolver] : []),
  );
  const { input, ctx } = await judge(tool, { url }, ["tool: web_fetch", ...grants], {
    sandbox: noSandbox,
    goalId: "g",
    agentId: "a",
    outputMaxBytes: opts.outputMaxBytes ?? 32_768,
  });
  return tool.run(input, ctx);
}

const refusedWith = (code: string, text: RegExp) => (e: unknown) =>
  isAidoError(e, code as never) && text.test((e as Error).message);

describe("web_fetch", () => {
  it("refuses loopback even when a grant allows every host", async () => {
    await expect(fetchWith(`http://127.0.0.1:${port}/page`, ["network: *:*"])).rejects.toSatisfy(
      refusedWith("policy_denied", /127\.0\.0\.1 \(loopback\)/),
    );
  });

  it("fetches loopback when a grant names 127.0.0.1 literally, and reduces HTML to text", async () => {
    const r = await fetchWith(`http://127.0.0.1:${port}/page`, ["network: 127.0.0.1:*"]);
    expect(r.output).toContain("Status: 200");
    expect(r.output).toContain("Content-Type: text/html");
    expect(r.output).toContain("Hello & welcome");
    expect(r.output).toContain("- one\n- two");
    expect(r.output).not.toMatch(/secret|<p>|hidden|p\{\}/);
  });

  it("sends the URL's own Host header to the pinned address", async () => {
    const r = await fetchWith(`http://127.0.0.1:${port}/host`, ["network: 127.0.0.1:*"]);
    expect(r.output).toContain(`host header: 127.0.0.1:${port}`);
  });

  it("follows a redirect that stays on a granted host", async () => {
    const r = await fetchWith(`http://127.0.0.2:${port}/redirect?to=/page`, ["network: 127.0.0.2:*"]);
    expect(r.data).toMatchObject({ url: `http://127.0.0.2:${port}/page`, status: 200 });
  });

  it("refuses a redirect from an allowed server to 127.0.0.1", async () => {
    const to = encodeURIComponent(`http://127.0.0.1:${port}/page`);
    await expect(
      fetchWith(`http://127.0.0.2:${port}/redirect?to=${to}`, ["network: 127.0.0.2:*", "network: *:*"]),
    ).rejects.toSatisfy(
      refusedWith("policy_denied", /redirect host 127\.0\.0\.1 is 127\.0\.0\.1 \(loopback\)/),
    );
  });

  it("refuses a redirect to a host no grant names", async () => {
    const to = encodeURIComponent(`http://127.0.0.3:${port}/page`);
    await expect(
      fetchWith(`http://127.0.0.2:${port}/redirect?to=${to}`, ["network: 127.0.0.2:*"]),
    ).rejects.toSatisfy(refusedWith("capability_denied", /redirect to host 127\.0\.0\.3 port \d+ refused/));
  });

  it("stops following redirects after max_redirects", async () => {
    const tool = webFetchTool({ ...cfg, maxRedirects: 0 });
    const { input, ctx } = await judge(
      tool,
      { url: `http://127.0.0.2:${port}/redirect?to=/page` },
      ["tool: web_fetch", "network: 127.0.0.2:*"],
      {
        sandbox: noSandbox,
        goalId: "g",
        agentId: "a",
        outputMaxBytes: 32_768,
      },
    );
    await expect(tool.run(input, ctx)).rejects.toThrow(/more than 0 redirects/);
  });

  it("stops reading at max_bytes and says the body was truncated", async () => {
    const r = await fetchWith(`http://127.0.0.1:${port}/big`, ["network: 127.0.0.1:*"], { maxBytes: 1000 });
    expect(r.output).toContain("[body truncated: stopped reading at 1000 bytes");
    expect(r.data).toMatchObject({ bytes: 1000, truncated: true });
  });

  it("bounds what the model sees to outputMaxBytes, saying so", async () => {
    const r = await fetchWith(`http://127.0.0.1:${port}/big`, ["network: 127.0.0.1:*"], {
      outputMaxBytes: 500,
    });
    expect(r.output).toMatch(/\[output truncated: showed 500 of \d+ bytes\]$/);
  });

  it("gives up on a server that never finishes, after timeout_ms", async () => {
    const t0 = Date.now();
    await expect(
      fetchWith(`http://127.0.0.1:${port}/hang`, ["network: 127.0.0.1:*"], { timeoutMs: 300 }),
    ).rejects.toSatisfy(refusedWith("tool_failed", /timed out after 300 ms/));
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it("rejects non-http schemes at the schema", () => {
    const tool = webFetchTool(cfg);
    for (const url of [
      "file:///etc/passwd",
      "ftp://example.com/",
      "gopher://127.0.0.1:6379/_",
      "javascript:alert(1)",
    ]) {
      expect(tool.input.safeParse({ url }).success).toBe(false);
    }
    expect(tool.input.safeParse({ url: "http://example.com/", extra: 1 }).success).toBe(false);
    expect(tool.input.safeParse({ url: `http://example.com/${"a".repeat(3000)}` }).success).toBe(false);
  });

  it("refuses loopback written as IPv4-mapped IPv6", async () => {
    await expect(fetchWith(`http://[::ffff:127.0.0.1]:${port}/page`, ["network: *:*"])).rejects.toSatisfy(
      refusedWith("policy_denied", /IPv4-mapped loopback/),
    );
  });

  it("refuses loopback written as a decimal number", async () => {
    await expect(fetchWith(`http://2130706433:${port}/page`, ["network: *:*"])).rejects.toSatisfy(
      refusedWith("policy_denied", /loopback/),
    );
  });

  it("refuses a DNS name that resolves to loopback (localhost), even when granted by name", async () => {
    await expect(fetchWith(`http://localhost:${port}/page`, ["network: localhost:*"])).rejects.toSatisfy(
      refusedWith("policy_denied", /localhost is .* \(loopback\)/),
    );
  });

  it("refuses the cloud metadata address and IPv6 loopback", async () => {
    await expect(fetchWith("http://169.254.169.254/latest/meta-data/", ["network: *:*"])).rejects.toSatisfy(
      refusedWith("policy_denied", /link-local/),
    );
    await expect(fetchWith(`http://[::1]:${port}/`, ["network: *:*"])).rejects.toSatisfy(
      refusedWith("policy_denied", /loopback/),
    );
  });

  it("judges every address form by the rules, embedded IPv4 included", () => {
    expect(blockedReason("10.1.2.3")).toBe("private");
    expect(blockedReason("172.31.255.255")).toBe("private");
    expect(blockedReason("172.32.0.1")).toBeNull();
    expect(blockedReason("192.168.1.1")).toBe("private");
    expect(blockedReason("0.0.0.0")).toBe("unspecified");
    expect(blockedReason("224.0.0.1")).toBe("multicast");
    expect(blockedReason("8.8.8.8")).toBeNull();
    expect(blockedReason("::")).toBe("unspecified");
    expect(blockedReason("fe80::1")).toBe("link-local");
    expect(blockedReason("fd00::1")).toBe("unique local (private)");
    expect(blockedReason("ff02::1")).toBe("multicast");
    expect(blockedReason("::ffff:10.0.0.1")).toMatch(/IPv4-mapped private/);
    expect(blockedReason("::ffff:a00:1")).toMatch(/IPv4-mapped private/);
    expect(blockedReason("64:ff9b::7f00:1")).toMatch(/NAT64 loopback/);
    expect(blockedReason("2002:7f00:1::")).toMatch(/6to4 loopback/);
    expect(blockedReason("::ffff:8.8.8.8")).toBeNull();
    expect(blockedReason("2001:4860:4860::8888")).toBeNull();
  });

  it("needs the tool and the URL's host, nothing it has not checked", async () => {
    const tool = webFetchTool(cfg);
    expect(
      await tool.needs(
        { url: "https://Example.COM:8443/x?y" },
        { sandbox: noSandbox, readRefusal: readsAnything },
      ),
    ).toEqual([
      { kind: "tool", name: "web_fetch" },
      { kind: "network", host: "example.com", port: 8443 },
    ]);
  });
});

// Every IPv6 spelling that leads to an IPv4 loopback or private address: the host's dual
// stack (mapped), a translator (SIIT, NAT64), or a tunnel (6to4, Teredo, ISATAP).
const INWARD_V6: Array<[string, RegExp]> = [
  ["::ffff:127.0.0.1", /IPv4-mapped loopback address 127\.0\.0\.1/],
  ["::FFFF:7F00:1", /IPv4-mapped loopback/],
  ["0:0:0:0:0:ffff:127.0.0.1", /IPv4-mapped loopback/],
  ["0000:0000:0000:0000:0000:FFFF:7f00:0001", /IPv4-mapped loopback/],
  ["::ffff:a00:1", /IPv4-mapped private address 10\.0\.0\.1/],
  ["::ffff:169.254.169.254", /IPv4-mapped link-local/],
  ["::ffff:0:127.0.0.1", /SIIT \(IPv4-translated\) loopback address 127\.0\.0\.1/],
  ["::ffff:0:7f00:1", /SIIT .*loopback/],
  ["0:0:0:0:ffff:0:c0a8:101", /SIIT .*private address 192\.168\.1\.1/],
  ["::127.0.0.1", /IPv4-compatible loopback/],
  ["::a00:1", /IPv4-compatible private/],
  ["64:ff9b::127.0.0.1", /NAT64 loopback address 127\.0\.0\.1/],
  ["64:ff9b::a9fe:a9fe", /NAT64 link-local address 169\.254\.169\.254/],
  ["0064:ff9b:0000:0000:0000:0000:0a00:0001", /NAT64 private/],
  ["64:ff9b:1::a00:1", /NAT64 space outside 64:ff9b::\/96/],
  ["64:ff9b:1:7f00:1::", /NAT64 space outside/],
  ["64:ff9b:1:ffff:ffff:ffff:ffff:ffff", /NAT64 space outside/],
  ["64:ff9b:0:0:1::", /NAT64 space outside/],
  ["2002:7f00:1::", /6to4 loopback address 127\.0\.0\.1/],
  ["2002:c0a8:101:1::1", /6to4 private address 192\.168\.1\.1/],
  // Teredo: server 65.54.227.120 (public), client ~0x80fffffe = 127.0.0.1.
  ["2001:0:4136:e378:8000:63bf:80ff:fffe", /Teredo loopback address 127\.0\.0\.1/],
  ["2001::4136:e378:8000:63bf:f5ff:fffe", /Teredo private address 10\.0\.0\.1/],
  ["2001:0:a00:1::", /Teredo private address 10\.0\.0\.1/],
  ["2001:db8::5efe:7f00:1", /ISATAP loopback/],
  ["fe80::1%eth0", /link-local/],
  ["[::ffff:127.0.0.1]", /IPv4-mapped loopback/],
  ["::ffff:127.0.0.01", /not an IP address/],
];

describe("web_fetch and IPv6 forms of inward IPv4 addresses", () => {
  it("judges every spelling by the IPv4 address inside it", () => {
    for (const [ip, why] of INWARD_V6) expect(blockedReason(ip), ip).toMatch(why);
  });

  it("still allows the same forms around public IPv4 addresses", () => {
    for (const ip of [
      "::ffff:8.8.8.8",
      "::ffff:0:8.8.8.8",
      "64:ff9b::8.8.8.8",
      "2002:808:808::1",
      "2001:0:4136:e378:8000:63bf:f7f7:f7f7", // Teredo server 65.54.227.120, client 8.8.8.8
      "2001:db8::5efe:808:808",
      "2001:4860:4860::8888",
    ]) {
      expect(blockedReason(ip), ip).toBeNull();
    }
  });

  it("refuses each literal in a URL, even with a grant for every host, and never connects", async () => {
    const literals = INWARD_V6.map(([ip]) => ip).filter((ip) => !ip.includes("%") && !ip.startsWith("["));
    for (const ip of literals.filter((ip) => !ip.endsWith(".01"))) {
      const before = served;
      await expect(fetchWith(`http://[${ip}]:${port}/page`, ["network: *:*"]), ip).rejects.toSatisfy(
        refusedWith("policy_denied", /only a grant naming that address allows it/),
      );
      expect(served, `${ip} reached the server`).toBe(before);
    }
  });

  it("refuses a host name whose DNS answers include such a form, naming the answer", async () => {
    for (const [ip, why] of INWARD_V6.filter(([a]) => !a.startsWith("[") && !a.endsWith(".01"))) {
      const before = served;
      const resolver: HostResolver = async (host) => {
        expect(host).toBe("inward.example");
        // A public answer first: every answer is judged, not only the one connected to.
        return [
          { address: "93.184.216.34", family: 4 },
          { address: ip, family: 6 },
        ];
      };
      await expect(
        fetchWith(`http://inward.example:${port}/page`, ["network: inward.example:*"], { resolver }),
        ip,
      ).rejects.toSatisfy(refusedWith("policy_denied", new RegExp(`inward\\.example is .*${why.source}`)));
      expect(served).toBe(before);
    }
  });

  it("allows a mapped loopback answer only when a grant names that exact address", async () => {
    const resolver: HostResolver = async () => [{ address: "::ffff:127.0.0.1", family: 6 }];
    await expect(
      fetchWith(`http://inward.example:${port}/page`, ["network: inward.example:*", "network: *:*"], {
        resolver,
      }),
    ).rejects.toSatisfy(refusedWith("policy_denied", /IPv4-mapped loopback/));
    const r = await fetchWith(
      `http://inward.example:${port}/host`,
      ["network: inward.example:*", "network: [::ffff:127.0.0.1]:*"],
      { resolver },
    );
    expect(r.output).toContain(`host header: inward.example:${port}`);
  });
});

describe("web_fetch to the daemon's own host", () => {
  // An address of this host's interfaces no range marks inward, if it has one (a public
  // address, a Docker bridge on a public-looking subnet); else any of its own.
  const own = Object.values(networkInterfaces())
    .flat()
    .filter((i) => i !== undefined && !i.internal && i.family === "IPv4")
    .map((i) => i?.address as string);
  const self = own.find((a) => blockedReason(a) === null) ?? own[0] ?? "127.0.0.1";

  it("refuses a granted name resolving to an address of this host (any spelling), whatever its range", async () => {
    let hits = 0;
    const host = createServer((_req, res) => {
      hits++;
      res.end("host service");
    });
    await new Promise<void>((r) => host.listen(0, "0.0.0.0", r));
    const hostPort = (host.address() as AddressInfo).port;
    try {
      for (const address of [self, `::ffff:${self}`]) {
        const resolver: HostResolver = async () => [{ address, family: address.includes(":") ? 6 : 4 }];
        await expect(
          fetchWith(`http://self.example:${hostPort}/`, ["network: self.example:*"], { resolver }),
        ).rejects.toSatisfy(
          refusedWith(
            "policy_denied",
            blockedReason(self) === null ? /an address of this host/ : /self\.example is/,
          ),
        );
      }
      expect(hits).toBe(0);
    } finally {
      await new Promise((r) => host.close(r));
    }
  });
});
