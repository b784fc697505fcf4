// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are shell text, not templates
// Red team: text the parser and dash read differently. Found with a differential fuzz of the
// analyzer against dash in the image (strace -e execve on every accepted command): each
// command below was judged as an `echo` (or a `cat`) while dash ran `touch`. Played by an
// agent holding only `exec: echo *` and `exec: cat *` (and `sh *` for a script), through
// the real gate in the real container; each is refused before anything runs and leaves no
// canary.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectRefused, openSharedBench, type SharedBench } from "./shared-bench.js";

let b: SharedBench;

const ECHO = [
  "tool: exec",
  "file_read: /workspace/**",
  "file_write: /workspace/**",
  "exec: echo *",
  "exec: cat *",
];

beforeAll(async () => {
  b = await openSharedBench({
    profiles: { echo: ECHO, scripts: [...ECHO, "exec: sh *", "exec: /workspace/s/nul.sh"] },
    files: {
      "/workspace/s/comment.sh": "echo building # step 1\\\ntouch /workspace/pwn-script\n",
      // dash drops NUL bytes from what it reads: this is a shell script, not a binary.
      "/workspace/s/nul.sh": "#!/bin/sh\n\0\ntouch /workspace/pwn-nul\n",
    },
    setup: "chmod +x /workspace/s/nul.sh",
  });
}, 240_000);

afterAll(async () => {
  await b?.close();
});

const COMMENT = /a comment ending in a backslash/;
const QUOTES = /single quotes inside \$\{x:-\.\.\.\}/;
const DOLLAR = /a \$ followed by a line continuation/;
const CONTINUED = /a line continuation right after/;
const HEREDOC_IN_SUBST =
  /a here-document inside \$\(\.\.\.\) whose text does not start before the closing \)/;
const SURROGATE = /not well-formed Unicode \(a lone surrogate U\+D800\)/;

describe("what the parser and dash read differently", () => {
  it.each([
    [
      "a backslash-newline at the end of a comment (dash ends the comment, the parser read on)",
      "echo a # x\\\ntouch /workspace/pwn-comment",
      "pwn-comment",
      COMMENT,
    ],
    ["the same inside $(...)", "echo $(: # x\\\ntouch /workspace/pwn-comment2)", "pwn-comment2", COMMENT],
    [
      "single quotes in ${x:-...} within double quotes (dash reads them as plain characters)",
      "echo \"${x:-'$(touch /workspace/pwn-dq)'}\"",
      "pwn-dq",
      QUOTES,
    ],
    [
      "an unbalanced quote there, which shifts every later word",
      'echo "${x+\'}" $(touch /workspace/pwn-dq2) "\'}"',
      "pwn-dq2",
      QUOTES,
    ],
    [
      "the same in an unquoted here-document",
      "cat <<EOF\n${x:-\\}' $(touch /workspace/pwn-heredoc) '}\nEOF\n",
      "pwn-heredoc",
      QUOTES,
    ],
    [
      "a $ and a # split by a line continuation (dash joins them into $#, the parser read a comment)",
      'echo $\\\n#"$(touch /workspace/pwn-dollar)"',
      "pwn-dollar",
      DOLLAR,
    ],
    [
      "the same after two continuations",
      'echo $\\\n\\\n#"$(touch /workspace/pwn-dollar2)"',
      "pwn-dollar2",
      DOLLAR,
    ],
    [
      "a $ and its ( split by a line continuation inside double quotes",
      'echo "$\\\n(touch /workspace/pwn-dollar3)"',
      "pwn-dollar3",
      DOLLAR,
    ],
    [
      "the same in a here-document",
      "cat <<EOF\n$\\\n(touch /workspace/pwn-dollar4)\nEOF\n",
      "pwn-dollar4",
      DOLLAR,
    ],
    [
      "a quote, a line continuation and a # (dash reads one word x#..., the parser a comment)",
      'echo "x"\\\n#"$(touch /workspace/pwn-cont1)"',
      "pwn-cont1",
      CONTINUED,
    ],
    [
      "a here-document line that starts with a continuation (dash ends the document there)",
      "cat <<EOF\n\\\nEOF\ntouch /workspace/pwn-cont2\nEOF\n",
      "pwn-cont2",
      CONTINUED,
    ],
    [
      "<< and - split by a continuation (dash reads <<-, which ends at a tab-indented EOF)",
      "cat <<\\\n-EOF\n\tEOF\ntouch /workspace/pwn-cont3\n-EOF\n",
      "pwn-cont3",
      CONTINUED,
    ],
    [
      "a continuation in a <<- here-document (dash keeps the tabs of the joined line, the parser ended the document)",
      // The delimiter is a granted program: the parser read its lines as echo commands.
      "cat <<-echo\nx \\\n\techo\necho '$(touch /workspace/pwn-tabbed)'\necho\n",
      "pwn-tabbed",
      /a line continuation in a <<- here-document/,
    ],
    [
      "a here-document begun in $(...) with its text after the ) (dash ends it at the EOF glued to the ))",
      "echo $(cat <<EOF)EOF\ntouch /workspace/pwn-hdsub\nEOF\n",
      "pwn-hdsub",
      HEREDOC_IN_SUBST,
    ],
    [
      "a lone surrogate (the parser's encoder swallowed the ; after it, dash read U+FFFD and the ;)",
      "echo \uD800;touch /workspace/pwn-surrogate",
      "pwn-surrogate",
      SURROGATE,
    ],
  ])(
    "refuses %s",
    async (_what, command, canary, why) => {
      const r = await b.exec("echo", command);
      expect(b.exists(`/workspace/${canary}`), `${command} ran touch`).toBe(false);
      expectRefused(b, "echo", r, "policy", why);
    },
    60_000,
  );

  it("refuses a script file whose comment ends in a backslash (sh FILE is judged as the file reads)", async () => {
    const r = await b.exec("scripts", "sh /workspace/s/comment.sh");
    expect(b.exists("/workspace/pwn-script")).toBe(false);
    expectRefused(b, "scripts", r, "policy", COMMENT);
  }, 60_000);

  it("refuses a # glued to a quoted here-document delimiter (dash reads the delimiter E#x and runs what follows)", async () => {
    const r = await b.exec("echo", "cat <<'E'#x; touch /workspace/pwn-delim\nE\n");
    expect(b.exists("/workspace/pwn-delim"), "dash ran touch").toBe(false);
    expectRefused(b, "echo", r, "policy", /a # right after a quote or an expansion/);
  }, 60_000);

  it.each([
    ["on descriptor 3", "echo 'touch /workspace/pwn-fd3' | sh 3<<'EOF'\n:\nEOF\n", "pwn-fd3"],
    [
      "moved off stdin by 0<&3",
      "echo 'touch /workspace/pwn-dup' | sh 3<&0 <<'EOF' 0<&3\n:\nEOF\n",
      "pwn-dup",
    ],
  ])(
    "refuses a shell given a here-document %s while it reads its program from a pipe",
    async (_what, command, canary) => {
      const r = await b.exec("scripts", command);
      expect(b.exists(`/workspace/${canary}`), "sh ran the pipe").toBe(false);
      expectRefused(b, "scripts", r, "policy", /a shell reading its program from stdin/);
    },
    60_000,
  );

  it("refuses a shell program on stdin that moves descriptor 0 (dash reads the rest of its program from there)", async () => {
    const r = await b.exec(
      "scripts",
      "echo 'touch /workspace/pwn-exec0' | sh 3<&0 <<'EOF'\nexec 0<&3\nEOF\n",
    );
    expect(b.exists("/workspace/pwn-exec0"), "sh ran the pipe").toBe(false);
    expectRefused(
      b,
      "scripts",
      r,
      "policy",
      /exec moving descriptor 0 in a program a shell reads from its stdin/,
    );
  }, 60_000);

  it("refuses a shell program on stdin longer than dash writes to the pipe at once (read takes part of it)", async () => {
    // dash buffers 8 KiB of its program; read takes the line after it, dash runs the next.
    let body = "read x\n";
    while (body.length < 8192 - 100) body += `#${"x".repeat(98)}\n`;
    body += `${"#".repeat(8192 - body.length - 1)}\necho '\ntouch /workspace/pwn-read\n'\n`;
    const r = await b.exec("scripts", `sh <<'EOF'\n${body}EOF\n`);
    expect(b.exists("/workspace/pwn-read"), "dash ran touch").toBe(false);
    expectRefused(b, "scripts", r, "policy", /a here-document of more than 4096 bytes fed to sh/);
  }, 60_000);

  it("refuses a $1, a line continuation and a # (dash reads $1#..., the parser a comment)", async () => {
    const r = await b.exec("echo", "echo $1\\\n#$(touch /workspace/pwn-param)");
    expect(b.exists("/workspace/pwn-param"), "dash ran touch").toBe(false);
    expectRefused(b, "echo", r, "policy", /a # right after a quote or an expansion/);
  }, 60_000);

  it("judges a script holding a NUL byte as the script dash runs, not as a binary", async () => {
    const r = await b.exec("scripts", "/workspace/s/nul.sh");
    expect(b.exists("/workspace/pwn-nul"), "the script ran unjudged").toBe(false);
    expectRefused(b, "scripts", r, "policy", /it contains a NUL byte/);
  }, 60_000);

  it("still runs comments, pattern quotes and here-documents that read the same in both", async () => {
    for (const command of [
      "echo a # a comment\\\\\necho b",
      'x=abc; echo "${x#\'a\'}" "${x:-"q"}"',
      "cat <<'EOF'\n${x:-'$(not run)'}\nEOF\n",
      "echo a \\\n  b &&\\\necho c |\\\ncat",
      "cat <<'EOF'\nx = (1 +\\\n  2)\n\\\nEOF\n",
      'x=$(cat <<EOF\nhi\nEOF\n); echo "$x"',
    ]) {
      const r = await b.exec("echo", command);
      expect(r, command).not.toBeInstanceOf(Error);
      expect((r as { data?: { exit_code?: number } }).data?.exit_code, command).toBe(0);
    }
  }, 60_000);
});
