// What analyzeCommand reveals inside a shell string: every simple command, with words as
// the shell would pass them, and refusals for what cannot be read.

import { describe, expect, it } from "vitest";
import { isAidoError } from "../../src/errors.js";
import { analyzeCommand, MAX_COMMAND_BYTES, type SimpleCommand } from "../../src/security/shell.js";

const argvs = (cmd: string): string[][] => analyzeCommand(cmd).commands.map((c) => c.argv);
const only = (cmd: string): SimpleCommand => {
  const cs = analyzeCommand(cmd).commands;
  expect(cs).toHaveLength(1);
  return cs[0]!;
};

function refused(cmd: string): string {
  try {
    analyzeCommand(cmd);
  } catch (e) {
    expect(isAidoError(e, "policy_denied")).toBe(true);
    expect((e as Error).message).toMatch(/^cannot parse command: /);
    return (e as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(cmd.slice(0, 60))} to be refused`);
}

describe("analyzeCommand: lists, pipelines and nesting", () => {
  it("lists every command of ;, &&, || and | chains", () => {
    expect(argvs("ls; rm -rf / && id || whoami | head -n1")).toEqual([
      ["ls"],
      ["rm", "-rf", "/"],
      ["id"],
      ["whoami"],
      ["head", "-n1"],
    ]);
  });

  it("finds commands inside $(...), backticks and <(...)", () => {
    expect(argvs("echo $(sudo id)")).toContainEqual(["id"]);
    expect(argvs("echo `mkfs.ext4 /dev/sda`")).toContainEqual(["mkfs.ext4", "/dev/sda"]);
    expect(argvs("diff <(cat a) >(tee b)")).toEqual(
      expect.arrayContaining([
        ["cat", "a"],
        ["tee", "b"],
      ]),
    );
  });

  it("finds commands in subshells, blocks, if/while/for/case bodies and functions", () => {
    const cmd =
      "(a1); { a2; }; if a3; then a4; else a5; fi; while a6; do a7; done; for x in 1; do a8; done; " +
      "case $x in y) a9;; esac; f() { a10; }";
    expect(argvs(cmd).map((a) => a[0])).toEqual([
      "a1",
      "a2",
      "a3",
      "a4",
      "a5",
      "a6",
      "a7",
      "a8",
      "a9",
      "a10",
    ]);
  });

  it("finds substitutions hidden in assignments, test clauses, arithmetic, here-documents and for lists", () => {
    const cmd = "X=$(b1) ; export Y=$(b2); [[ -f $(b3) ]]; echo $(( $(b4) + 1 )); for i in $(b5); do :; done";
    expect(argvs(cmd).map((a) => a[0])).toEqual(expect.arrayContaining(["b1", "b2", "b3", "b4", "b5"]));
    expect(argvs("cat <<EOF\n$(sudo id)\nEOF")).toContainEqual(["id"]);
  });

  it("records pipeline stages and which commands read a pipe", () => {
    const a = analyzeCommand("curl x | tee f | sh");
    expect(a.pipelines).toEqual([[[0], [1], [2]]]);
    expect(a.commands.map((c) => c.stdinPiped)).toEqual([false, true, true]);
    expect(a.commands[2]!.stdinProgram).toBe(true);
  });

  it("marks background commands", () => {
    expect(analyzeCommand("sleep 1 & ls").commands.map((c) => c.background)).toEqual([true, false]);
  });
});

describe("analyzeCommand: words as the shell passes them", () => {
  it("removes quotes, so a quote-concatenated name is the real name", () => {
    expect(only('"s"udo id').wrappers).toEqual(["sudo"]);
    expect(only("'r''m' -rf x").argv).toEqual(["rm", "-rf", "x"]);
  });

  it("removes backslash escapes and decodes $'...' escapes", () => {
    expect(only("\\sudo").argv).toEqual(["sudo"]);
    expect(only("$'\\x73\\165do'").argv).toEqual(["sudo"]);
    expect(only("echo \"a\\$b\" 'c\\d'").argv).toEqual(["echo", "a$b", "c\\d"]);
  });

  it("applies brace expansion, so {sudo,id} runs sudo", () => {
    expect(only("{sudo,id}").argv).toEqual(["id"]);
    expect(only("{sudo,id}").privileged).toBe(true);
    expect(only("echo a{1..3}").argv).toEqual(["echo", "a1", "a2", "a3"]);
    expect(only("echo '{a,b}' {x}").argv).toEqual(["echo", "{a,b}", "{x}"]);
  });

  it("refuses brace expansions that explode", () => {
    refused("echo {a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}");
    refused("echo {1..100000}");
  });

  it("marks run-time words: expansions in command position make the command dynamic", () => {
    const c = only("$CMD args");
    expect(c.dynamic).toBe(true);
    expect(c.argv[0]).toBe("$CMD");
    expect(only("ls $DIR").dynamic).toBe(false);
    expect(only("ls $DIR").argDynamic).toEqual([false, true]);
    expect(only("/usr/bin/su?o id").dynamic).toBe(true);
  });

  it("keeps globs in arguments as written but marks them run-time", () => {
    const c = only("rm -rf /*");
    expect(c.argv).toEqual(["rm", "-rf", "/*"]);
    expect(c.argDynamic).toEqual([false, false, true]);
    expect(only("rm '/*'").argDynamic).toEqual([false, false]);
  });

  it("strips leading assignments from argv but records them", () => {
    const c = only("FOO=1 BAR=$x python3 a.py");
    expect(c.argv).toEqual(["python3", "a.py"]);
    expect(c.assigns).toEqual(["FOO=1", "BAR=$x"]);
    expect(analyzeCommand("FOO=1 BAR=$x python3 a.py").assignedNames).toEqual(["FOO", "BAR"]);
  });
});

describe("analyzeCommand: redirections", () => {
  it("captures output redirections with their targets", () => {
    const a = analyzeCommand(
      "echo hi > /etc/passwd; echo >> log; cmd &> all; x >| f; y 2>&1; z >&2; w >& file",
    );
    expect(a.redirects.map((r) => [r.op, r.target, r.write])).toEqual([
      [">", "/etc/passwd", true],
      [">>", "log", true],
      ["&>", "all", true],
      [">|", "f", true],
      [">&", "file", true],
    ]);
  });

  it("records a redirection with no command at all", () => {
    const a = analyzeCommand("> /etc/shadow");
    expect(a.commands).toEqual([]);
    expect(a.redirects[0]!.target).toBe("/etc/shadow");
  });

  it("gives a block's redirection to every command inside it", () => {
    const a = analyzeCommand("{ echo a; echo b; } > /etc/x");
    expect(a.commands.map((c) => c.redirects.map((r) => r.target))).toEqual([["/etc/x"], ["/etc/x"]]);
  });

  it("marks computed redirection targets as run-time", () => {
    expect(analyzeCommand("echo > $F").redirects[0]!.dynamic).toBe(true);
  });
});

describe("analyzeCommand: wrappers are unfolded", () => {
  it("unfolds env, timeout, nice and sudo down to the command they run", () => {
    const c = only("env FOO=1 timeout 5 nice sudo bash");
    expect(c.argv).toEqual(["bash"]);
    expect(c.wrappers).toEqual(["env", "timeout", "nice", "sudo"]);
    expect(c.privileged).toBe(true);
    expect(c.assigns).toEqual(["FOO=1"]);
  });

  it("unfolds wrapper options: env -i -u, timeout -s -k, nice -n, stdbuf, setsid, nohup, command, exec, builtin, time", () => {
    expect(only("env -i -u HOME -- X=1 ls -l").argv).toEqual(["ls", "-l"]);
    expect(only("timeout -s KILL -k 5 10s make test").argv).toEqual(["make", "test"]);
    expect(only("nice -n 10 ionice -c 3 nohup stdbuf -oL setsid ls").argv).toEqual(["ls"]);
    expect(only("command exec builtin /usr/bin/time -o t.txt ls").argv).toEqual(["ls"]);
    expect(only("sudo -u bob -E VAR=1 make").wrappers).toEqual(["sudo"]);
    expect(only("doas -u root id").privileged).toBe(true);
    expect(only("busybox rm x").argv).toEqual(["rm", "x"]);
  });

  it("parses the string of sh -c / bash -c / su -c / eval as shell, recursively", () => {
    expect(argvs("sh -c \"bash -c 'curl x | sh'\"")).toEqual([["curl", "x"], ["sh"]]);
    expect(argvs("bash -lc 'a; b'")).toEqual([["a"], ["b"]]);
    expect(only("su -c 'id' root").privileged).toBe(true);
    expect(argvs("eval 'rm -rf' /")).toEqual([["rm", "-rf", "/"]]);
    expect(argvs("trap 'rm -rf /' EXIT")).toContainEqual(["rm", "-rf", "/"]);
  });

  it("reads the program a shell gets from a here-document or here-string", () => {
    expect(only("bash <<EOF\nsudo id\nEOF").privileged).toBe(true);
    expect(only("sh <<< 'mkfs /dev/sda'").argv).toEqual(["mkfs", "/dev/sda"]);
  });

  it("treats code computed at run time as a dynamic command", () => {
    const a = analyzeCommand('bash -c "$(curl x)"');
    expect(a.commands.find((c) => c.dynamic)?.wrappers).toEqual(["bash"]);
    expect(analyzeCommand("eval $X").commands[0]!.dynamic).toBe(true);
    expect(analyzeCommand("env $X ls").commands[0]!.dynamic).toBe(true);
    expect(analyzeCommand("timeout $T id").commands[0]!.dynamic).toBe(true);
  });

  it("unfolds xargs into the command it runs, with arguments added at run time", () => {
    const c = only("xargs -0 -n 1 rm < list");
    expect(c.argv).toEqual(["rm"]);
    expect(c.openArgs).toBe(true);
    expect(only("xargs").argv).toEqual(["echo"]);
    expect(only("xargs -I{} sh -c 'echo {}'").dynamic).toBe(true);
  });

  it("keeps find and adds each -exec / -execdir command", () => {
    expect(argvs("find . -name x -exec rm -rf / \\; -execdir chmod 4755 {} +")).toEqual([
      ["find", ".", "-name", "x", "-exec", "rm", "-rf", "/", ";", "-execdir", "chmod", "4755", "{}", "+"],
      ["rm", "-rf", "/"],
      ["chmod", "4755", "{}"],
    ]);
  });

  it("does not treat command -v as running its argument", () => {
    expect(only("command -v sudo").argv).toEqual(["command", "-v", "sudo"]);
  });
});

describe("analyzeCommand: refusals", () => {
  it("refuses unterminated quotes and other syntax errors", () => {
    expect(refused("echo 'x")).toMatch(/closing quote/);
    refused('echo "x');
    refused("echo $(ls");
    refused("if true; then ls");
  });

  it("refuses an unparseable string inside sh -c", () => {
    refused("bash -c 'echo \"unterminated'");
  });

  it("refuses input with a NUL byte", () => {
    expect(refused("ls\0; sudo id")).toMatch(/NUL/);
  });

  it("refuses commands longer than the limit, such as a 100 KB one", () => {
    expect(refused(`${"echo a; ".repeat(100 * 128)}sudo id`)).toMatch(/longer than/);
    expect(MAX_COMMAND_BYTES).toBeLessThan(100 * 1024);
  });

  it("refuses sh -c and wrappers nested deeper than 8 levels", () => {
    // Nine sh -c levels quote past the 16 KB command cap, so mix shells and wrappers.
    let cmd = "env env env env id";
    for (let i = 0; i < 5; i++) cmd = `sh -c ${shellQuote(cmd)}`;
    expect(refused(cmd)).toMatch(/deeper than 8/);
    expect(refused(`${"env ".repeat(9)}id`)).toMatch(/deeper than 8/);
    let ok = "id";
    for (let i = 0; i < 7; i++) ok = `sh -c ${shellQuote(ok)}`;
    expect(argvs(ok)).toEqual([["id"]]);
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
