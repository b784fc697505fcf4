// tools/html-text.ts — readable text from an HTML page for the model: scripts, styles and
// comments dropped, block elements turned into line breaks, entities decoded. Written as
// a linear scan (no backtracking regex over the whole page), since pages are untrusted
// and up to webFetch.maxBytes long.

const DROP = ["script", "style", "noscript", "template", "svg", "iframe", "object"];
const BLOCK =
  /^\/?(p|div|section|article|header|footer|nav|main|aside|ul|ol|tr|table|h[1-6]|pre|blockquote|br|hr|title|dd|dt|form)$/;
const ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  nbsp: " ",
  mdash: "—",
  ndash: "–",
  hellip: "…",
  copy: "©",
};

export function htmlToText(html: string): string {
  const out: string[] = [];
  let i = 0;
  const lower = html.toLowerCase();
  while (i < html.length) {
    const lt = html.indexOf("<", i);
    if (lt < 0) {
      out.push(html.slice(i));
      break;
    }
    out.push(html.slice(i, lt));
    if (html.startsWith("<!--", lt)) {
      const end = html.indexOf("-->", lt + 4);
      i = end < 0 ? html.length : end + 3;
      continue;
    }
    const gt = html.indexOf(">", lt + 1);
    if (gt < 0) break;
    const name = /^\/?[a-zA-Z0-9]+/.exec(html.slice(lt + 1, Math.min(gt, lt + 20)))?.[0].toLowerCase() ?? "";
    i = gt + 1;
    if (DROP.includes(name)) {
      const close = lower.indexOf(`</${name}`, i);
      const closeEnd = close < 0 ? -1 : html.indexOf(">", close);
      i = closeEnd < 0 ? html.length : closeEnd + 1;
      out.push(" ");
      continue;
    }
    if (name === "li") out.push("\n- ");
    else if (BLOCK.test(name)) out.push("\n");
  }
  return decodeEntities(out.join(""))
    .split("\n")
    .map((l) => l.replace(/[ \t\r\f\v]+/g, " ").trim())
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z]{2,8});/g, (m, body: string) => {
    if (body.startsWith("#")) {
      const code =
        body[1] === "x" || body[1] === "X" ? Number.parseInt(body.slice(2), 16) : Number(body.slice(1));
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : m;
    }
    return ENTITIES[body.toLowerCase()] ?? m;
  });
}
