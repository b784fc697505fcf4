// security/approval-origin.ts — which socket request an approval request belongs to. The
// daemon gives every request that may make the gate ask (tool.invoke, plan.execute,
// intent.check, plan.simulate) an id of its own (daemon/methods.ts asCallRequest) and hands
// it down with the call (ToolCall.requestId, through the plan's steps and the intent's
// check); the approval queue stamps it on each request it stores (its approval.requested
// event and audit entry), so a client that runs calls side by side knows which of its calls
// a request belongs to. Matched by what a request asks instead, two calls with the same input
// had their requests swapped: a cancel of one denied the other's, and its own stayed open.
//
// The id is passed, not carried by the async context: an AsyncLocalStorage, once run, turns on
// Node 20's promise hooks for the whole process, and every promise of every agent turn after
// the first socket call paid for them (a promise-heavy loop ran 2.5 times slower).

import { randomBytes } from "node:crypto";

/** A fresh request id: `req_` and 96 random bits, not guessable from another. */
export function newRequestId(): string {
  return `req_${randomBytes(12).toString("hex")}`;
}
