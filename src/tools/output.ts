// tools/output.ts — how tool output is made fit for the model to see: control characters
// a file, a command or a web page put there (NUL, ESC sequences, C1 controls) are shown as
// inert `\xNN` text, then the text is cut by bytes (UTF-8, never splitting a character),
// with the cut said in words, so the model knows it saw only part and how much there was.
// Raw escapes would otherwise travel in the request body to the provider and in events
// and socket results to terminals (`aido watch`), where ESC sequences act.

/** C0 controls except tab, newline and carriage return; DEL; C1 controls. */
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g;

export function inertText(text: string): string {
  return text.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

export function boundOutput(raw: string, maxBytes: number): string {
  const text = inertText(raw);
  const buf = Buffer.from(text, "utf8");
  if (buf.length <= maxBytes) return text;
  let end = maxBytes;
  // Step back to a character boundary (continuation bytes are 10xxxxxx).
  while (end > 0 && ((buf[end] ?? 0) & 0xc0) === 0x80) end--;
  return `${buf.subarray(0, end).toString("utf8")}\n[output truncated: showed ${end} of ${buf.length} bytes]`;
}
