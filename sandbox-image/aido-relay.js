// aido-relay — the only peer a goal container has on its egress network. It listens on TCP
// ports BASE .. BASE+SLOTS-1 (one per caller: the exec Landlock domain of an agent lets it
// connect to its own port only) and forwards each connection to the daemon's Unix socket
// in the folder shared with it, after one header line `AIDO-EGRESS <port>\n` that tells the
// daemon which port, and so which caller, the bytes came in on. It decides nothing: the
// daemon maps the port to its caller, checks the credentials and runs the proxy.
//
//   node aido-relay.js SOCKET BASE SLOTS     prints "ready" once every port listens
//
// Runs in the sandbox image (node 18) as the daemon's uid:gid, so that it may open the
// 0600 socket; no capabilities, read-only root, on the egress network only (egress/types.ts
// holds the constants and the header). Plain CommonJS: it is not part of the executor
// bundle and needs nothing but node's own modules.
"use strict";
const net = require("node:net");

const HEADER = "AIDO-EGRESS";
/** Connections open at once; past it a new one is closed at once (a flood stays bounded). */
const MAX_OPEN = 512;

const [socketPath, baseArg, slotsArg] = process.argv.slice(2);
const base = Number(baseArg);
const slots = Number(slotsArg);
if (!socketPath || !Number.isInteger(base) || !Number.isInteger(slots) || slots < 1 || base + slots > 65536) {
  process.stderr.write("usage: aido-relay.js SOCKET BASE SLOTS\n");
  process.exit(2);
}

let open = 0;

function relay(client, port) {
  if (open >= MAX_OPEN) {
    client.destroy();
    return;
  }
  open++;
  client.pause();
  const upstream = net.createConnection(socketPath);
  let done = false;
  const end = () => {
    if (done) return;
    done = true;
    open--;
    client.destroy();
    upstream.destroy();
  };
  client.on("error", end);
  client.on("close", end);
  upstream.on("error", end);
  upstream.on("close", end);
  upstream.on("connect", () => {
    upstream.write(`${HEADER} ${port}\n`);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });
}

let listening = 0;
for (let port = base; port < base + slots; port++) {
  const server = net.createServer({ allowHalfOpen: false }, (c) => relay(c, port));
  server.on("error", (e) => {
    process.stderr.write(`aido-relay: port ${port}: ${e.message}\n`);
    process.exit(1);
  });
  server.listen({ port, host: "0.0.0.0", backlog: 64 }, () => {
    listening++;
    if (listening === slots) process.stdout.write("ready\n");
  });
}
process.on("SIGTERM", () => process.exit(0));
