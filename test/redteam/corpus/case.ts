// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are shell text, not templates
// test/redteam/corpus/case.ts — the shape of one adversarial corpus entry, the agents
// (grant profiles) entries run as, and the files the corpus container starts with.
// PWN in a command is replaced by the entry's canary, /workspace/pwn-<n>: a refused entry
// whose canary exists ran anyway.

export type Stage = "schema" | "policy" | "capability" | "approval";

/** Grant profiles, one agent each, all in one container. */
export const PROFILES = {
  /** May run anything: only the analysis, the built-in rules, the operator's rules and paths stand in the way. */
  root: [
    "tool: *",
    "file_read: /workspace/**",
    "file_write: /workspace/**",
    "file_read: /tmp/**",
    "file_write: /tmp/**",
    "exec: *",
  ],
  /** The issue's "only tool: exec and no exec grant at all". */
  bare: ["tool: exec", "file_read: /workspace"],
  /** The issue's `exec: echo *`. */
  narrow: ["tool: exec", "file_read: /workspace", "exec: echo *"],
  /** The issue's reader: /workspace itself and /workspace/public/** only. */
  reader: [
    "tool: exec",
    "file_read: /workspace",
    "file_read: /workspace/public/**",
    "exec: cat *",
    "exec: ls *",
    "exec: grep *",
    "exec: ln *",
    "exec: echo *",
  ],
  /** Programs that run programs, without the programs they could run. */
  tools: [
    "tool: exec",
    "file_read: /workspace/**",
    "file_read: /tmp/**",
    "file_write: /tmp/**",
    ...["tar", "sort", "git", "rsync", "awk", "sed", "zip", "less", "find", "split", "install"].map(
      (p) => `exec: ${p} *`,
    ),
    "exec: diff3 *",
    "exec: ldd *",
    // The script the program would run is granted too, so what stops these is that its text
    // cannot be pinned (the policy), not a missing exec grant.
    "exec: /workspace/s/pwn.sh *",
    "exec: ssh *",
    "exec: scp *",
    "exec: man *",
    "exec: vim *",
  ],
  /** The issue's `exec: sort *`. */
  sorter: ["tool: exec", "file_read: /workspace/**", "exec: sort *"],
  /** Narrow file grants doing ordinary work: what the early path check must leave alone. */
  worker: [
    "tool: exec",
    "file_read: /workspace",
    "file_read: /workspace/public/**",
    "file_write: /workspace/public/out/**",
    ...["echo", "grep", "python3", "cat", "sed", "date", "cut", "awk", "tr", "ls", "wc", "sort", "head"].map(
      (p) => `exec: ${p} *`,
    ),
  ],
  /** git, with the operator's confirm rule on `git push *`. */
  gitter: ["tool: exec", "file_read: /workspace/**", "file_write: /workspace/**", "exec: git *"],
} as const;

export type Profile = keyof typeof PROFILES;

export interface Case {
  technique: string;
  command: string;
  as: Profile;
  /** allow: the programs the verdict lists (argv[0] names, wrappers, helpers); refuse: the stage and the reason. */
  expect: { allow: string[] } | { refuse: Stage; why: RegExp };
  /** A canary other than /workspace/pwn-<n> (the issue's attack writes /workspace/f). */
  canary?: string;
  /** The exec's working folder (default /workspace). */
  cwd?: string;
}

/** Files the container starts with (PWN in them is the canary of the entry that uses them). */
export const FILES: Record<string, string> = {
  "/workspace/public/notes.txt": "public notes\n",
  "/workspace/secret/k.txt": "TOPSECRET-CORPUS\n",
  "/workspace/vault/x.txt": "vaulted\n",
  "/workspace/list.txt": "/workspace/pwn-list\n",
  "/workspace/evil.sh": "touch /workspace/pwn-evil\n",
  "/workspace/sortme.txt": "touch /workspace/pwn-sort\n",
  "/workspace/s/ok.sh": "#!/bin/sh\necho ok\nls -d /workspace\n",
  "/workspace/s/late.sh": "echo judged\n",
  "/workspace/s/bash.sh": "#!/bin/bash\ntouch /workspace/pwn-bashsh\n",
  "/workspace/s/envbash.sh": "#!/usr/bin/env bash\ntouch /workspace/pwn-envbash\n",
  "/workspace/s/sudo.sh": "echo building\nsudo touch /workspace/pwn-sudosh\n",
  "/workspace/s/trick.sh": '((${X:-sh -c "touch /workspace/pwn-trick"}))\n',
  "/workspace/s/pwn.sh": "touch /workspace/pwn-script\n",
  "/workspace/bin/ls": "touch /workspace/pwn-fakels\n",
  "/workspace/prog.awk": 'BEGIN { system("touch /workspace/pwn-awk") }\n',
  "/workspace/public/hello.py": 'print("hello from a granted script")\n',
  "/workspace/public/out/.keep": "",
};

/** Set up after the files: modes and links. */
export const SETUP = [
  "chmod +x /workspace/s/*.sh /workspace/bin/ls",
  "ln -s /workspace/secret /workspace/public/up",
  "mkdir -p /workspace/public/deep && ln -s /workspace/public/deep /workspace/secret/pub",
  "ln -s /workspace/vault /workspace/public/vlink",
  "ln -s /etc /workspace/etc-link",
  "git init -q /workspace/repo",
].join(" && ");

/** Every canary a refused entry could have created. */
export const CANARY_GLOB = /^pwn-|^f$/;

export const allow = (technique: string, as: Profile, command: string, programs: string[]): Case => ({
  technique,
  as,
  command,
  expect: { allow: programs },
});

export const refuse = (technique: string, as: Profile, command: string, stage: Stage, why: RegExp): Case => ({
  technique,
  as,
  command,
  expect: { refuse: stage, why },
});

/** A command that sets PATH: refused by the loader-injection rule on what the call states, or by the script planner. */
export const SETS_PATH = /sets PATH|PATH \(rule loader-injection\)/;
