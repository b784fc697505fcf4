// egress/sni.ts — the server name a TLS ClientHello asks for, read strictly. The egress
// proxy lets a CONNECT tunnel carry bytes upstream only once the client's first flight is a
// ClientHello whose SNI names the host the CONNECT was judged for; without this check a
// tunnel granted for one host could speak TLS to another behind the same address (a CDN's
// "domain fronting"), or carry anything at all.
//
// Strict means: every length field must agree with the bytes around it, the handshake
// message may span several handshake records (TLS allows it) but nothing else may come
// between or after them in the flight, an extension appears at most once, server_name holds
// exactly one entry and it is a host name (RFC 6066: ASCII, no IP literal; one trailing dot,
// which RFC 6066 says not to send, is read as the same name), and no encrypted ClientHello
// (ECH, or the older ESNI) hides another name behind it. Anything else is "invalid" with a
// reason; too few bytes is "need_more".

/** The most bytes of records a ClientHello may take (post-quantum key shares make ~2 KB usual). */
export const CLIENT_HELLO_MAX_BYTES = 32 * 1024;

const RECORD_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
/** encrypted_client_hello (ECH), and the older draft's encrypted_server_name (ESNI). */
const EXT_ECH = 0xfe0d;
const EXT_ESNI = 0xffce;
const RECORD_MAX = 16_384;

export type HelloParse =
  | { state: "need_more" }
  | { state: "invalid"; reason: string }
  /** `serverName`: the SNI host name in lower case, or null when the hello names none. */
  | { state: "done"; serverName: string | null; length: number };

class Invalid extends Error {}

/** Read the ClientHello at the start of `buf` (the first bytes a client sent in a tunnel). */
export function parseClientHello(buf: Buffer): HelloParse {
  try {
    return readFlight(buf);
  } catch (e) {
    if (e instanceof Invalid) return { state: "invalid", reason: e.message };
    throw e;
  }
}

function readFlight(buf: Buffer): HelloParse {
  const fragments: Buffer[] = [];
  let have = 0;
  let need = -1;
  let off = 0;
  for (;;) {
    if (buf.length < off + 5) return needMore(buf);
    const type = buf[off]!;
    if (type !== RECORD_HANDSHAKE) {
      throw new Invalid(
        off === 0
          ? `not TLS: the first byte is 0x${hex(type)}, a TLS handshake record starts with 0x16`
          : `a record of type 0x${hex(type)} came before the ClientHello was complete`,
      );
    }
    const major = buf[off + 1]!;
    const minor = buf[off + 2]!;
    if (major !== 3 || minor > 4) throw new Invalid(`record version ${major}.${minor} is not TLS`);
    const len = buf.readUInt16BE(off + 3);
    if (len === 0 || len > RECORD_MAX) throw new Invalid(`record length ${len} is outside 1..${RECORD_MAX}`);
    if (buf.length < off + 5 + len) return needMore(buf);
    fragments.push(buf.subarray(off + 5, off + 5 + len));
    have += len;
    off += 5 + len;
    if (need < 0 && have >= 4) {
      const head = Buffer.concat(fragments);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO)
        throw new Invalid(`the first handshake message is of type ${head[0]}, not a ClientHello (1)`);
      need = 4 + head.readUIntBE(1, 3);
      if (need > CLIENT_HELLO_MAX_BYTES)
        throw new Invalid(`ClientHello of ${need} bytes is larger than ${CLIENT_HELLO_MAX_BYTES}`);
    }
    if (need >= 0 && have >= need) {
      if (have > need) throw new Invalid("bytes follow the ClientHello in its last record");
      const message = Buffer.concat(fragments);
      return { state: "done", serverName: serverNameOf(message.subarray(4)), length: off };
    }
  }
}

function needMore(buf: Buffer): HelloParse {
  if (buf.length > CLIENT_HELLO_MAX_BYTES)
    throw new Invalid(`no complete ClientHello in the first ${CLIENT_HELLO_MAX_BYTES} bytes`);
  return { state: "need_more" };
}

/** A cursor over the ClientHello body; reading past a vector's end is Invalid. */
class Reader {
  constructor(
    private readonly b: Buffer,
    private off = 0,
    private readonly end = b.length,
  ) {}
  get left(): number {
    return this.end - this.off;
  }
  u8(): number {
    this.need(1);
    return this.b[this.off++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.b.readUInt16BE(this.off);
    this.off += 2;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const v = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }
  /** A sub-reader over the next `n` bytes (a length-prefixed vector). */
  vector(n: number, what: string): Reader {
    if (n > this.left) throw new Invalid(`${what} claims ${n} bytes, only ${this.left} remain`);
    const r = new Reader(this.b, this.off, this.off + n);
    this.off += n;
    return r;
  }
  private need(n: number): void {
    if (n > this.left) throw new Invalid("ClientHello is truncated");
  }
}

function serverNameOf(body: Buffer): string | null {
  const r = new Reader(body);
  const version = r.u16();
  if (version >> 8 !== 3) throw new Invalid(`ClientHello version 0x${version.toString(16)} is not TLS`);
  r.bytes(32); // random
  const sessionLen = r.u8();
  if (sessionLen > 32) throw new Invalid(`session id of ${sessionLen} bytes (at most 32)`);
  r.bytes(sessionLen);
  const suitesLen = r.u16();
  if (suitesLen < 2 || suitesLen % 2 !== 0) throw new Invalid(`cipher suites length ${suitesLen} is invalid`);
  r.vector(suitesLen, "cipher suites");
  const compLen = r.u8();
  if (compLen < 1) throw new Invalid("no compression methods");
  r.vector(compLen, "compression methods");
  if (r.left === 0) return null; // no extensions at all (TLS 1.2 allows it)
  const extLen = r.u16();
  if (extLen !== r.left)
    throw new Invalid(`extensions length ${extLen} does not match the ${r.left} bytes left`);
  const exts = r.vector(extLen, "extensions");
  const seen = new Set<number>();
  let name: string | null = null;
  while (exts.left > 0) {
    const type = exts.u16();
    const len = exts.u16();
    const data = exts.vector(len, `extension ${type}`);
    if (seen.has(type)) throw new Invalid(`extension ${type} appears twice`);
    // The SNI checked would be the outer, public one; a front that decrypts the inner hello
    // (a CDN) serves the host it names there, which nobody judged.
    if (type === EXT_ECH || type === EXT_ESNI)
      throw new Invalid(
        "the ClientHello carries an encrypted ClientHello (ECH): the server it asks for is hidden",
      );
    seen.add(type);
    if (type === EXT_SERVER_NAME) name = readServerName(data);
  }
  return name;
}

function readServerName(r: Reader): string {
  const listLen = r.u16();
  if (listLen !== r.left) throw new Invalid("server_name list length does not match its extension");
  const list = r.vector(listLen, "server_name list");
  const nameType = list.u8();
  if (nameType !== 0) throw new Invalid(`server_name entry of type ${nameType} (only host_name, 0)`);
  const len = list.u16();
  if (len === 0) throw new Invalid("empty server name");
  const raw = list.bytes(len);
  if (list.left !== 0) throw new Invalid("server_name holds more than one name");
  const written = raw.toString("latin1");
  // One trailing dot (a fully qualified name) is the same name; RFC 6066 says to send none.
  const text = written.endsWith(".") ? written.slice(0, -1) : written;
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(text))
    throw new Invalid(`server name "${printable(written)}" is not a host name`);
  if (/^\d+(\.\d+){3}$/.test(text))
    throw new Invalid(`server name ${text} is an IP address (RFC 6066 forbids it)`);
  return text.toLowerCase();
}

const hex = (n: number): string => n.toString(16).padStart(2, "0");

function printable(s: string): string {
  const shown = s.replace(/[^\x20-\x7e]/g, "?");
  return shown.length > 80 ? `${shown.slice(0, 80)}…` : shown;
}
