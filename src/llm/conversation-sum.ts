// llm/conversation-sum.ts — a per-message measure summed over a conversation, for the
// checks that run over the whole conversation before every turn (the context estimate,
// agent/context.ts; the token bound a call reserves, llm/token-bound.ts). The agent loop
// appends to one array turn after turn, so the sum is kept per array with the messages
// (and their content) it covered: a call compares those with the array, one identity
// check each, and measures only what follows the longest prefix still the same. A message
// replaced, removed or inserted, or given another content, ends the prefix there, and all
// that follows is measured again. What is measured must not change in place: a content
// array is never edited once in a conversation (the loop appends messages, a summary
// builds new ones), which is also what the measures' own per-array caches rely on.

import type { Message } from "./types.js";

interface Kept {
  messages: Message[];
  contents: Message["content"][];
  /** sums[i]: the measure of messages[0..i]. */
  sums: number[];
}

export class ConversationSum {
  readonly #kept = new WeakMap<readonly Message[], Kept>();

  constructor(private readonly measure: (m: Message) => number) {}

  of(messages: readonly Message[]): number {
    let kept = this.#kept.get(messages);
    if (!kept) {
      kept = { messages: [], contents: [], sums: [] };
      this.#kept.set(messages, kept);
    }
    const same = Math.min(kept.messages.length, messages.length);
    let i = 0;
    while (i < same) {
      const m = messages[i] as Message;
      if (m !== kept.messages[i] || m.content !== kept.contents[i]) break;
      i++;
    }
    kept.messages.length = i;
    kept.contents.length = i;
    kept.sums.length = i;
    let total = i > 0 ? (kept.sums[i - 1] as number) : 0;
    for (; i < messages.length; i++) {
      const m = messages[i] as Message;
      total += this.measure(m);
      kept.messages.push(m);
      kept.contents.push(m.content);
      kept.sums.push(total);
    }
    return total;
  }
}
