// security/approval-origin.ts — which socket request an approval request belongs to. The
// daemon gives every request that may make the gate ask (tool.invoke, plan.execute,
// intent.check, plan.simulate) an id of its own and runs it inside withRequestId; the
// approval queue stamps that id on each request it stores (its approval.requested event
// and audit entry), so a client that runs calls side by side knows which of its calls a
// request belongs to. Matched by what a request asks instead, two calls with the same input
// had their requests swapped: a cancel of one denied the other's, and its own stayed open.
// The id travels with the call's async context, so the gate between the socket and the
// queue needs to know nothing of it.

import { AsyncLocalStorage } from "node:async_hooks";
import { randomBytes } from "node:crypto";

const origin = new AsyncLocalStorage<string>();

/** A fresh request id: `req_` and 96 random bits, not guessable from another. */
export function newRequestId(): string {
  return `req_${randomBytes(12).toString("hex")}`;
}

/** Run `fn` as the request `requestId`: approvals it asks for carry that id. */
export function withRequestId<T>(requestId: string, fn: () => T): T {
  return origin.run(requestId, fn);
}

/** The request the running code belongs to, if any. */
export function currentRequestId(): string | undefined {
  return origin.getStore();
}
