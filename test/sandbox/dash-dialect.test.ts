// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are shell text, not templates
// What dash in the sandbox image does with the constructs the analyzer's decisions rest on
// (docs/security.md, "Shell"). The analyzer parses POSIX sh because exec runs dash; each
// fact below is what the table in the docs says dash does, run here in the real image.

import { execFileSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import { requireDocker } from "../support/docker.js";
import { makeTempHome } from "../support/home.js";

const FACTS: Record<string, string> = {
  sh: "readlink -f /bin/sh",
  arith_cmd: 'dash -c "((\\${X:-echo nested-subshells}))"',
  dollar_quote: "dash -c \"echo \\$'x\\\\'\"",
  amp_gt: "cd /tmp && dash -c 'echo to-stdout &> amp.out; wait' && wc -c < amp.out",
  braces: "dash -c 'echo {a,b} {1..2}'",
  arith_value: 'dash -c \'y="a[\\$(echo RA\\"\\"N)]"; echo $((y))\' 2>&1',
  arith_text: "dash -c 'y=PATH=5; echo $(($y)); echo \"PATH is $PATH\"'",
  ps4: "dash -c 'PS4=\"\\$(echo PS4-RAN >&2)+ \"; set -x; true' 2>&1",
  alias: "printf 'alias greet=echo\\ngreet aliased\\n' > /tmp/a.sh && dash /tmp/a.sh",
  special_fn: "dash -c 'eval() { :; }; echo after' 2>&1",
  command_fn: "dash -c 'ls() { echo FUNC; }; command ls -d /'",
  login: "echo 'echo PROFILE-RAN' > /tmp/.profile && HOME=/tmp dash -l -c true",
  cd_logical:
    "mkdir -p /tmp/a/b && ln -s /tmp/a/b /tmp/l && dash -c 'cd /tmp/l/.. && pwd -P; cd -P /tmp/l/.. && pwd -P; cd /tmp/l && cd .. && pwd -P'",
  dup_word: "dash -c 'echo hi >& /tmp/x' 2>&1",
};

let out: Record<string, string>;

beforeAll(() => {
  requireDocker();
  const home = makeTempHome();
  try {
    const script = Object.entries(FACTS)
      .map(([k, cmd]) => `echo "@@${k}"; ( ${cmd} ) 2>&1`)
      .concat("true")
      .join("\n");
    const text = execFileSync(
      "docker",
      ["run", "--rm", "--network", "none", home.config.sandbox.image, "sh", "-c", script],
      {
        encoding: "utf8",
        timeout: 60_000,
      },
    );
    out = {};
    for (const chunk of text.split("@@").slice(1)) {
      const nl = chunk.indexOf("\n");
      out[chunk.slice(0, nl)] = chunk.slice(nl + 1).trim();
    }
  } finally {
    home.cleanup();
  }
}, 90_000);

describe("dash in the sandbox image", () => {
  it("is /bin/sh", () => expect(out.sh).toBe("/usr/bin/dash"));

  it("reads ((...)) as nested subshells around a command, not as arithmetic", () => {
    expect(out.arith_cmd).toBe("nested-subshells");
  });

  it("reads $'...' as a literal $ and a quoted string", () => expect(out.dollar_quote).toBe("$x\\"));

  it("reads `a &> f` as a in the background and an empty > f", () => {
    expect(out.amp_gt).toBe("to-stdout\n0");
  });

  it("has no brace expansion", () => expect(out.braces).toBe("{a,b} {1..2}"));

  it("reads a name's value in $((...)) as a number and never evaluates it", () => {
    expect(out.arith_value).toMatch(/Illegal number/);
    expect(out.arith_value).not.toContain("RAN");
  });

  it("evaluates the text of $y pasted into $((...)), assignments included", () => {
    expect(out.arith_text).toBe("5\nPATH is 5");
  });

  it("expands $(...) in PS4 for every traced command", () => expect(out.ps4).toContain("PS4-RAN"));

  it("expands an alias defined on an earlier line", () => expect(out.alias).toBe("aliased"));

  it("refuses a function named like a special builtin, and `command` bypasses functions", () => {
    expect(out.special_fn).toMatch(/Bad function name/);
    expect(out.special_fn).not.toContain("after");
    expect(out.command_fn).toBe("/");
  });

  it("reads ~/.profile as a login shell", () => expect(out.login).toBe("PROFILE-RAN"));

  it("refuses `>& file` as a syntax error", () => expect(out.dup_word).toMatch(/Bad fd number/));

  it("moves cd logically: `..` comes off the path as typed, unless -P", () => {
    expect(out.cd_logical).toBe("/tmp\n/tmp/a\n/tmp");
  });
});
