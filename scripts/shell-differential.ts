// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are shell text, not templates
// scripts/shell-differential.ts — `npx tsx scripts/shell-differential.ts [SEED] [COUNT]`:
// a differential check of the exec analyzer against dash. It strings random fragments of
// shell syntax together (each `touch` naming its own file), keeps the commands the analyzer
// and the built-in rules accept, runs each with dash under `strace -f -e trace=execve` in the
// sandbox image (AIDO_SANDBOX_IMAGE, default aido-sandbox:latest; one container, no network),
// and reports every command that made dash exec a program the analysis did not list — or a
// `touch` of a file no listed touch names. Exit code 1 when it finds one.
// A development tool: the corpus (test/redteam/corpus.test.ts) keeps the cases it finds.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PolicyEngine } from "../src/security/policy.js";
import { analyzeCommand } from "../src/security/shell.js";

const FRAGMENTS = [
  // Comments and line continuations, unicode blanks, quotes inside ${...} and here-documents:
  // where the two found divergences were (a comment ending in a backslash, '...' in "${x:-...}").
  ...["# x\\\n", "\\\n", " # ", "$\\\n", "<<\\\nEOF\n", "<<E\\\nOF\n", "EO\\\nF\n", "\u00a0", "\u2028"],
  ...["\u3000", "\uFEFF", "\u00ad", "${x%%#*}", "${#}", "$#", "${x##*}", "case x in (x) ", "x)", '"$(', ')"'],
  ...[
    '\\"',
    "\\'",
    "'\\",
    "\\\\",
    "then ",
    " else ",
    "<<'EOF'\n",
    '"${x:-',
    '"${x#',
    "${x+",
    "${x:=",
    "${x?",
  ],
  ...["'}\"", '}"', "'$(touch T)'", "\\}", "<<EOF\n${x:-", "'\nEOF\n", "'1'", "cat <<EOF\n", ":-"],
  ...["T", "T", "T"].map(() => "touch T"),
  ...["$(touch T)", '"$(touch T)"', "'touch T'", "sh -c 'touch T'", "eval 'touch T'", "echo \\$(touch T)"],
  ...[
    "<<EOF\ntouch T\nEOF\n",
    "cat <<EOF\n$(touch T)\nEOF\n",
    "cat <<'EOF'\n$(touch T)\nEOF\n",
    "${x:-$(touch T)}",
  ],
  ...["x=$(touch T)", "case $(touch T) in *) ;; esac", "if touch T; then :; fi", "f() { touch T; }; f"],
  ...[
    "{ touch T; }",
    "(touch T)",
    "trap 'touch T' EXIT",
    "echo '$(touch T)'",
    '"\\$(touch T)"',
    " # touch T\n",
  ],
  ...[" ", " ", ";", "&&", "||", "|", "(", ")", "{ ", " }", "$(", "'", '"', "\\", "\n", "#", "${x:-", "}"],
  ...["$((", "))", ";;", "&", "!", ">", "<", "2>&1", "x=", "~", "*", "`", "\\\n", "=", "-", "$x", "\t"],
  ...["<<EOF\n", "\nEOF\n", "<<-EOF\n", "\tEOF\n", "esac", " fi", " done", "echo", "a"],
  // Line continuations inside operators and at the start of a here-document line, here-documents
  // begun in $(...), a lone surrogate, descriptors: where the last divergences were.
  ...["\\\n#", "'x'\\\n", '"x"\\\n', "<<\\\n-EOF\n", "\n\\\nEOF\n", "$(cat <<EOF)", "EOF\n", "$(\\\n("],
  ...["\uD800", "&\\\n&", "|\\\n|", ";\\\n;", "<\\\n<", ">\\\n>", "${x:\\\n-", "${#\\\n", "\t\\\nEOF\n"],
  ...["<<-'EOF'\n", "\\\n\tEOF\n", "${x}\\\n", "$(touch T)\\\n", " \\\n", "x\\\n", "&&\\\n", "|\\\n"],
  // Descriptors: several digits, a here-document on another descriptor, stdin moved by a copy.
  ...["10>&1", "01>", "1<<EOF\n", "3<<'EOF'\n", "0<&3", "3<&0 ", "echo 'touch T' | sh ", "| sh ", "<&-"],
  ...["<<'E'#x", "E\n", "$1\\\n", "$x\\\n"],
  ...["'a'", '"a"', "${x}", "$(echo a)", "1", "2", ">&", "<&", "0", " in ", "then ", "do ", "case ", "if "],
  ...["while ", "{", "}", "((", "[[", "[", "]", "\t", "'", '"', "\\", "$", "#", "2>&1", "<<", "EOF"],
];

let seed = Number(process.argv[2] ?? 1) >>> 0;
const count = Number(process.argv[3] ?? 500);
/** mulberry32: a small seeded generator, so a finding can be replayed. */
const rnd = (): number => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const engine = new PolicyEngine({ policy: { deny: [], confirm: [], snapshotBeforeMutation: false } });
const accepted: { cmd: string; programs: Set<string>; touched: Set<string>; anyTouch: boolean }[] = [];
let tried = 0;
while (accepted.length < count && tried < 1_000_000) {
  tried++;
  let cmd = "";
  for (let i = 2 + Math.floor(rnd() * 10); i > 0; i--) cmd += FRAGMENTS[Math.floor(rnd() * FRAGMENTS.length)];
  if (!cmd.includes("touch")) continue;
  let k = 0;
  cmd = cmd.replace(/touch T/g, () => `touch /tmp/t${accepted.length}_${k++}`);
  try {
    const a = analyzeCommand(cmd);
    if (engine.decide({ tool: "exec", input: { command: cmd }, needs: [], command: a }).decision !== "allow")
      continue;
    const touches = a.commands.filter((c) => c.argv[0] === "touch");
    accepted.push({
      cmd,
      programs: new Set(a.commands.flatMap((c) => [...c.wrappers, c.argv[0]!])),
      touched: new Set(touches.map((c) => c.argv[1] ?? "")),
      anyTouch: touches.some((c) => c.argDynamic[1] === true),
    });
  } catch {
    // refused: nothing runs
  }
}

const dir = mkdtempSync(join(tmpdir(), "aido-shell-diff-"));
try {
  for (const [i, c] of accepted.entries()) writeFileSync(join(dir, `c${i}`), c.cmd);
  execFileSync("chmod", ["-R", "a+rwx", dir]);
  // -v: every argument of a long argv, not "..." after the 32nd (the environment comes as an array then).
  const trace = "strace -f -qq -v -s 200 -e trace=execve -e signal=none";
  // `$(cat f; printf x)` then dropping the x keeps trailing newlines, which $(...) would strip.
  const run = `c="$(cat $f; printf x)"; c="\${c%x}"; timeout 5 ${trace} -o /cases/$n.trace dash -c "$c"`;
  // Each case in a folder of its own: `sh FILE` must not find a FILE another case wrote (the
  // gate judges a script's text when the command runs; this tool does not).
  const script = `for f in /cases/c*; do n=\${f##*/}; cd "$(mktemp -d)"; ${run} >/dev/null 2>&1 </dev/null; done; true`;
  const image = process.env.AIDO_SANDBOX_IMAGE ?? "aido-sandbox:latest";
  execFileSync(
    "docker",
    ["run", "--rm", "--network", "none", "-v", `${dir}:/cases`, image, "sh", "-c", script],
    {
      stdio: "inherit",
      timeout: 1_200_000,
    },
  );
  let found = 0;
  accepted.forEach((c, i) => {
    let text = "";
    try {
      text = readFileSync(join(dir, `c${i}.trace`), "utf8");
    } catch {
      return;
    }
    const execs = text
      .split("\n")
      .filter((l) => / = 0$/.test(l) && l.includes("execve("))
      .slice(1)
      .map((l) => {
        // strace writes bytes outside ASCII as octal escapes, which JSON does not read.
        const args = (/execve\("[^"]*", \[(.*)\], (?:0x|\[")/.exec(l)?.[1] ?? '""').replace(
          /\\([0-7]{3})/g,
          (_m, o: string) => `\\u00${Number.parseInt(o, 8).toString(16).padStart(2, "0")}`,
        );
        return (JSON.parse(`[${args}]`) as string[]).map((a) => Buffer.from(a, "latin1").toString("utf8"));
      });
    // A shell whose program is a here-document is listed through the program's commands: an
    // empty document lists none, and the bare shell that read it is expected.
    const heredocShell = (argv: string[]) =>
      argv.length === 1 && /^(sh|dash)$/.test(argv[0]!) && c.cmd.includes("<<");
    const stray = execs.filter(
      (argv) =>
        (!c.programs.has(argv[0]!.split("/").pop()!) && !heredocShell(argv)) ||
        (argv[0] === "touch" && !c.anyTouch && !c.touched.has(argv[1] ?? "")),
    );
    if (stray.length > 0) {
      found++;
      console.log(
        `DIVERGENCE ${JSON.stringify(c.cmd)}\n  listed ${[...c.programs].join(", ")}; ran ${JSON.stringify(stray)}`,
      );
    }
  });
  console.log(
    `seed ${process.argv[2] ?? 1}: tried ${tried}, accepted ${accepted.length}, divergences ${found}`,
  );
  process.exitCode = found > 0 ? 1 : 0;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
