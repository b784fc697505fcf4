// llm/buffered-response.ts — the answer http-fetch hands the SDKs for a buffered (not
// streamed) body: the Response interface over bytes already read. Why: undici's `Response`
// wraps even a finished body in a web stream, and its constructor and `json()` go through
// that stream machinery, a measurable share of a model call's CPU (docs/agents.md). Here
// `text()` and `json()` decode the bytes directly; a `body` stream is made only when a
// caller asks for it.
//
// It behaves as fetch's Response does for everything a caller can observe (the
// differential test, test/llm/buffered-response.test.ts, reads every kind of body through
// both): a body is read once (`bodyUsed`; a second read rejects with fetch's TypeError,
// `clone()` of a used body throws), text is UTF-8 with a leading BOM dropped, `json()`
// throws JSON.parse's SyntaxError, `blob()` and `formData()` go through the platform's own
// Response so MIME types and multipart parsing are exactly fetch's. It is not
// `instanceof Response` (docs/providers.md).

/** fetch's error for a body read twice (undici's text). */
const UNUSABLE = "Body is unusable: Body has already been read";

const utf8 = new TextDecoder();

export interface BufferedResponseInit {
  status: number;
  statusText: string;
  headers: Headers;
  url: string;
}

export class BufferedResponse implements Response {
  readonly status: number;
  readonly statusText: string;
  readonly headers: Headers;
  readonly url: string;
  readonly redirected = false;
  readonly type: Response["type"] = "basic";
  readonly #bytes: Uint8Array;
  #used = false;
  /** The body stream, once a caller asked for it. */
  #stream: ReadableStream<Uint8Array> | undefined;

  constructor(bytes: Uint8Array, init: BufferedResponseInit) {
    // Response's own check (and text): http-fetch fails the call with it as the cause.
    if (init.status < 200 || init.status > 599 || !Number.isInteger(init.status)) {
      throw new RangeError('init["status"] must be in the range of 200 to 599, inclusive.');
    }
    this.#bytes = bytes;
    this.status = init.status;
    this.statusText = init.statusText;
    this.headers = init.headers;
    this.url = init.url;
  }

  get ok(): boolean {
    return this.status >= 200 && this.status <= 299;
  }

  /** Read (by a method or through `body`) or cancelled, as fetch's `bodyUsed`. */
  get bodyUsed(): boolean {
    return this.#used;
  }

  get body(): ReadableStream<Uint8Array> {
    if (this.#stream) return this.#stream;
    const bytes = this.#bytes;
    let sent = this.#used;
    // No high-water mark: pull runs only when a reader asks, which is when fetch's body is disturbed.
    this.#stream = new ReadableStream<Uint8Array>(
      {
        pull: (c) => {
          this.#used = true;
          if (!sent && bytes.byteLength > 0) c.enqueue(bytes.slice());
          sent = true;
          c.close();
        },
        cancel: () => {
          this.#used = true;
        },
      },
      { highWaterMark: 0 },
    );
    // fetch reads a body through its stream, which stays locked after: so does this one.
    if (this.#used) this.#stream.getReader();
    return this.#stream;
  }

  clone(): Response {
    if (this.#used || this.#stream?.locked)
      throw new TypeError("Response.clone: Body has already been consumed.");
    const { status, statusText, url } = this;
    return new BufferedResponse(this.#bytes, { status, statusText, headers: new Headers(this.headers), url });
  }

  async text(): Promise<string> {
    return utf8.decode(this.#take());
  }

  async json(): Promise<unknown> {
    return JSON.parse(utf8.decode(this.#take()));
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    return this.#take().slice().buffer;
  }

  /** Present in Node's fetch from 20.x on, though not in its types. */
  async bytes(): Promise<Uint8Array> {
    return this.#take().slice();
  }

  async blob(): Promise<Blob> {
    return this.#platform().blob();
  }

  async formData(): Promise<FormData> {
    return this.#platform().formData();
  }

  /** The bytes, marking the body read; rejects as fetch does when it was read or locked already. */
  #take(): Uint8Array {
    if (this.#used || this.#stream?.locked) throw new TypeError(UNUSABLE);
    this.#used = true;
    this.#stream?.getReader();
    return this.#bytes;
  }

  /** The platform's own Response over the bytes, for what it parses by the content type. */
  #platform(): Response {
    const bytes = this.#take();
    const type = this.headers.get("content-type");
    return new Response(bytes, type === null ? {} : { headers: { "content-type": type } });
  }
}
