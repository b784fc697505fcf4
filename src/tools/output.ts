// tools/output.ts — how tool output is cut to what the model may see: by bytes (UTF-8,
// never splitting a character), with the cut said in words, so the model knows it saw
// only part and how much there was.

export function boundOutput(text: string, maxBytes: number): string {
  const buf = Buffer.from(text, "utf8");
  if (buf.length <= maxBytes) return text;
  let end = maxBytes;
  // Step back to a character boundary (continuation bytes are 10xxxxxx).
  while (end > 0 && ((buf[end] ?? 0) & 0xc0) === 0x80) end--;
  return `${buf.subarray(0, end).toString("utf8")}\n[output truncated: showed ${end} of ${buf.length} bytes]`;
}
