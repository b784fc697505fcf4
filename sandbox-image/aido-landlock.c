/*
 * aido-landlock — the in-container wall around one exec. It applies a Landlock domain
 * built from rule paths, a seccomp filter (no setuid/setgid files, no disk reserved past
 * the size limit, no extended attributes written, no TCP connection the Landlock TCP rule
 * cannot see) and an optional RLIMIT_FSIZE, then execve()s the program. The executor starts every command through it, so the command and
 * everything it starts inherit all three (none can be lifted again: Landlock domains and
 * seccomp filters only ever stack tighter). With --reap it also owns the call's lifetime:
 * see "the reaper" below.
 *
 *   aido-landlock --abi                       print the kernel's Landlock ABI (0: none)
 *   aido-landlock [options] -- PROG [ARG...]  confine, then execvp PROG
 *
 * Options (each may repeat; paths are absolute):
 *   --read DIR          read and execute everything beneath DIR
 *   --write DIR         write, create, remove, rename and link beneath DIR
 *   --read-file FILE    read and execute FILE (anything but a folder: /dev/null too)
 *   --write-file FILE   write and truncate FILE
 *   --read-data DIR     read everything beneath DIR, execute nothing there (execve of a file
 *                       there fails with EACCES; an ELF interpreter and mmap(PROT_EXEC) are
 *                       not checked by Landlock, so a program that already runs can still
 *                       load code from there: the executor's callers know it)
 *   --read-data-file FILE  read FILE, never execute it
 *   --fsize BYTES       RLIMIT_FSIZE: no file grows beyond BYTES (SIGXFSZ / EFBIG); 0
 *                       lets no file grow at all (a goal at its quota can still delete)
 *   --tcp-connect PORTS TCP connects (and so every TCP use: listening needs no connect, but
 *                       nothing outside reaches a container on an egress network) only to
 *                       these ports, comma-separated, or to none ("none"): an exec in a
 *                       container on an egress network gets the calling agent's relay port,
 *                       or none. Needs Landlock ABI >= 4; on an older kernel it is skipped
 *                       (the executor reports the ABI, the daemon says so once). Given once.
 *   --unconfined        no file rules (trusted callers); seccomp, --fsize, --tcp-connect
 *                       and --no-unix-sockets still apply
 *   --no-unix-sockets   no Unix socket of its own: socket(AF_UNIX, ...) and
 *                       socketpair(AF_UNIX, SOCK_DGRAM, ...) fail with EACCES (a second
 *                       seccomp filter, see apply_unix_filter); on ABI >= 6 the domain is
 *                       also scoped for abstract unix sockets (with --unconfined, a layer of
 *                       its own). A stream or seqpacket socketpair and pipes still work.
 *   --reap              stay as the call's reaper (Landlock ABI >= 6 only, see below)
 *   --oom-score-adj N   set /proc/self/oom_score_adj to N (0..1000) first, so that PROG and
 *                       all it starts (the reaper too) inherit it: the executor passes 1000
 *                       so the kernel's OOM killer takes a command before the executor
 *
 * Rule paths are opened with openat2(RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS): grants
 * are about canonical paths, so a path with a symlink anywhere in it gets no rule (fail
 * closed), and so does a --read/--write path that is not a folder or a --*-file path that
 * is one. A missing path gets no rule either. Each skipped rule is named on stderr.
 *
 * ABI handling: every filesystem right the running kernel knows is handled (ABI 1: the
 * thirteen base rights; 2: REFER; 3: TRUNCATE; 5: IOCTL_DEV), so anything not granted is
 * denied. On ABI 1 moving or linking a file into another folder is always refused. On
 * ABI >= 6 the domain is also scoped: no signals to, and no abstract unix socket
 * connections with, processes outside it. TCP (ABI 4) is handled only with --tcp-connect:
 * a container on no network has nothing to connect to, and one on an egress network reaches
 * nothing but its relay, whose port per agent is the second wall (an agent cannot use
 * another agent's port, and so another agent's grants, even with its credentials).
 *
 * The reaper (--reap). A command must not outlive its call, and a process that leaves its
 * session (setsid), double-forks or clones itself as a sibling (CLONE_PARENT) escapes a
 * process-group kill. So, after applying the domain, the helper makes itself a child
 * subreaper, forks PROG into a nested domain that only adds signal scoping (PROG and all it
 * starts can then neither signal nor ptrace the reaper, whose domain is an ancestor of
 * theirs), and waits. Every process PROG starts stays below the reaper: orphans are
 * reparented to it, and CLONE_PARENT from its child only makes another child of it. When
 * PROG ends — or the reaper gets SIGTERM, SIGINT or SIGHUP (the executor ending the call),
 * or its parent dies (PR_SET_PDEATHSIG) — it kills everything left in its own domain with
 * kill(-1, SIGKILL): signal scoping limits -1 to the processes of this domain and the
 * domains nested in it, i.e. this call, never the executor or another call. It repeats
 * the kill before each wait until no child is left (ECHILD; kill(-1) itself does not
 * report ESRCH while processes it may not signal exist), then exits with PROG's status:
 * its exit code, or the same signal re-raised. --unconfined --reap gives the reaper a
 * domain that handles no file access and only scopes signals, for the same kill(-1).
 *
 * Exit status: 2 for a usage error, 125 when the domain, filter or limit cannot be applied
 * (Landlock missing without --unconfined included, --reap below ABI 6), 126/127 when PROG
 * cannot be executed.
 * Static, no dependencies beyond libc; the kernel ABI structures are declared here so the
 * build does not depend on the libc headers' age (bookworm's know ABI 2 at most).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---------------------------------------------------------------- Landlock ABI */

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule 445
#define __NR_landlock_restrict_self 446
#endif
#ifndef __NR_openat2
#define __NR_openat2 437
#endif
#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif
/* Linux 6.13; one number on every architecture (the unified table above 403). */
#ifndef __NR_setxattrat
#define __NR_setxattrat 463
#endif
#ifndef __NR_removexattrat
#define __NR_removexattrat 466
#endif

#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_RULE_PATH_BENEATH 1

#define FS_EXECUTE (1ULL << 0)
#define FS_WRITE_FILE (1ULL << 1)
#define FS_READ_FILE (1ULL << 2)
#define FS_READ_DIR (1ULL << 3)
#define FS_REMOVE_DIR (1ULL << 4)
#define FS_REMOVE_FILE (1ULL << 5)
#define FS_MAKE_CHAR (1ULL << 6)
#define FS_MAKE_DIR (1ULL << 7)
#define FS_MAKE_REG (1ULL << 8)
#define FS_MAKE_SOCK (1ULL << 9)
#define FS_MAKE_FIFO (1ULL << 10)
#define FS_MAKE_BLOCK (1ULL << 11)
#define FS_MAKE_SYM (1ULL << 12)
#define FS_REFER (1ULL << 13)    /* ABI 2 */
#define FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#define FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */

#define LL_RULE_NET_PORT 2
#define NET_CONNECT_TCP (1ULL << 1) /* ABI 4; bit 0 is BIND_TCP, left unhandled */
#define MAX_TCP_PORTS 16

#define SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define SCOPE_SIGNAL (1ULL << 1)               /* ABI 6 */

struct ll_ruleset_attr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net; /* ABI 4: CONNECT_TCP with --tcp-connect */
  uint64_t scoped;             /* ABI 6 */
};

struct ll_path_beneath_attr {
  uint64_t allowed_access;
  int32_t parent_fd;
} __attribute__((packed));

struct ll_net_port_attr {
  uint64_t allowed_access;
  uint64_t port;
} __attribute__((packed));

/* --tcp-connect: given or not, and the ports it allows (none: n_ports 0). */
struct tcp_rules {
  int given;
  int n_ports;
  uint64_t ports[MAX_TCP_PORTS];
};

struct open_how_compat {
  uint64_t flags;
  uint64_t mode;
  uint64_t resolve;
};
#define RESOLVE_NO_MAGICLINKS_ 0x02
#define RESOLVE_NO_SYMLINKS_ 0x04

#define READ_DIR_RIGHTS (FS_EXECUTE | FS_READ_FILE | FS_READ_DIR)
#define READ_FILE_RIGHTS (FS_EXECUTE | FS_READ_FILE)
#define READ_DATA_DIR_RIGHTS (FS_READ_FILE | FS_READ_DIR)
#define READ_DATA_FILE_RIGHTS (FS_READ_FILE)
#define WRITE_FILE_RIGHTS (FS_WRITE_FILE | FS_TRUNCATE | FS_IOCTL_DEV)
#define WRITE_DIR_RIGHTS                                                                      \
  (WRITE_FILE_RIGHTS | FS_REMOVE_DIR | FS_REMOVE_FILE | FS_MAKE_CHAR | FS_MAKE_DIR |          \
   FS_MAKE_REG | FS_MAKE_SOCK | FS_MAKE_FIFO | FS_MAKE_BLOCK | FS_MAKE_SYM | FS_REFER)

static const char *prog = "aido-landlock";

static void usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "%s: ", prog);
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\nusage: %s --abi | [--read DIR] [--write DIR] [--read-file FILE] "
                  "[--write-file FILE] [--read-data DIR] [--read-data-file FILE] [--fsize BYTES] "
                  "[--tcp-connect PORT[,PORT...]|none] [--unconfined] [--no-unix-sockets] [--reap] [--oom-score-adj N] "
                  "-- PROG [ARG...]\n",
          prog);
  exit(2);
}

static void setup_failed(const char *what) {
  fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(errno));
  exit(125);
}

static int landlock_abi(void) {
  long abi = syscall(__NR_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
  return abi < 0 ? 0 : (int)abi;
}

static uint64_t handled_fs(int abi) {
  uint64_t fs = (FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0..12 */
  if (abi >= 2) fs |= FS_REFER;
  if (abi >= 3) fs |= FS_TRUNCATE;
  if (abi >= 5) fs |= FS_IOCTL_DEV;
  return fs;
}

/* ---------------------------------------------------------------- rule paths */

enum rule_kind { READ_DIR, WRITE_DIR, READ_FILE, WRITE_FILE, READ_DATA_DIR, READ_DATA_FILE };

struct rule {
  enum rule_kind kind;
  const char *path;
};

/* Open `path` as O_PATH without following any symlink along it; -1 with errno set. */
static int open_no_symlinks(const char *path) {
  struct open_how_compat how = {
      .flags = O_PATH | O_CLOEXEC,
      .mode = 0,
      .resolve = RESOLVE_NO_SYMLINKS_ | RESOLVE_NO_MAGICLINKS_,
  };
  int fd = (int)syscall(__NR_openat2, AT_FDCWD, path, &how, sizeof how);
  if (fd >= 0 || (errno != ENOSYS && errno != EPERM)) return fd;
  /* No openat2 (old kernel, or a seccomp profile hiding it): component by component. */
  int dir = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return -1;
  char buf[4096];
  if (strlen(path) >= sizeof buf) {
    close(dir);
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(buf, path);
  char *save = NULL;
  for (char *c = strtok_r(buf, "/", &save); c != NULL; c = strtok_r(NULL, "/", &save)) {
    int next = openat(dir, c, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    close(dir);
    if (next < 0) {
      errno = err;
      return -1;
    }
    struct stat st;
    if (fstat(next, &st) == 0 && S_ISLNK(st.st_mode)) {
      close(next);
      errno = ELOOP;
      return -1;
    }
    dir = next;
  }
  return dir;
}

static int canonical_arg(const char *p) {
  if (p[0] != '/') return 0;
  for (const char *s = p; *s; s++) {
    if (s[0] == '/' && s[1] == '/') return 0;
    if (s[0] == '/' && s[1] == '.' && (s[2] == '/' || s[2] == 0)) return 0;
    if (s[0] == '/' && s[1] == '.' && s[2] == '.' && (s[3] == '/' || s[3] == 0)) return 0;
  }
  return 1;
}

static void add_rule(int ruleset, const struct rule *r, uint64_t handled) {
  int fd = open_no_symlinks(r->path);
  if (fd < 0) {
    if (errno != ENOENT) {
      const char *why = errno == ELOOP || errno == EXDEV ? "a symlink is in the path" : strerror(errno);
      fprintf(stderr, "%s: no rule for %s (%s)\n", prog, r->path, why);
    }
    return;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) setup_failed(r->path);
  int is_dir = S_ISDIR(st.st_mode);
  int wants_dir = r->kind == READ_DIR || r->kind == WRITE_DIR || r->kind == READ_DATA_DIR;
  if (is_dir != wants_dir) {
    fprintf(stderr, "%s: no rule for %s (%s)\n", prog, r->path,
            wants_dir ? "not a folder" : "a folder where a file was expected");
    close(fd);
    return;
  }
  uint64_t rights = r->kind == READ_DIR         ? READ_DIR_RIGHTS
                    : r->kind == WRITE_DIR      ? WRITE_DIR_RIGHTS
                    : r->kind == READ_FILE      ? READ_FILE_RIGHTS
                    : r->kind == READ_DATA_DIR  ? READ_DATA_DIR_RIGHTS
                    : r->kind == READ_DATA_FILE ? READ_DATA_FILE_RIGHTS
                                                : WRITE_FILE_RIGHTS;
  struct ll_path_beneath_attr attr = {.allowed_access = rights & handled, .parent_fd = fd};
  if (attr.allowed_access != 0 &&
      syscall(__NR_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &attr, 0) != 0)
    setup_failed(r->path);
  close(fd);
}

static void add_port_rules(int ruleset, const struct tcp_rules *tcp) {
  for (int i = 0; i < tcp->n_ports; i++) {
    struct ll_net_port_attr attr = {.allowed_access = NET_CONNECT_TCP, .port = tcp->ports[i]};
    if (syscall(__NR_landlock_add_rule, ruleset, LL_RULE_NET_PORT, &attr, 0) != 0)
      setup_failed("landlock_add_rule (tcp port)");
  }
}

static void restrict_self(const struct ll_ruleset_attr *attr, const struct rule *rules, int n,
                          const struct tcp_rules *tcp) {
  /* Older kernels take a shorter struct; the extra fields are zero, which they accept. */
  int ruleset = (int)syscall(__NR_landlock_create_ruleset, attr, sizeof *attr, 0);
  if (ruleset < 0) setup_failed("landlock_create_ruleset");
  for (int i = 0; i < n; i++) add_rule(ruleset, &rules[i], attr->handled_access_fs);
  if (attr->handled_access_net != 0) add_port_rules(ruleset, tcp);
  if (syscall(__NR_landlock_restrict_self, ruleset, 0) != 0) setup_failed("landlock_restrict_self");
  close(ruleset);
}

/* TCP connects are handled when --tcp-connect was given and the kernel knows them (ABI 4). */
static uint64_t handled_net(int abi, const struct tcp_rules *tcp) {
  return tcp->given && abi >= 4 ? NET_CONNECT_TCP : 0;
}

static void apply_landlock(int abi, const struct rule *rules, int n, const struct tcp_rules *tcp) {
  if (abi < 1) {
    fprintf(stderr,
            "%s: the kernel offers no Landlock (Linux 5.13 or later with landlock among the "
            "LSMs is required); refusing to run unconfined\n",
            prog);
    exit(125);
  }
  struct ll_ruleset_attr attr = {.handled_access_fs = handled_fs(abi),
                                 .handled_access_net = handled_net(abi, tcp)};
  if (abi >= 6) attr.scoped = SCOPE_SIGNAL | SCOPE_ABSTRACT_UNIX_SOCKET;
  restrict_self(&attr, rules, n, tcp);
}

/*
 * --unconfined with --tcp-connect: a domain that handles TCP connects and no file access
 * but REFER, granted on "/" (see scope_only for why a layer must grant it).
 */
static void restrict_tcp_only(int abi, const struct tcp_rules *tcp) {
  if (handled_net(abi, tcp) == 0) return;
  struct ll_ruleset_attr attr = {.handled_access_fs = FS_REFER, .handled_access_net = NET_CONNECT_TCP};
  int ruleset = (int)syscall(__NR_landlock_create_ruleset, &attr, sizeof attr, 0);
  if (ruleset < 0) setup_failed("landlock_create_ruleset");
  struct ll_path_beneath_attr refer = {.allowed_access = FS_REFER};
  refer.parent_fd = open("/", O_PATH | O_CLOEXEC);
  if (refer.parent_fd < 0) setup_failed("/");
  if (syscall(__NR_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &refer, 0) != 0)
    setup_failed("landlock_add_rule /");
  close(refer.parent_fd);
  add_port_rules(ruleset, tcp);
  if (syscall(__NR_landlock_restrict_self, ruleset, 0) != 0) setup_failed("landlock_restrict_self");
  close(ruleset);
}

/*
 * A domain that only scopes (ABI >= 6): signals for the reaper's own when it runs
 * unconfined and for the nested one its program runs in; abstract unix sockets for
 * --unconfined --no-unix-sockets. It must still handle REFER and grant it on "/":
 * Landlock denies REFER in every layer that does not grant it, handled or not, so a layer
 * with no rules would refuse every rename or link across folders (EXDEV) to the program.
 */
static void scope_only(uint64_t scoped) {
  struct ll_ruleset_attr attr = {.handled_access_fs = FS_REFER, .scoped = scoped};
  int ruleset = (int)syscall(__NR_landlock_create_ruleset, &attr, sizeof attr, 0);
  if (ruleset < 0) setup_failed("landlock_create_ruleset");
  struct ll_path_beneath_attr refer = {.allowed_access = FS_REFER};
  refer.parent_fd = open("/", O_PATH | O_CLOEXEC);
  if (refer.parent_fd < 0) setup_failed("/");
  if (syscall(__NR_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &refer, 0) != 0)
    setup_failed("landlock_add_rule /");
  close(refer.parent_fd);
  if (syscall(__NR_landlock_restrict_self, ruleset, 0) != 0) setup_failed("landlock_restrict_self");
  close(ruleset);
}

/* ---------------------------------------------------------------- seccomp */

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#else
#error "aido-landlock: unsupported architecture"
#endif

#define ARG_LO(n) offsetof(struct seccomp_data, args[n])
#define SETID_BITS 06000
#define DENY_EPERM (SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))
#define DENY_ENOSYS (SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA))
#define DENY_ENOTSUP (SECCOMP_RET_ERRNO | (EOPNOTSUPP & SECCOMP_RET_DATA))
#define DENY_ENOPROTO (SECCOMP_RET_ERRNO | (EPROTONOSUPPORT & SECCOMP_RET_DATA))
#define DENY_EACCES (SECCOMP_RET_ERRNO | (EACCES & SECCOMP_RET_DATA))
#define PROTO_MPTCP 262          /* IPPROTO_MPTCP */
#define FLAG_FASTOPEN 0x20000000 /* MSG_FASTOPEN */

#define LD(off) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (off))
#define JEQ(k, t, f) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (t), (f))
#define JSET(k, t, f) BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, (k), (t), (f))
#define RET(k) BPF_STMT(BPF_RET | BPF_K, (k))

/*
 * The program is a list of blocks, one per syscall: "if nr == X and (the mode argument has
 * a set-id bit [and the flags argument has O_CREAT]) then EPERM". Each block reloads the
 * syscall number at its end, so blocks are independent and the jumps stay short.
 * Little-endian low words: every argument checked is an int or mode_t.
 */
#define MODE_BLOCK(nr, modearg)                                                               \
  JEQ((nr), 0, 3), LD(ARG_LO(modearg)), JSET(SETID_BITS, 0, 1), RET(DENY_EPERM), LD(NR_OFF)

#define CREATE_BLOCK(nr, flagsarg, modearg)                                                   \
  JEQ((nr), 0, 5), LD(ARG_LO(flagsarg)), JSET(O_CREAT | __O_TMPFILE, 0, 3),                  \
      LD(ARG_LO(modearg)), JSET(SETID_BITS, 0, 1), RET(DENY_EPERM), LD(NR_OFF)

#define NR_OFF offsetof(struct seccomp_data, nr)

/* "if nr == X then ENOTSUP": for calls refused whatever their arguments. */
#define REFUSE_BLOCK(nr) JEQ((nr), 0, 1), RET(DENY_ENOTSUP)

/*
 * fallocate(fd, mode, ...) with any mode but 0 is refused (EOPNOTSUPP: posix_fallocate and
 * the programs that try fallocate fall back to writing). FALLOC_FL_KEEP_SIZE — and the
 * modes that imply it, PUNCH_HOLE among them — allocate blocks past the end of a file
 * without growing its size, so RLIMIT_FSIZE is never consulted and one call could reserve
 * any amount of the host's disk past the goal's quota. Mode 0 grows the size and is
 * bounded by RLIMIT_FSIZE like a write.
 */
#define FALLOCATE_BLOCK                                                                       \
  JEQ(__NR_fallocate, 0, 3), LD(ARG_LO(1)), JEQ(0, 1, 0), RET(DENY_ENOTSUP), LD(NR_OFF)

/*
 * Two ways to open a TCP connection that the Landlock TCP rule (--tcp-connect, ABI 4) does
 * not judge, measured on Linux 6.18: TCP Fast Open (sendto/sendmsg/sendmmsg with
 * MSG_FASTOPEN connects an unconnected socket without connect(2)) and a Multipath TCP
 * socket (socket(..., IPPROTO_MPTCP): its connect escapes the rule and falls back to plain
 * TCP with any server). Either let a command reach another agent's relay port. Fast Open
 * sends are refused (EOPNOTSUPP, what a kernel without client Fast Open answers) and MPTCP
 * sockets are not made (EPROTONOSUPPORT, a kernel without MPTCP): clients fall back to
 * connect(2) on a TCP socket, which the rule judges.
 */
#define FLAG_BLOCK(nr, flagsarg, flag)                                                        \
  JEQ((nr), 0, 3), LD(ARG_LO(flagsarg)), JSET((flag), 0, 1), RET(DENY_ENOTSUP), LD(NR_OFF)
#define MPTCP_BLOCK                                                                           \
  JEQ(__NR_socket, 0, 3), LD(ARG_LO(2)), JEQ(PROTO_MPTCP, 0, 1), RET(DENY_ENOPROTO), LD(NR_OFF)

static void apply_seccomp(void) {
  struct sock_filter filter[] = {
      LD(offsetof(struct seccomp_data, arch)),
      JEQ(NATIVE_ARCH, 1, 0),
      RET(DENY_EPERM), /* foreign syscall ABIs (i386 on x86_64) cannot sneak past */
      LD(NR_OFF),
#if defined(__x86_64__)
      JSET(0x40000000, 0, 1), /* x32 */
      RET(DENY_EPERM),
      MODE_BLOCK(__NR_chmod, 1),
      MODE_BLOCK(__NR_mknod, 1),
      MODE_BLOCK(__NR_mkdir, 1),
      MODE_BLOCK(__NR_creat, 1),
#endif
      MODE_BLOCK(__NR_fchmod, 1),
      MODE_BLOCK(__NR_fchmodat, 2),
      MODE_BLOCK(__NR_fchmodat2, 2),
      MODE_BLOCK(__NR_mknodat, 2),
      MODE_BLOCK(__NR_mkdirat, 2),
#if defined(__x86_64__)
      CREATE_BLOCK(__NR_open, 1, 2),
#endif
      CREATE_BLOCK(__NR_openat, 2, 3),
      FALLOCATE_BLOCK,
      FLAG_BLOCK(__NR_sendto, 3, FLAG_FASTOPEN),
      FLAG_BLOCK(__NR_sendmsg, 2, FLAG_FASTOPEN),
      FLAG_BLOCK(__NR_sendmmsg, 3, FLAG_FASTOPEN),
      MPTCP_BLOCK,
      /* Extended attributes are metadata Landlock (ABI <= 7) does not guard: a command could
       * set them on any file of the goal, granted or not. Programs that copy them (cp -a,
       * tar, rsync -X) treat ENOTSUP as "not supported here" and go on. */
      REFUSE_BLOCK(__NR_setxattr),
      REFUSE_BLOCK(__NR_lsetxattr),
      REFUSE_BLOCK(__NR_fsetxattr),
      REFUSE_BLOCK(__NR_setxattrat),
      REFUSE_BLOCK(__NR_removexattr),
      REFUSE_BLOCK(__NR_lremovexattr),
      REFUSE_BLOCK(__NR_fremovexattr),
      REFUSE_BLOCK(__NR_removexattrat),
      /* openat2 passes its mode in memory a filter cannot read: libc falls back to openat. */
      JEQ(__NR_openat2, 0, 1),
      RET(DENY_ENOSYS),
      /* io_uring would open files without any of the syscalls above. */
      JEQ(__NR_io_uring_setup, 0, 1),
      RET(DENY_ENOSYS),
      RET(SECCOMP_RET_ALLOW),
  };
  struct sock_fprog fprog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) != 0) setup_failed("seccomp");
}

/*
 * --no-unix-sockets: a second filter (filters stack, the stricter answer wins). A read-only
 * bind does not stop connect(2) to a Unix socket in it, and the command runs as the owner
 * of the sockets it finds there (an ssh-agent, a D-Bus session bus, a Docker socket, a
 * dev server's): SO_PEERCRED checks pass. Making no AF_UNIX socket, it reaches none, by
 * path or abstract name. A socketpair's stream and seqpacket sockets are connected to each
 * other only (connect(2) on them is EISCONN, an address given to send is ignored or
 * refused), but a datagram one sends to any address given to sendto/sendmsg and may be
 * connect(2)ed again (measured on Linux 6.18): so a datagram socketpair is refused too.
 * The arguments checked are ints (the low word, little-endian); a socket type carries its
 * SOCK_NONBLOCK/SOCK_CLOEXEC flags above SOCK_TYPE_MASK. Foreign syscall ABIs are refused
 * as in apply_seccomp: i386's socketcall(2) multiplexer (whose arguments sit in memory a
 * filter cannot read) and x32 never reach the checks; aarch64 has no socketcall.
 */
#define AF_UNIX_ 1
#define SOCK_DGRAM_ 2
#define SOCK_TYPE_MASK_ 0xf

static void apply_unix_filter(void) {
  struct sock_filter filter[] = {
      LD(offsetof(struct seccomp_data, arch)),
      JEQ(NATIVE_ARCH, 1, 0),
      RET(DENY_EPERM),
      LD(NR_OFF),
#if defined(__x86_64__)
      JSET(0x40000000, 0, 1), /* x32 */
      RET(DENY_EPERM),
#endif
      /* socket(AF_UNIX, ...) */
      JEQ(__NR_socket, 0, 3),
      LD(ARG_LO(0)),
      JEQ(AF_UNIX_, 0, 1),
      RET(DENY_EACCES),
      LD(NR_OFF),
      /* socketpair(AF_UNIX, SOCK_DGRAM [| flags], ...) */
      JEQ(__NR_socketpair, 0, 6),
      LD(ARG_LO(0)),
      JEQ(AF_UNIX_, 0, 4),
      LD(ARG_LO(1)),
      BPF_STMT(BPF_ALU | BPF_AND | BPF_K, SOCK_TYPE_MASK_),
      JEQ(SOCK_DGRAM_, 0, 1),
      RET(DENY_EACCES),
      RET(SECCOMP_RET_ALLOW),
  };
  struct sock_fprog fprog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) != 0) setup_failed("seccomp (unix sockets)");
}

/* ---------------------------------------------------------------- the program */

static int no_unix_sockets = 0;

static void run_program(char **argv) __attribute__((noreturn));
static void run_program(char **argv) {
  apply_seccomp();
  if (no_unix_sockets) apply_unix_filter();
  execvp(argv[0], argv);
  int err = errno;
  fprintf(stderr, "%s: %s: %s\n", prog, argv[0], strerror(err));
  _exit(err == ENOENT ? 127 : 126);
}

/* ---------------------------------------------------------------- the reaper */

/* Leave with the program's status: its exit code, or the signal that ended it, re-raised. */
static void exit_like(int status) __attribute__((noreturn));
static void exit_like(int status) {
  if (WIFEXITED(status)) exit(WEXITSTATUS(status));
  int sig = WTERMSIG(status);
  struct rlimit no_core = {.rlim_cur = 0, .rlim_max = 0};
  setrlimit(RLIMIT_CORE, &no_core);
  signal(sig, SIG_DFL);
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, sig);
  sigprocmask(SIG_UNBLOCK, &only, NULL);
  raise(sig);
  exit(128 + sig); /* a signal whose default is not to terminate */
}

/* See the header: run PROG below us in a nested domain, then kill what is left of the call. */
static void reap(char **argv) __attribute__((noreturn));
static void reap(char **argv) {
  sigset_t waited, original;
  sigemptyset(&waited);
  sigaddset(&waited, SIGCHLD);
  sigaddset(&waited, SIGTERM); /* the executor ends the call */
  sigaddset(&waited, SIGINT);
  sigaddset(&waited, SIGHUP);
  /* Blocked, not handled: they wait in sigwaitinfo below, none is lost before it runs. */
  if (sigprocmask(SIG_BLOCK, &waited, &original) != 0) setup_failed("sigprocmask");
  pid_t parent = getppid();
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) setup_failed("PR_SET_CHILD_SUBREAPER");
  if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) != 0) setup_failed("PR_SET_PDEATHSIG");
  if (getppid() != parent) exit(125); /* the executor is gone already: nothing to run for */
  pid_t child = fork();
  if (child < 0) setup_failed("fork");
  if (child == 0) {
    /* Neither the subreaper flag nor the parent-death signal is inherited by a fork. */
    sigprocmask(SIG_SETMASK, &original, NULL);
    scope_only(SCOPE_SIGNAL);
    run_program(argv);
  }
  int status = 0;
  int have_status = 0;
  int ending = 0;
  while (!have_status && !ending) {
    int sig = sigwaitinfo(&waited, NULL);
    if (sig == SIGCHLD) {
      int st;
      pid_t p;
      while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
        if (p == child) {
          status = st;
          have_status = 1;
        }
      }
    } else if (sig > 0) {
      ending = 1;
    }
  }
  /* The call is over: nothing it started stays. kill(-1) reaches this domain only. */
  for (;;) {
    kill(-1, SIGKILL);
    int st;
    pid_t p = waitpid(-1, &st, 0);
    if (p < 0) {
      if (errno == EINTR) continue;
      break; /* ECHILD: every process of the call is gone */
    }
    if (p == child && !have_status) {
      status = st;
      have_status = 1;
    }
  }
  exit_like(status);
}

/* ---------------------------------------------------------------- main */

/* Before the domain: /proc is read-only inside it. */
static void set_oom_score_adj(const char *value) {
  int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd < 0) setup_failed("/proc/self/oom_score_adj");
  ssize_t n = write(fd, value, strlen(value));
  if (n != (ssize_t)strlen(value)) setup_failed("/proc/self/oom_score_adj");
  close(fd);
}

/* "none", or up to MAX_TCP_PORTS ports 1..65535 separated by commas. */
static void parse_ports(const char *s, struct tcp_rules *tcp) {
  if (tcp->given) usage_error("%s", "--tcp-connect is given once");
  tcp->given = 1;
  if (strcmp(s, "none") == 0) return;
  const char *at = s;
  for (;;) {
    if (*at < '0' || *at > '9') usage_error("--tcp-connect needs ports 1-65535 or none, got \"%s\"", s);
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(at, &end, 10);
    if (errno != 0 || v < 1 || v > 65535 || (*end != ',' && *end != 0))
      usage_error("--tcp-connect needs ports 1-65535 or none, got \"%s\"", s);
    if (tcp->n_ports == MAX_TCP_PORTS) usage_error("--tcp-connect takes at most 16 ports, got \"%s\"", s);
    tcp->ports[tcp->n_ports++] = v;
    if (*end == 0) return;
    at = end + 1;
  }
}

static unsigned long long parse_bytes(const char *s) {
  char *end = NULL;
  errno = 0;
  if (s[0] < '0' || s[0] > '9') usage_error("--fsize needs a number of bytes, got \"%s\"", s);
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != 0) usage_error("--fsize needs a number of bytes, got \"%s\"", s);
  return v;
}

int main(int argc, char **argv) {
  struct rule *rules = calloc((size_t)argc, sizeof *rules);
  if (rules == NULL) setup_failed("calloc");
  int n = 0;
  int unconfined = 0;
  int reaper = 0;
  unsigned long long fsize = 0;
  int have_fsize = 0;
  const char *oom_score_adj = NULL;
  struct tcp_rules tcp = {0};
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (strcmp(a, "--abi") == 0) {
      if (argc != 2) usage_error("%s takes no other argument", a);
      printf("%d\n", landlock_abi());
      return 0;
    }
    if (strcmp(a, "--unconfined") == 0) {
      unconfined = 1;
      continue;
    }
    if (strcmp(a, "--reap") == 0) {
      reaper = 1;
      continue;
    }
    if (strcmp(a, "--no-unix-sockets") == 0) {
      no_unix_sockets = 1;
      continue;
    }
    int kind = strcmp(a, "--read") == 0             ? READ_DIR
               : strcmp(a, "--write") == 0          ? WRITE_DIR
               : strcmp(a, "--read-file") == 0      ? READ_FILE
               : strcmp(a, "--write-file") == 0     ? WRITE_FILE
               : strcmp(a, "--read-data") == 0      ? READ_DATA_DIR
               : strcmp(a, "--read-data-file") == 0 ? READ_DATA_FILE
               : strcmp(a, "--fsize") == 0          ? -2
               : strcmp(a, "--oom-score-adj") == 0  ? -3
               : strcmp(a, "--tcp-connect") == 0    ? -4
                                                    : -1;
    if (kind == -1) usage_error("unknown option \"%s\"", a);
    if (i + 1 >= argc) usage_error("%s needs a value", a);
    const char *v = argv[++i];
    if (kind == -2) {
      fsize = parse_bytes(v);
      have_fsize = 1;
      continue;
    }
    if (kind == -4) {
      parse_ports(v, &tcp);
      continue;
    }
    if (kind == -3) {
      char *end = NULL;
      long adj = strtol(v, &end, 10);
      if (end == v || *end != 0 || adj < 0 || adj > 1000)
        usage_error("--oom-score-adj needs a number from 0 to 1000, got \"%s\"", v);
      oom_score_adj = v;
      continue;
    }
    if (!canonical_arg(v)) usage_error("rule path \"%s\" is not a canonical absolute path", v);
    rules[n].kind = (enum rule_kind)kind;
    rules[n].path = v;
    n++;
  }
  if (i >= argc) usage_error("%s", "nothing to run: give -- PROG [ARG...]");
  if (unconfined && n > 0) usage_error("%s", "--unconfined takes no rules");

  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) setup_failed("no_new_privs");
  if (oom_score_adj != NULL) set_oom_score_adj(oom_score_adj);
  if (have_fsize) {
    struct rlimit rl = {.rlim_cur = fsize, .rlim_max = fsize};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) setup_failed("RLIMIT_FSIZE");
  }
  int abi = landlock_abi();
  if (reaper && abi < 6) {
    fprintf(stderr,
            "%s: --reap needs Landlock ABI 6 or later (signal scoping, Linux 6.12); this kernel "
            "offers ABI %d\n",
            prog, abi);
    exit(125);
  }
  if (!unconfined) apply_landlock(abi, rules, n, &tcp); /* scopes abstract sockets at ABI >= 6 */
  else {
    restrict_tcp_only(abi, &tcp);
    uint64_t scoped = (reaper ? SCOPE_SIGNAL : 0) | (no_unix_sockets && abi >= 6 ? SCOPE_ABSTRACT_UNIX_SOCKET : 0);
    if (scoped != 0) scope_only(scoped);
  }
  free(rules);
  if (reaper) reap(&argv[i]);
  run_program(&argv[i]);
}
