// Red team: options that make a program run another program, however they are spelled.
// Each attack is played by an agent that holds an exec grant on one program (and file grants
// on /workspace), through the real gate, in one real container, each exec in its caller's
// Landlock domain. Every attack ran its hidden command in the image before the fix (seen by
// hand); now each is refused before anything runs, audited, and its canary does not exist.
// The operator's confirm rule `git push *` is attacked by an agent holding every exec grant,
// where the rule is the only thing between it and a push.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectRefused, openSharedBench, type SharedBench } from "./shared-bench.js";

let b: SharedBench;

const FILES = ["tool: exec", "file_read: /workspace/**", "file_write: /workspace/**", "file_read: /tmp/**"];
const one = (...programs: string[]) => [
  ...FILES,
  "file_write: /tmp/**",
  ...programs.map((p) => `exec: ${p} *`),
];

const PROFILES = {
  sed: one("sed"),
  awk: one("awk", "gawk"),
  tar: one("tar"),
  sort: one("sort"),
  find: one("find"),
  xargs: one("xargs", "echo"),
  strace: one("strace", "true"),
  gcc: one("gcc"),
  git: one("git"),
  env: one("env"),
  split: one("split"),
  zip: one("zip"),
  uclampset: one("uclampset"),
  root: ["tool: *", "file_read: /workspace/**", "file_write: /workspace/**", "file_read: /tmp/**", "exec: *"],
};

beforeAll(async () => {
  b = await openSharedBench({
    profiles: PROFILES,
    confirm: ["git push *"],
    files: {
      "/workspace/d": "b\na\n",
      "/workspace/msg": "subject\n",
      "/workspace/x.c": "int main(void) { return 0; }\n",
      "/workspace/prog.awk": 'BEGIN { system("touch /workspace/pwn-awkfile") }\n',
      "/workspace/cp": '#!/bin/sh\ntouch /workspace/pwn-sortprog\nexec gzip "$@"\n',
      "/workspace/bin/as": "#!/bin/sh\ntouch /workspace/pwn-gccB\n",
      "/workspace/wc/s.sh": "touch /workspace/pwn-tarwild\n",
      "/workspace/wc/a": "a\n",
    },
    setup: [
      "chmod +x /workspace/cp /workspace/bin/as",
      "seq 1 300000 > /workspace/big",
      // The classic tar wildcard injection: files whose names are tar options.
      "cd /workspace/wc && : > ./--checkpoint=1 && : > './--checkpoint-action=exec=sh s.sh'",
      "tar -C /workspace -cf /workspace/a.tar d",
      "cd /workspace && zip -q /workspace/a.zip d",
      "git init -q /workspace/repo && git -C /workspace/repo -c user.email=a@b -c user.name=n commit -q --allow-empty -m one",
      "git init -q --bare /workspace/remote.git",
      // Links to system programs under other names, as an agent with `ln` would make them.
      "mkdir -p /workspace/links && ln -s /bin/bash /workspace/links/b && ln -s /usr/bin/git /workspace/links/g",
      "ln -s /bin/chmod /workspace/links/c && ln -s /usr/bin/git /workspace/links/git",
    ].join(" && "),
  });
}, 240_000);

afterAll(async () => {
  await b?.close();
});

interface Attack {
  name: string;
  as: keyof typeof PROFILES;
  command: string;
  canary: string;
  why: RegExp;
}

/** Attacks on the program tables, each with the command it hid (touch CANARY) and the refusal. */
const ATTACKS: Attack[] = [
  {
    name: "sed: `a text\\\\` ends the text at the newline, and sed runs the next line's `e` command",
    as: "sed",
    command: "sed '$a x\\\\\ne touch /workspace/pwn-sedtext' /workspace/d",
    canary: "pwn-sedtext",
    why: /the sed script runs a command \(e\)/,
  },
  {
    name: "sed: a script given with -e after the file (GNU sed permutes its arguments)",
    as: "sed",
    command: "sed 1p /workspace/d -e '1e touch /workspace/pwn-sedperm'",
    canary: "pwn-sedperm",
    why: /runs a command \(e\)/,
  },
  {
    name: "sed: --expr, an abbreviation of --expression",
    as: "sed",
    command: "sed --expr='1e touch /workspace/pwn-sedabbr' /workspace/d",
    canary: "pwn-sedabbr",
    why: /--expr abbreviates --expression/,
  },
  {
    name: "awk: `print /#/` is a regex, not a division followed by a comment that hides system()",
    as: "awk",
    command: `awk 'BEGIN { print /#/; system("touch /workspace/pwn-awkregex") }'`,
    canary: "pwn-awkregex",
    why: /the awk program calls system\(\)/,
  },
  {
    name: "gawk: -bf FILE is a cluster: -b and a program file",
    as: "awk",
    command: "gawk -bf /workspace/prog.awk",
    canary: "pwn-awkfile",
    why: /reads its program from a file/,
  },
  {
    name: "gawk: --sou, an abbreviation of --source",
    as: "awk",
    command: `gawk --sou='BEGIN { system("touch /workspace/pwn-gawkabbr") }'`,
    canary: "pwn-gawkabbr",
    why: /--sou abbreviates --source/,
  },
  {
    name: "tar: --to-com, an abbreviation of --to-command",
    as: "tar",
    command: "tar -xf /workspace/a.tar -C /tmp --to-com='touch /workspace/pwn-tarabbr'",
    canary: "pwn-tarabbr",
    why: /--to-com abbreviates --to-command/,
  },
  {
    name: "tar: * in a folder holding files named --checkpoint-action=exec=... (wildcard injection)",
    as: "tar",
    command: "cd /workspace/wc && tar cf /tmp/o.tar *",
    canary: "pwn-tarwild",
    why: /tar with a run-time argument \(\*\) that may turn out to be an option/,
  },
  {
    name: "tar: --checkpoint-action with a quoted run-time value that completes exec=",
    as: "tar",
    command: `X='xec=touch /workspace/pwn-tarcpa'; tar --checkpoint=1 --checkpoint-action "e$X" -cf /tmp/o.tar /workspace/d`,
    canary: "pwn-tarcpa",
    why: /tar --checkpoint-action with a run-time value/,
  },
  {
    // Refused before a value slot was read (the word is not one that cannot start with -);
    // kept so that reading `-f "$X"` as a value never forgets that --exclude takes -f first.
    name: "tar: a run-time word after -f when an unknown option took -f as its value",
    as: "tar",
    command: `X='--to-command=touch /workspace/pwn-tarexcl'; tar -x --exclude -f "$X" -f /workspace/a.tar -C /tmp`,
    canary: "pwn-tarexcl",
    why: /tar with a run-time argument \("\$X"\) that may turn out to be an option/,
  },
  {
    name: "sort: --compress-program hidden in a variable",
    as: "sort",
    command: "X=--compress-program=/workspace/cp; sort -S 100K -T /tmp $X /workspace/big",
    canary: "pwn-sortprog",
    why: /sort with a run-time argument \(\$X\)/,
  },
  {
    name: "sort: --compress-p, an abbreviation of --compress-program",
    as: "sort",
    command: "sort -S 100K -T /tmp --compress-p=/workspace/cp /workspace/big",
    canary: "pwn-sortprog",
    why: /--compress-p abbreviates --compress-program/,
  },
  {
    name: "find: -exec hidden in a variable, split into words at run time",
    as: "find",
    command: "X='-exec touch /workspace/pwn-findvar ;'; find /workspace/d $X",
    canary: "pwn-findvar",
    why: /find with a run-time argument \(\$X\)/,
  },
  {
    name: "split: --filter after the file operand (GNU getopt permutes)",
    as: "split",
    command: "split /workspace/d /tmp/part --filter='touch /workspace/pwn-split'",
    canary: "pwn-split",
    why: /no capability grants exec of "touch/,
  },
  {
    name: "env: --split-s, an abbreviation of --split-string",
    as: "env",
    command: "env --split-s='touch /workspace/pwn-env'",
    canary: "pwn-env",
    why: /--split-s abbreviates --split-string/,
  },
  {
    name: "xargs: --max-lines takes its value only attached, so the next word is the command",
    as: "xargs",
    command: "xargs --max-lines touch echo /workspace/pwn-xargs < /dev/null",
    canary: "pwn-xargs",
    why: /no capability grants exec of "touch/,
  },
  {
    name: "zip: --unzip-c, an abbreviation of --unzip-command",
    as: "zip",
    command: "zip -T --unzip-c 'touch /workspace/pwn-zip' /workspace/a.zip /workspace/d",
    canary: "pwn-zip",
    why: /zip -TT\/--unzip-command names a program/,
  },
  {
    name: "strace: -o '|CMD' pipes the trace into a command run by a shell",
    as: "strace",
    command: "strace -o '|touch /workspace/pwn-strace' true",
    canary: "pwn-strace",
    why: /pipes its output into a command/,
  },
  {
    name: "gcc: -wrapper runs every compiler pass under a program of the caller's choice",
    as: "gcc",
    command: "gcc -wrapper 'sh,-c,touch /workspace/pwn-gccwrap' -c /workspace/x.c -o /tmp/x.o",
    canary: "pwn-gccwrap",
    why: /gcc -wrapper runs or loads a program/,
  },
  {
    name: "gcc: -B DIR runs the assembler found in DIR",
    as: "gcc",
    command: "gcc -B/workspace/bin/ -c /workspace/x.c -o /tmp/x.o",
    canary: "pwn-gccB",
    why: /gcc -B\/workspace\/bin\/ runs or loads a program/,
  },
  {
    name: "gcc: COMPILER_PATH names the folder its passes are run from",
    as: "gcc",
    command: "COMPILER_PATH=/workspace/bin gcc -c /workspace/x.c -o /tmp/x.o",
    canary: "pwn-gccB",
    why: /loader-injection|COMPILER_PATH/,
  },
  {
    name: "git: --shallow-file takes a value, so the subcommand was misread and push --receive-pack passed",
    as: "git",
    command:
      "git -C /workspace/repo --shallow-file /dev/null push --receive-pack='touch /workspace/pwn-gitshallow; git-receive-pack' /workspace/remote.git HEAD:refs/heads/shallow",
    canary: "pwn-gitshallow",
    why: /git push --receive-pack names a program/,
  },
  {
    name: "git: --upload-pa, an abbreviation of --upload-pack",
    as: "git",
    command:
      "git -C /workspace/repo fetch --upload-pa='touch /workspace/pwn-gitabbr; git-upload-pack' /workspace/remote.git",
    canary: "pwn-gitabbr",
    why: /git fetch --upload-pa names a program/,
  },
  {
    name: "git: config trailer.<token>.cmd, a command interpret-trailers runs",
    as: "git",
    command:
      "git -C /workspace/repo config trailer.sign.cmd 'touch /workspace/pwn-trailer' && git -C /workspace/repo interpret-trailers --trailer sign=x /workspace/msg",
    canary: "pwn-trailer",
    why: /git config trailer\.sign\.cmd sets git configuration/,
  },
  {
    name: "uclampset: a wrapper that runs its command",
    as: "uclampset",
    command: "uclampset -m 0 touch /workspace/pwn-uclamp",
    canary: "pwn-uclamp",
    why: /no capability grants exec of "touch/,
  },
];

describe("options that run programs, however they are spelled", () => {
  for (const a of ATTACKS) {
    it(a.name, async () => {
      const r = await b.exec(a.as, a.command);
      expect(b.exists(`/workspace/${a.canary}`), `${a.command} ran its hidden command`).toBe(false);
      const stage = a.why.source.includes("no capability") ? "capability" : "policy";
      expectRefused(b, a.as, r, stage, a.why);
    }, 60_000);
  }

  it.each([
    [
      "bash, whose language is refused",
      "/workspace/links/b -c 'touch /workspace/pwn-bashlink'",
      "pwn-bashlink",
    ],
    [
      "chmod, whose setuid modes a rule refuses",
      "/workspace/links/c u+s /workspace/d && touch /workspace/pwn-chmodlink",
      "pwn-chmodlink",
    ],
    [
      "git under its own name, whose options are read",
      "/workspace/links/git -C /workspace/repo -c core.pager='touch /workspace/pwn-gitlink' -p log",
      "pwn-gitlink",
    ],
  ])(
    "refuses a system program run through a link: %s",
    async (_what, command, canary) => {
      const r = await b.exec("root", command);
      expect(b.exists(`/workspace/${canary}`), `${command} ran`).toBe(false);
      expectRefused(b, "root", r, "policy", /runs the system program .* through \/workspace\/links\//);
    },
    60_000,
  );

  it("still runs ordinary uses of the same programs", async () => {
    for (const [as, command] of [
      ["tar", "cd /workspace/wc && tar cf /tmp/ok.tar ./a"],
      ["sort", "sort -o /tmp/sorted /workspace/d"],
      ["sed", "sed -e 's/a/A/' -e '$a end' /workspace/d"],
      ["awk", "awk '{ s += $1 / 2 } END { print s }' /workspace/big"],
      ["find", "find /workspace/wc -name 's.*'"],
      // Run-time words where the program takes them as an option's value (shell-value-slots.ts).
      ["tar", 'f=/workspace/a.tar; tar -tf "$f"'],
      ["tar", 'f=/workspace/a.tar; d=/tmp; tar xf "$f" -C "$d"'],
      ["find", "cd /workspace && find . -name *.c"],
      ["find", 'p="s.*"; find /workspace/wc -name "$p"'],
      [
        "git",
        'msg="a message"; GIT_AUTHOR_NAME=a GIT_AUTHOR_EMAIL=a@b GIT_COMMITTER_NAME=a GIT_COMMITTER_EMAIL=a@b git -C /workspace/repo commit -q --allow-empty -m "$msg"',
      ],
      ["git", "git -C /workspace/repo --no-pager log --oneline"],
      ["gcc", "gcc -c /workspace/x.c -o /tmp/x.o"],
    ] as const) {
      const r = await b.exec(as, command);
      expect(r, command).not.toBeInstanceOf(Error);
      expect((r as { data?: { exit_code?: number } }).data?.exit_code, command).toBe(0);
    }
  }, 120_000);
});

describe("the operator's confirm rule `git push *`, for an agent holding every exec grant", () => {
  const branches = async (): Promise<string> =>
    (
      await b.inner.exec({
        argv: ["git", "-C", "/workspace/remote.git", "branch"],
        confinement: "unconfined",
      })
    ).stdout;

  it.each([
    [
      "a global option git reads with a value (--shallow-file)",
      "git -C /workspace/repo --shallow-file /dev/null push /workspace/remote.git HEAD:refs/heads/c1",
      "approval",
      /approval timed out/,
    ],
    [
      "an abbreviated option of the wrapper (timeout --sig)",
      "timeout --sig KILL 5 git -C /workspace/repo push /workspace/remote.git HEAD:refs/heads/c2",
      "policy",
      /--sig abbreviates --signal/,
    ],
    [
      "a wrapper option the table did not know (setpriv --pdeathsig)",
      "setpriv --pdeathsig KILL git -C /workspace/repo push /workspace/remote.git HEAD:refs/heads/c3",
      "approval",
      /approval timed out/,
    ],
    [
      "git's dashed program (/usr/lib/git-core/git-push)",
      "cd /workspace/repo && /usr/lib/git-core/git-push /workspace/remote.git HEAD:refs/heads/c4",
      "approval",
      /approval timed out/,
    ],
    [
      "git send-pack, the push without its porcelain",
      "git -C /workspace/repo send-pack /workspace/remote.git HEAD:refs/heads/c6",
      "approval",
      /approval timed out/,
    ],
    [
      "git run through a link under another name",
      "/workspace/links/g -C /workspace/repo push /workspace/remote.git HEAD:refs/heads/c5",
      "policy",
      /runs the system program \/usr\/bin\/git through \/workspace\/links\/g/,
    ],
  ])(
    "does not let %s push unasked",
    async (_how, command, stage, why) => {
      const r = await b.exec("root", command);
      expect(await branches(), `${command} pushed`).toBe("");
      expectRefused(b, "root", r, stage, why);
    },
    60_000,
  );
});
