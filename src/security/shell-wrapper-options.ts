// security/shell-wrapper-options.ts — the complete option lists of the wrappers installed in
// the sandbox image (from their --help there). Where a wrapper's command starts depends on
// which options take a value: `setpriv --pdeathsig KILL git push` was judged as a command
// named KILL while setpriv ran git push, and `xargs --max-lines touch x` runs touch (the
// value of --max-lines is only ever attached). So each list is strict: an option that is not
// on it is refused (shell-unfold.ts, scanOptions), and a prefix of a long one is refused as an
// abbreviation. shell-wrappers.ts says what each wrapper runs.

import type { OptionSpec } from "./shell-unfold.js";

/** Space-separated names as a list (keeps the tables readable). */
const w = (names: string): string[] => names.split(" ");

const HELP = ["help", "version"];

export const WRAPPER_OPTIONS = {
  env: {
    value: w("u C S a unset chdir split-string argv0"),
    optional: w("block-signal default-signal ignore-signal"),
    flags: w("i 0 v ignore-environment null list-signal-handling debug help version"),
    strict: true,
  },
  xargs: {
    value: w("a d E I L n P s arg-file delimiter max-args max-procs max-chars process-slot-var"),
    optional: w("e l i eof max-lines replace"),
    flags: w("0 o p r t x null open-tty interactive no-run-if-empty show-limits verbose exit help version"),
    strict: true,
  },
  timeout: {
    value: w("s k signal kill-after"),
    flags: w("v preserve-status foreground verbose help version"),
    strict: true,
  },
  // `nice -10 cmd` is the old form of -n 10: digits are flags here.
  nice: { value: w("n adjustment"), flags: [..."0123456789", ...HELP], strict: true },
  ionice: {
    value: w("c n p P u class classdata pid pgid uid"),
    flags: w("t h V ignore help version"),
    strict: true,
  },
  nohup: { value: [], flags: HELP, strict: true },
  stdbuf: { value: w("i o e input output error"), flags: HELP, strict: true },
  setsid: { value: [], flags: w("c f w h V ctty fork wait help version"), strict: true },
  watch: {
    value: w("n interval q equexit"),
    optional: w("d differences"),
    flags: w(
      "b c e g p r t w x h v beep color no-color errexit chgexit precise no-rerun no-title no-wrap exec",
    ).concat(HELP),
    strict: true,
  },
  chrt: {
    value: w("T P D sched-runtime sched-period sched-deadline"),
    flags: [
      ..."bdfiorRampvhV",
      ...w("batch deadline fifo idle other rr reset-on-fork all-tasks max pid verbose"),
    ].concat(HELP),
    strict: true,
  },
  taskset: { value: [], flags: [..."apchV", ...w("all-tasks pid cpu-list help version")], strict: true },
  /** prlimit's resource options take a value only when attached (`--nofile=10`, `-n10`). */
  prlimit: {
    value: w("p pid o output"),
    optional: [..."cdefilmnqrstuvxy"].concat(
      w("core data nice fsize sigpending memlock rss nofile msgqueue rtprio stack cpu nproc as locks rttime"),
    ),
    flags: w("h V noheadings raw verbose help version"),
    strict: true,
  },
  choom: { value: w("n p adjust pid"), flags: w("h V help version"), strict: true },
  runcon: { value: w("u r t l user role type range"), flags: w("c compute help version"), strict: true },
  setpriv: {
    value: w(
      "reuid regid groups inh-caps ambient-caps bounding-set ruid euid rgid egid securebits pdeathsig",
    ).concat(w("selinux-label apparmor-profile landlock-access landlock-rule")),
    flags: w("d h V dump nnp no-new-privs clear-groups keep-groups init-groups reset-env help version"),
    strict: true,
  },
  // uclampset [-m MIN] [-M MAX] CMD...: runs its command (-p PID acts on a running process instead).
  uclampset: {
    value: w("m M p pid"),
    flags: w("a s R v h V all-tasks system reset-on-fork verbose help version"),
    strict: true,
  },
  setarch: {
    value: [],
    flags: [..."BFILRSTXZ3vhV"].concat(
      w(
        "32bit fdpic-funcptrs short-inode addr-compat-layout addr-no-randomize whole-seconds sticky-timeouts",
      ),
      w("read-implies-exec mmap-page-zero 3gb 4gb uname-2.6 verbose list help version"),
    ),
    strict: true,
  },
  /** strace 6.1: long options are accepted as --name=value or as listed flags (tracer() in shell-wrappers.ts). */
  strace: {
    value: [..."abeEIoOpPsSuUX"].concat(
      w("output env trace signal status string-limit summary-columns summary-sort-by user trace-path attach"),
      w("interruptible summary-syscall-overhead const-print-style inject fault quiet silence abbrev verbose"),
      w("raw read write columns detach-on"),
    ),
    optional: w(
      "decode-fds decode-pids syscall-times relative-timestamps absolute-timestamps timestamps",
    ).concat(
      w("stack-traces summary summary-only summary-wall-clock follow-forks output-separately strings-in-hex"),
      w("instruction-pointer syscall-number daemonize tips"),
    ),
    flags: [..."AcCdDfFhiknqrtTvVwxyYzZ"].concat(
      w("output-append-mode seccomp-bpf no-abbrev debug successful-only failed-only help version quiet"),
      w(
        "follow-forks summary-only summary decode-pids strings-in-hex summary-wall-clock instruction-pointer",
      ),
      w(
        "syscall-number stack-traces output-separately daemonize tips relative-timestamps absolute-timestamps",
      ),
      w("syscall-times decode-fds timestamps"),
    ),
    strict: true,
  },
} satisfies Record<string, OptionSpec>;
