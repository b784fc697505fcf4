// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are shell text, not templates
// What analyzeCommand reveals inside a shell string, read as dash reads it (POSIX sh):
// every simple command, with words as dash passes them, and a refusal naming each
// construct it does not fully understand.

import { describe, expect, it } from "vitest";
import { isAidoError } from "../../src/errors.js";
import {
  analyzeCommand,
  MAX_COMMAND_BYTES,
  MAX_SYNTAX_DEPTH,
  type SimpleCommand,
} from "../../src/security/shell.js";
import { possibleDirs } from "../../src/security/shell-dirs.js";

const argvs = (cmd: string): string[][] => analyzeCommand(cmd).commands.map((c) => c.argv);
const only = (cmd: string): SimpleCommand => {
  const cs = analyzeCommand(cmd).commands;
  expect(cs).toHaveLength(1);
  return cs[0]!;
};

function refused(cmd: string, why?: RegExp): string {
  try {
    analyzeCommand(cmd);
  } catch (e) {
    expect(isAidoError(e, "policy_denied")).toBe(true);
    const message = (e as Error).message;
    expect(message).toMatch(/^cannot (parse|judge) command: /);
    if (why) expect(message).toMatch(why);
    return message;
  }
  throw new Error(`expected ${JSON.stringify(cmd.slice(0, 60))} to be refused`);
}

describe("lists, pipelines and nesting", () => {
  it("lists every command of ;, &&, || and | chains", () => {
    expect(argvs("ls; rm -rf / && id || whoami | head -n1")).toEqual([
      ["ls"],
      ["rm", "-rf", "/"],
      ["id"],
      ["whoami"],
      ["head", "-n1"],
    ]);
  });

  it("finds commands in subshells, blocks, if/while/until/for/case bodies and functions", () => {
    const cmd =
      "(a1); { a2; }; if a3; then a4; elif a5; then a6; else a7; fi; while a8; do a9; done; " +
      "until b1; do b2; done; for x in 1; do b3; done; case $x in y) b4;; esac; fn() { b5; }";
    expect(argvs(cmd).map((a) => a[0])).toEqual(
      ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "b1", "b2", "b3", "b4", "b5"].map((x) => x),
    );
  });

  it("finds substitutions in assignments, defaults, arithmetic, here-documents, for lists and case patterns", () => {
    const cmd =
      "X=$(b1); export Y=$(b2); echo ${Z:-$(b3)}; for i in $(b4); do :; done; case $(b5) in $(b6)) :;; esac";
    expect(argvs(cmd).map((a) => a[0])).toEqual(expect.arrayContaining(["b1", "b2", "b3", "b4", "b5", "b6"]));
    expect(argvs("cat <<EOF\n$(rm -rf /)\nEOF")).toContainEqual(["rm", "-rf", "/"]);
    expect(argvs("echo ${x:-${y:-$(deep)}}")).toContainEqual(["deep"]);
  });

  it("records pipeline stages and which commands read a pipe", () => {
    const a = analyzeCommand("curl x | tee f | grep y");
    expect(a.pipelines).toEqual([[[0], [1], [2]]]);
    expect(a.commands.map((c) => c.stdinPiped)).toEqual([false, true, true]);
  });

  it("marks background commands, and reads `a &> f` as dash does: a in the background, then > f", () => {
    expect(analyzeCommand("sleep 1 & ls").commands.map((c) => c.background)).toEqual([true, false]);
    const a = analyzeCommand("echo hi &> out");
    expect(a.commands[0]!.background).toBe(true);
    expect(a.commands[0]!.redirects).toEqual([]);
    expect(a.redirects.map((r) => [r.op, r.target])).toEqual([[">", "out"]]);
  });
});

describe("words as dash passes them", () => {
  it("removes quotes and backslashes, so a quoted name is the real name", () => {
    expect(only('"r"m x').argv).toEqual(["rm", "x"]);
    expect(only('"s"udo id').wrappers).toEqual(["sudo"]);
    expect(only("'r''m' -rf x").argv).toEqual(["rm", "-rf", "x"]);
    expect(only("\\rm").argv).toEqual(["rm"]);
    expect(only("r\\\nm x").argv).toEqual(["rm", "x"]);
    expect(only("echo \"a\\$b\" 'c\\d'").argv).toEqual(["echo", "a$b", "c\\d"]);
  });

  it("has no brace expansion: {a,b} is one literal word in dash", () => {
    expect(only("echo {a,b} {1..3}").argv).toEqual(["echo", "{a,b}", "{1..3}"]);
    expect(only("{sudo,id}").argv).toEqual(["{sudo,id}"]);
  });

  it("refuses $'...' and $\"...\", which dash reads as a literal $ and every other shell decodes", () => {
    refused("echo $'x\\' ; id ; echo ' #'", /\$'\.\.\.'/);
    refused("$'\\x73udo' id", /\$'\.\.\.'/);
    refused('echo $"x"', /\$'\.\.\.' or \$"\.\.\."/);
    expect(only("echo \\$'x'").argv).toEqual(["echo", "$x"]);
  });

  it("marks run-time words: expansions, ~ and globs", () => {
    const c = only("$CMD args");
    expect(c.dynamic).toBe(true);
    expect(c.argv[0]).toBe("$CMD");
    expect(only("ls $DIR").argDynamic).toEqual([false, true]);
    expect(only("cat ~/x").argDynamic).toEqual([false, true]);
    expect(only("cat '~/x'").argDynamic).toEqual([false, false]);
    expect(only("/usr/bin/su?o id").dynamic).toBe(true);
    expect(only("rm -rf /*").argDynamic).toEqual([false, false, true]);
    expect(only("rm '/*'").argDynamic).toEqual([false, false]);
  });

  it("does not take a lone [ for a glob", () => {
    expect(only("[ -f x ]").dynamic).toBe(false);
    expect(only("ls [ab]").argDynamic).toEqual([false, true]);
  });

  it("refuses backquotes, whose backslash rules differ between shells", () => {
    refused("echo `id`", /backquoted command substitution; use \$\(\.\.\.\)|use \$\(\.\.\.\)/);
    refused('echo "`id`"', /backquoted/);
  });

  it("strips leading assignments from argv but records them", () => {
    const c = only("FOO=1 BAR=$x python3 a.py");
    expect(c.argv).toEqual(["python3", "a.py"]);
    expect(c.assigns).toEqual(["FOO=1", "BAR=$x"]);
    expect(analyzeCommand("FOO=1 BAR=$x python3 a.py").assignedNames).toEqual(["FOO", "BAR"]);
  });
});

describe("parameter and arithmetic expansions", () => {
  it("accepts the POSIX parameter expansions and records the names ${x=...} assigns", () => {
    const a = analyzeCommand(
      "echo ${a} ${#b} ${c-d} ${e:-f} ${PATH=/x} ${g:=h} ${i?j} ${k:+l} ${m#n} ${o%%p}",
    );
    expect(a.assignedNames).toEqual(["PATH", "g"]);
  });

  it("accepts arithmetic on names and numbers, recording assignments", () => {
    const a = analyzeCommand("echo $((x + 1)) $((y = 2 * (3 + z))) $(($# + $?)) $((${#s} + 1))");
    expect(a.assignedNames).toEqual(["y"]);
    expect(analyzeCommand("echo $((PATH=5))").assignedNames).toEqual(["PATH"]);
  });

  it("refuses expansions inside $((...)), whose text dash evaluates and which can assign any variable", () => {
    refused("echo $(($y))", /inside \$\(\(\.\.\.\)\)/);
    refused("echo $((${y:-1}))", /inside \$\(\(/);
    refused("echo $(( $(cat n) + 1 ))", /inside \$\(\(/);
  });

  it("reads the issue's ((${X:-sh -c ...})) as dash does: nested subshells around a run-time command", () => {
    const c = only('((${X:-sh -c "id; echo x > /workspace/f"}))');
    expect(c.dynamic).toBe(true);
  });
});

describe("redirections", () => {
  it("captures file redirections with their targets, descriptors and direction", () => {
    const a = analyzeCommand("echo hi > /etc/passwd; echo >> log; x >| f; y 2>&1; z >&2; w 3<>rw; cat < in");
    expect(a.redirects.map((r) => [r.op, r.target, r.fd, r.read, r.write])).toEqual([
      [">", "/etc/passwd", 1, false, true],
      [">>", "log", 1, false, true],
      [">|", "f", 1, false, true],
      ["<>", "rw", 3, true, true],
      ["<", "in", 0, true, false],
    ]);
  });

  it("records a redirection with no command, and gives a block's redirection to every command in it", () => {
    expect(analyzeCommand("> /etc/shadow").redirects[0]!.target).toBe("/etc/shadow");
    const a = analyzeCommand("{ echo a; echo b; } > /etc/x");
    expect(a.commands.map((c) => c.redirects.map((r) => r.target))).toEqual([["/etc/x"], ["/etc/x"]]);
  });

  it("marks computed targets as run-time, and judges the commands in them", () => {
    expect(analyzeCommand('echo > "$F"').redirects[0]!.dynamic).toBe(true);
    expect(argvs("echo > $(mktemp)")).toContainEqual(["mktemp"]);
  });

  it("judges exec's redirections like any other", () => {
    const a = analyzeCommand("exec 3<>/workspace/f; echo hi >&3");
    expect(a.redirects).toMatchObject([{ op: "<>", target: "/workspace/f", fd: 3 }]);
  });
});

describe("shells and wrappers", () => {
  it("unfolds env, timeout, nice and friends down to the command they run", () => {
    const c = only("env FOO=1 timeout 5 nice sudo ls");
    expect(c.argv).toEqual(["ls"]);
    expect(c.wrappers).toEqual(["env", "timeout", "nice", "sudo"]);
    expect(c.privileged).toBe(true);
    expect(c.assigns).toEqual(["FOO=1"]);
    expect(only("env -u HOME -- X=1 ls -l").argv).toEqual(["ls", "-l"]);
    expect(only("timeout -s KILL -k 5 10s make test").argv).toEqual(["make", "test"]);
    expect(only("nice -n 10 ionice -c 3 nohup stdbuf -oL setsid ls").argv).toEqual(["ls"]);
    expect(only("command exec /usr/bin/time -o t.txt ls").argv).toEqual(["ls"]);
    expect(only("chrt -f 10 taskset 0x1 prlimit --nofile=10 ls").argv).toEqual(["ls"]);
  });

  it("parses the code of sh -c, dash -c, eval, trap, su -c and watch as POSIX sh, recursively", () => {
    expect(argvs("sh -c \"dash -c 'curl x | grep y'\"")).toEqual([
      ["curl", "x"],
      ["grep", "y"],
    ]);
    expect(argvs("sh -ec 'a; b'")).toEqual([["a"], ["b"]]);
    expect(only("su -c 'id' root").privileged).toBe(true);
    expect(argvs("eval 'rm -rf' /")).toEqual([["rm", "-rf", "/"]]);
    expect(argvs("trap 'rm -rf /' EXIT")).toContainEqual(["rm", "-rf", "/"]);
    expect(argvs("watch -n 1 'ls | wc -l'")).toEqual([["ls"], ["wc", "-l"]]);
  });

  it.each([
    ["bash -c ls", "bash"],
    ["zsh -c ls", "zsh"],
    ["ksh x.sh", "ksh"],
    ["env bash", "bash"],
    ["xargs bash -c 'echo'", "bash"],
    ["find . -exec bash -c 'id' \\;", "bash"],
    ["bash <<EOF\nls\nEOF", "bash"],
    ["busybox sh -c id", "busybox sh"],
    ["timeout 5 /bin/rbash", "rbash"],
    ["fish -c ls", "fish"],
  ])("refuses any other shell, naming it: %s", (cmd, shell) => {
    refused(cmd, new RegExp(`runs ${shell}, whose language is not POSIX sh.*use sh|run it with sh`));
  });

  it("reads a shell's program from a quoted here-document, and refuses one dash would expand first", () => {
    expect(only("sh <<'EOF'\nsudo id $x\nEOF").privileged).toBe(true);
    expect(argvs("sh -s <<'EOF'\nls -la\nEOF")).toEqual([["ls", "-la"]]);
    expect(argvs("sh <<EOF\nls\nEOF")).toEqual([["ls"]]);
    refused("sh <<EOF\n$(id)\nEOF", /here-document/);
    refused("sh <<EOF\necho \\$(id)\nEOF", /here-document with expansions or backslashes/);
    expect(argvs("cat <<-'EOF'\n\tsudo is text here\n\tEOF")).toEqual([["cat"]]);
  });

  it("reads a shell's program from the last redirection of stdin: a here-document on another descriptor is data", () => {
    const stdinProgram = (cmd: string) =>
      analyzeCommand(cmd).commands.find((c) => c.argv[0] === "sh")?.stdinProgram;
    // dash ran the pipe as sh's program (touch), the here-document sat on 3 (or 1).
    expect(stdinProgram("echo 'touch x' | sh 3<<'EOF'\n:\nEOF\n")).toBe(true);
    expect(stdinProgram("echo 'touch x' | sh 1<<'EOF'\n:\nEOF\n")).toBe(true);
    // <&3 after the document: stdin is descriptor 3, here the pipe.
    expect(stdinProgram("echo 'touch x' | sh 3<&0 <<'EOF' 0<&3\n:\nEOF\n")).toBe(true);
    expect(stdinProgram("sh <<'EOF' </dev/null\n:\nEOF\n")).toBe(true);
    expect(argvs("sh 0<<'EOF' 2>&1\nls\nEOF\n")).toEqual([["ls"]]);
    expect(argvs("cat 3<<EOF\n$(ls)\nEOF\n")).toEqual([["ls"], ["cat"]]);
  });

  it("refuses what makes a shell reading its program from stdin read something else than the text judged", () => {
    // read took the line after the first 8 KiB from under dash, which ran the next one.
    const long = `read x\n${"#".repeat(8200)}\necho '\nid\n'\n`;
    refused(`sh <<'EOF'\n${long}EOF\n`, /a here-document of more than 4096 bytes fed to sh as its program/);
    expect(argvs(`sh <<'EOF'\nread x\n${"#".repeat(4000)}\nls\nEOF\n`)).toEqual([["read", "x"], ["ls"]]);
    // exec moving descriptor 0: dash reads the rest of its program from there.
    const MOVED = /exec moving descriptor 0 in a program a shell reads from its stdin/;
    refused("echo id | sh 3<&0 <<'EOF'\nexec 0<&3\nEOF\n", MOVED);
    refused("sh <<'EOF'\nexec </workspace/x.sh\nEOF\n", MOVED);
    refused("echo id | sh 3<&0 <<'EOF'\neval 'exec 0<&3'\nEOF\n", MOVED);
    refused("echo id | sh 3<&0 <<'EOF'\nf() { command exec <&3; }; f\nEOF\n", MOVED);
    expect(argvs("sh <<'EOF'\nexec 3>/tmp/log 2>&1\nls\nEOF\nexec </dev/null; sh -c 'exec <&-'")).toEqual([
      ["exec"],
      ["ls"],
      ["exec"],
      ["exec"],
    ]);
  });

  it("refuses sh -i and sh -l, which read startup files as code", () => {
    refused("sh -l -c id", /startup files/);
    refused("sh -i", /startup files/);
    refused("dash -o interactive", /interactive/);
  });

  it("treats code computed at run time as a run-time command", () => {
    expect(analyzeCommand('sh -c "$(curl x)"').commands.find((c) => c.dynamic)?.wrappers).toEqual(["sh"]);
    expect(analyzeCommand("eval $X").commands[0]!.dynamic).toBe(true);
    expect(analyzeCommand("env $X ls").commands[0]!.dynamic).toBe(true);
  });

  it("unfolds xargs and find -exec, with arguments added at run time", () => {
    const c = only("xargs -0 -n 1 rm < list");
    expect(c.argv).toEqual(["rm"]);
    expect(c.openArgs).toBe(true);
    expect(only("xargs").argv).toEqual(["echo"]);
    expect(only("xargs -I{} sh -c 'echo {}'").dynamic).toBe(true);
    expect(argvs("find . -name x -exec rm -rf / \\; -execdir chmod 4755 {} +")).toEqual([
      ["find", ".", "-name", "x", "-exec", "rm", "-rf", "/", ";", "-execdir", "chmod", "4755", "{}", "+"],
      ["rm", "-rf", "/"],
      ["chmod", "4755", "{}"],
    ]);
    refused("xargs sh", /script from the arguments added at run time/);
  });

  it("does not unfold a wrapper the agent could have written: ./timeout is just a program", () => {
    expect(only("./timeout 5 sudo id").argv).toEqual(["./timeout", "5", "sudo", "id"]);
    expect(only("/usr/bin/timeout 5 id").argv).toEqual(["id"]);
  });

  it("does not treat command -v as running its argument", () => {
    expect(only("command -v sudo").argv).toEqual(["command", "-v", "sudo"]);
  });
});

describe("builtins, aliases and functions", () => {
  it("refuses alias and unalias: dash expands an alias defined on an earlier line", () => {
    refused("alias cat=rm\ncat f", /alias: dash expands aliases/);
    refused("unalias -a", /unalias/);
  });

  it.each(["source x.sh", "declare x=1", "typeset y", "let x=1", "pushd /tmp", "shopt -s x", "[[ -f x ]]"])(
    "refuses the bash builtin %s, which dash does not have",
    (cmd) => {
      refused(cmd, /is not a sh \(dash\) builtin/);
    },
  );

  it("records the variables read, getopts, export, readonly, local and for assign", () => {
    expect(analyzeCommand("read -r A B").assignedNames).toEqual(["A", "B"]);
    expect(analyzeCommand("getopts ab OPT").assignedNames).toEqual(["OPT", "OPTARG", "OPTIND"]);
    expect(analyzeCommand("export PS4 X=1; readonly R; local L=2").assignedNames).toEqual([
      "PS4",
      "X",
      "R",
      "L",
    ]);
    expect(analyzeCommand("for PATH in /workspace; do ls; done").assignedNames).toEqual(["PATH"]);
    refused('export "$N=1"', /name is only known at run time/);
  });

  it("lists a function's body and its calls, and refuses a function named like a builtin or a known program", () => {
    expect(argvs("walk() { ls; }; walk")).toEqual([["ls"], ["walk"]]);
    refused("cd() { :; }", /a function named cd/);
    refused("env() { :; }", /a function named env/);
    refused("sort() { :; }", /a function named sort/);
  });
});

describe("working directories", () => {
  const dirs = (cmd: string, index: number) =>
    possibleDirs(analyzeCommand(cmd), index)?.map((p) => p.map((s) => s.target).join(" > "));

  it("follows cd in text order, certain on the right of &&", () => {
    expect(dirs("cd /a && cat ./x; cat ./y", 1)).toEqual(["/a"]);
    expect(dirs("cd /a && cat ./x; cat ./y", 2)).toEqual(["", "/a"]);
    expect(dirs("cat ./x; cd /a", 0)).toEqual([""]);
    expect(dirs("cd a; cd b; cat x", 2)?.sort()).toEqual(["", "a", "a > b", "b"]);
  });

  it("lets a loop body see every change in the loop, and a function or trap every change", () => {
    expect(dirs("while :; do cat ./k; cd /s; done", 1)).toEqual(["", "/s"]);
    expect(dirs("f() { cat ./k; }; cd /s; f", 0)).toEqual(["", "/s"]);
    expect(dirs("trap 'cat ./k' EXIT; cd /s", 0)).toEqual(["", "/s"]);
  });

  it("knows nothing after a run-time or repeated relative cd", () => {
    expect(dirs("cd $D; cat ./k", 1)).toBeUndefined();
    expect(dirs("cd; cat ./k", 1)).toBeUndefined();
    expect(dirs("cd -; cat ./k", 1)).toBeUndefined();
    expect(dirs("for i in 1 2; do cd sub; done; cat ./k", 2)).toBeUndefined();
    expect(dirs("chdir /etc && cat ./passwd", 1)).toEqual(["/etc"]);
  });
});

describe("refusals", () => {
  it("refuses unterminated quotes and other syntax errors", () => {
    expect(refused("echo 'x")).toMatch(/closing quote/);
    refused('echo "x');
    refused("echo $(ls");
    refused("if true; then ls");
    refused("sh -c 'echo \"unterminated'");
  });

  it("refuses a # or a descriptor number glued to a quote or an expansion, which dash keeps in the word", () => {
    refused("echo 'x'#$(id)", /a # right after a quote or an expansion/);
    refused('echo "x"#y', /a # right after/);
    refused("echo $(x)#$(id)", /a # right after/);
    refused("eval 'id'2>&1", /descriptor number glued/);
    // The same across a line continuation, which dash removes first.
    refused("echo $1\\\n#$(id)", /a # right after/);
    refused("echo $x\\\n\\\n#$(id)", /a # right after/);
    refused("echo $1\\\n2>f", /descriptor number glued/);
    refused("echo 'x'1<<EOF\nEOF\n", /descriptor number glued/); // a here-document's too
    // A here-document's delimiter: dash's is E#x, then `; id` runs; the parser's was E and a comment.
    refused("cat <<'E'#x; id\nE\n", /a # right after/);
    refused('cat <<"E"#x; id\nE\n', /a # right after/);
    expect(argvs("echo a#b # comment\nls 2>&1; ls;2>/dev/null")).toEqual([["echo", "a#b"], ["ls"], ["ls"]]);
  });

  it("refuses a descriptor number of more than one digit, which dash reads as a word", () => {
    // dash runs `sh 10` and >&1 (the file ./10 as a script; judged as a bare sh, which the
    // rules refuse on their own as a shell reading stdin) and `cat 10`, a read nothing judged.
    refused("sh 10>&1", /a descriptor number of more than one digit \(10\)/);
    refused("cat 10</dev/null", /more than one digit \(10\)/);
    refused("cat 12<<EOF\nx\nEOF\n", /more than one digit \(12\)/);
    refused("echo a 01>f", /more than one digit \(01\)/);
    expect(argvs("echo a 2>&1 9>f 0<f")).toEqual([["echo", "a"]]);
  });

  it("refuses a $ followed by a line continuation, which dash joins before it expands and the parser does not", () => {
    refused('echo $\\\n#"$(id)"', /a \$ followed by a line continuation/);
    refused('echo "$\\\n(id)"', /a \$ followed by a line continuation/);
    refused("cat <<EOF\n$\\\n(id)\nEOF\n", /a \$ followed by a line continuation/);
    refused("sh -c 'echo $\\\n#\"$(id)\"'", /a \$ followed by a line continuation/);
    // Continuations elsewhere, and an escaped backslash before a newline, still read.
    expect(argvs("echo a \\\n  b$HOME \\\n#c\necho $\\\\\nls")).toEqual([
      ["echo", "a", "b$HOME"],
      ["echo", "$\\"],
      ["ls"],
    ]);
  });

  it("refuses a line continuation after anything but a blank or a word character, where dash joins the lines into one token", () => {
    const AFTER = /a line continuation right after/;
    // Each was accepted as something else while dash ran id (seen in the image).
    refused('echo "x"\\\n#"$(id)"', /right after """/); // dash: one word x#..., the parser: a comment
    refused("echo 'x'\\\n#$(id)", /right after "'"/);
    refused("echo ${x}\\\n#$(id)", /right after "}"/);
    refused("echo $(true)\\\n#$(id)", /right after "\)"/);
    refused("cat <<\\\n-EOF\n\tEOF\nid\n-EOF\n", /right after "<"/); // dash: <<- and the document ends at EOF
    refused("cat <<EOF\n\\\nEOF\nid\nEOF\n", /right after the start of a line/); // dash: \<newline>EOF ends it
    refused("echo $(\\\n(x=5))", /right after "\("/); // dash: $((x=5)), arithmetic in this shell
    refused("echo 'x'\\\n2>f", AFTER); // dash: the word x2, and > f
    refused("sh -c 'echo \"x\"\\\n#$(id)'", AFTER); // in nested code too
    refused("echo ${#\\\nx}", AFTER);
    // In an unquoted <<- document dash keeps the tabs of a joined line; the parser ended the
    // document at the tab-indented EOF and read the single-quoted $(id) after it as a word.
    refused("cat <<-EOF\nx \\\n\tEOF\necho '$(id)'\nEOF\n", /a line continuation in a <<- here-document/);
    // Continuations in a row are one; a blank or a word character before it, or single quotes or a
    // quoted here-document around it (both read two characters), still read.
    refused("echo 'x'\\\n\\\n#$(id)", /right after "'"/);
    expect(
      argvs("ls -la \\\n\t/tmp &&\\\necho abc\\\ndef |\\\ncat ||\\\n\\\n  echo \"a \\\nb\"; echo 'a;\\\nb'"),
    ).toEqual([["ls", "-la", "/tmp"], ["echo", "abcdef"], ["cat"], ["echo", "a b"], ["echo", "a;\\\nb"]]);
    expect(argvs("python3 - <<'EOF'\nx = (1 +\\\n  2)\n\\\nEOF\ncat <<-'E'\n\t\ta(\\\n\tE\n")).toEqual([
      ["python3", "-"],
      ["cat"],
    ]);
  });

  it("refuses a here-document begun inside $(...) whose text is not inside it (dash reads it right after the `)`)", () => {
    const WHY = /a here-document inside \$\(\.\.\.\) whose text does not start before the closing \)/;
    refused("echo $(cat <<EOF)EOF\nid\nEOF\n", WHY); // dash ends the document at the EOF glued to ), then runs id
    refused("echo $(cat <<EOF) ; ls\nx\nEOF\n", WHY);
    refused('echo "$(cat <<EOF)"\nEOF\n', WHY);
    refused("echo $(if true; then cat <<EOF; fi)\nEOF\n", WHY);
    expect(argvs("x=$(cat <<'EOF'\nhi\nEOF\n); echo \"$(cat <<EOF\n)\nEOF\n)\"")).toEqual([
      ["cat"],
      ["cat"],
      ["echo", '"$(cat <<EOF\n)\nEOF\n)"'],
    ]);
  });

  it("refuses text that is not well-formed Unicode, which the parser's encoder and dash read differently", () => {
    // GopherJS encoded \uD800 and the next code unit as one character: the parser saw `echo` and
    // one word, dash (handed U+FFFD) ran id.
    refused("echo \uD800;id", /not well-formed Unicode \(a lone surrogate U\+D800\)/);
    refused("echo a\uDC00b", /lone surrogate U\+DC00/);
    refused("echo \uD800", /lone surrogate/);
    expect(argvs("echo \u{1F600}; ls")).toEqual([["echo", "\u{1F600}"], ["ls"]]);
  });

  it("refuses control characters, which dash and the parser read differently", () => {
    expect(refused("cat <<EOF\r\nx\r\nEOF\r\nid\nEOF\n")).toMatch(/control character \(U\+000D\)/);
    refused("echo a;\x0bid", /U\+000B/);
    refused("sh -c 'echo a;\x7fid'", /U\+007F/);
    expect(only("echo a\tb").argv).toEqual(["echo", "a", "b"]);
  });

  it("refuses input with a NUL byte, and commands longer than the limit", () => {
    expect(refused("ls\0; sudo id")).toMatch(/NUL/);
    expect(refused(`${"echo a; ".repeat(100 * 128)}sudo id`)).toMatch(/longer than/);
    expect(MAX_COMMAND_BYTES).toBeLessThan(100 * 1024);
  });

  it("refuses sh -c and wrappers nested deeper than 8 levels", () => {
    let cmd = "env env env env id";
    for (let i = 0; i < 5; i++) cmd = `sh -c ${shellQuote(cmd)}`;
    expect(refused(cmd)).toMatch(/deeper than 8/);
    expect(refused(`${"env ".repeat(9)}id`)).toMatch(/deeper than 8/);
    let ok = "id";
    for (let i = 0; i < 7; i++) ok = `sh -c ${shellQuote(ok)}`;
    expect(argvs(ok)).toEqual([["id"]]);
  });

  it("refuses syntax nested deeper than the limit, and a 16 KB nest bomb", () => {
    const deep = `${"(".repeat(MAX_SYNTAX_DEPTH + 1)}id${")".repeat(MAX_SYNTAX_DEPTH + 1)}`;
    expect(refused(deep)).toMatch(/nest/);
    const bomb = `${"(".repeat(8000)}id${")".repeat(8000)}`;
    expect(refused(bomb)).toMatch(/nest/);
    const subst = `${"$(".repeat(3000)}id${")".repeat(3000)}`;
    refused(subst);
  });

  it("caches refusals as well as analyses for identical strings", () => {
    refused("echo 'again");
    refused("echo 'again");
    expect(analyzeCommand("ls -la")).toBe(analyzeCommand("ls -la"));
    expect(Object.isFrozen(analyzeCommand("ls -la").commands[0]!.argv)).toBe(true);
  });
});

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, "'\\''")}'`;
}
