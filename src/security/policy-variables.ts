// security/policy-variables.ts — environment and shell variables that change what code
// runs, which no command may set (by `NAME=`, export, read, getopts, local, for, env,
// `${NAME=...}` or `$((NAME=...))`) nor unset (`unset`, `env -u`, or a cleared environment:
// `env -i`, `env -`, `setpriv --reset-env`). Each was judged for dash and the programs in the
// sandbox image:
//   - the loader: LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT (any LD_*), GCONV_PATH, and
//     OpenSSL's OPENSSL_CONF, OPENSSL_CONF_INCLUDE, OPENSSL_MODULES and OPENSSL_ENGINES (its
//     configuration loads providers and engines, shared objects, from any path: curl loads it
//     at start, so `OPENSSL_CONF=/workspace/x.cnf curl ...` ran the agent's own code in curl);
//   - command lookup and shells: PATH (which file a name runs), CDPATH (where cd goes),
//     SHELL (what script -c, flock -c, split --filter run), ENV and PS1/PS2/PS4 (dash
//     expands $(...) in PS4 for every traced command: `PS4='$(id)'; set -x` runs id),
//     BASH_ENV, SHELLOPTS, BASHOPTS and exported functions (BASH_FUNC_*);
//   - interpreters told to load code: PERL5OPT, PERL5LIB, PERLLIB, PYTHONPATH,
//     PYTHONHOME, PYTHONINSPECT, NODE_OPTIONS, NODE_PATH, RUBYOPT, RUBYLIB, LUA_INIT*,
//     LUA_PATH, LUA_CPATH, JAVA_TOOL_OPTIONS, _JAVA_OPTIONS, PHPRC, TCLLIBPATH;
//   - gcc told where its compilers, assembler and linker are: COMPILER_PATH, GCC_EXEC_PREFIX
//     (`COMPILER_PATH=/workspace/bin gcc -c x.c` ran /workspace/bin/as);
//   - programs told which program to run: PAGER, MANPAGER, EDITOR, VISUAL, BROWSER,
//     LESSOPEN, LESSCLOSE, LESS (its +cmd), TAR_OPTIONS (--to-command), ZIPOPT (-TT),
//     RSYNC_RSH, and git's GIT_PAGER, GIT_EDITOR, GIT_SEQUENCE_EDITOR, GIT_SSH,
//     GIT_SSH_COMMAND, GIT_ASKPASS, SSH_ASKPASS, GIT_EXTERNAL_DIFF, GIT_PROXY_COMMAND,
//     GIT_EXEC_PATH, GIT_TEMPLATE_DIR, GIT_CONFIG* (configuration, where keys run programs);
//   - what the executor sets in every exec's environment so that programs run no code from
//     files the agent can write (sandbox/executor/exec.ts, SAFETY_ENV): LESSSECURE (less: no
//     shell escapes, no LESSOPEN, no lesskey file, whose #env section could set LESSOPEN) and
//     git's configuration at command-line precedence (GIT_CONFIG_COUNT/KEY_n/VALUE_n: no
//     hooks, no fsmonitor; GIT_CONFIG_NOSYSTEM), with less's lesskey variables (LESSKEYIN,
//     LESSKEY, LESSKEY_SYSTEM, LESSKEYIN_SYSTEM, LESSKEY_CONTENT, LESSSECURE_ALLOW), and
//     CURL_HOME (curl's empty .curlrc in the image, read before one in the agent's HOME).
// PYTHONSTARTUP is left alone: python reads it only in an interactive session, which an
// exec (stdin not a terminal) never starts.

const NAMES = new Set([
  "PATH",
  "CDPATH",
  "SHELL",
  "ENV",
  "PS1",
  "PS2",
  "PS4",
  "BASH_ENV",
  "SHELLOPTS",
  "BASHOPTS",
]);
for (const v of ["OPENSSL_CONF", "OPENSSL_CONF_INCLUDE", "OPENSSL_MODULES", "OPENSSL_ENGINES"]) NAMES.add(v);
for (const v of [
  "GCONV_PATH",
  "PERL5OPT",
  "PERL5LIB",
  "PERLLIB",
  "PYTHONPATH",
  "PYTHONHOME",
  "PYTHONINSPECT",
]) {
  NAMES.add(v);
}
for (const v of ["NODE_OPTIONS", "NODE_PATH", "RUBYOPT", "RUBYLIB", "LUA_PATH", "LUA_CPATH", "PHPRC"])
  NAMES.add(v);
for (const v of [
  "JAVA_TOOL_OPTIONS",
  "_JAVA_OPTIONS",
  "TCLLIBPATH",
  "PAGER",
  "MANPAGER",
  "EDITOR",
  "VISUAL",
]) {
  NAMES.add(v);
}
for (const v of ["BROWSER", "LESSOPEN", "LESSCLOSE", "LESS", "TAR_OPTIONS", "ZIPOPT", "RSYNC_RSH"])
  NAMES.add(v);
for (const v of ["COMPILER_PATH", "GCC_EXEC_PREFIX", "LESSSECURE", "LESSSECURE_ALLOW", "CURL_HOME"])
  NAMES.add(v);
for (const v of ["LESSKEYIN", "LESSKEY", "LESSKEY_SYSTEM", "LESSKEYIN_SYSTEM", "LESSKEY_CONTENT"])
  NAMES.add(v);
for (const v of [
  "GIT_PAGER",
  "GIT_EDITOR",
  "GIT_SEQUENCE_EDITOR",
  "GIT_SSH",
  "GIT_SSH_COMMAND",
  "GIT_ASKPASS",
]) {
  NAMES.add(v);
}
for (const v of [
  "SSH_ASKPASS",
  "GIT_EXTERNAL_DIFF",
  "GIT_PROXY_COMMAND",
  "GIT_EXEC_PATH",
  "GIT_TEMPLATE_DIR",
]) {
  NAMES.add(v);
}

const PREFIXES = ["LD_", "BASH_FUNC_", "GIT_CONFIG", "LUA_INIT"];

/**
 * The name the analysis records for a command run with its environment cleared (`env -i`,
 * `setpriv --reset-env`): every variable is unset, the protected ones with the rest.
 */
export const CLEARED_ENVIRONMENT = "*";

/** A variable no command may set or unset, because it changes what code runs. */
export function changesWhatRuns(name: string): boolean {
  return name === CLEARED_ENVIRONMENT || NAMES.has(name) || PREFIXES.some((p) => name.startsWith(p));
}

/**
 * Variables that change what code one program runs, set where it runs: curl reads a
 * .curlrc from $CURL_HOME, $XDG_CONFIG_HOME or $HOME (unless -q comes first), and an
 * `engine` line there loads a shared object (`HOME=/workspace curl URL` with
 * /workspace/.curlrc). The executor's CURL_HOME (protected everywhere, above) comes first;
 * these stay refused for curl in case its .curlrc is missing (a foreign image). Elsewhere
 * they are harmless, and HOME is often set (less's lesskey files are switched off by
 * LESSSECURE instead).
 */
const PROGRAM_VARIABLES: ReadonlyMap<string, readonly string[]> = new Map([
  ["curl", ["CURL_HOME", "XDG_CONFIG_HOME", "HOME"]],
]);

/** The first variable assigned that changes what one of `programs` runs, with the program. */
export function programVariable(
  assigned: readonly string[],
  programs: readonly string[],
): { name: string; program: string } | undefined {
  for (const program of programs) {
    const name = PROGRAM_VARIABLES.get(program)?.find((n) => assigned.includes(n));
    if (name) return { name, program };
  }
  return undefined;
}
